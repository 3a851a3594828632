#!/bin/sh
# Stands in for a test whose script needs a Python 3 with h5py, numpy and matplotlib where
# configure found none: CTest reports it skipped (SKIP_REGULAR_EXPRESSION) with this reason.
echo "skipped: no Python 3 with h5py, numpy and matplotlib was found when configuring" \
     "(install python3-h5py python3-numpy python3-matplotlib, or configure with -DZS_TEST_PYTHON=/path/to/python3)"
