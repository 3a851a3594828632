#!/usr/bin/env bash
# The whole test suite: sets up and builds if needed, then runs every CTest test (unit tests,
# multi-rank tests at world sizes 1-4 under scripts/zs-mpirun, the installed-package consumer
# test). Tests labelled "gpu" skip cleanly on a machine without a GPU. Where setup.sh built the
# parallel-HDF5 tree, its tests (label parallel_hdf5: checkpoints in both modes, shared-file
# end to end read by the serial build) run too. ZS_SANITIZERS=1 adds the sanitizer jobs
# (scripts/sanitizers.sh: ASan+UBSan over the unit and multi-rank suites and the installed-
# package consumer, TSan over the async checkpoint writer and the progress engine): two more
# builds; with them two fresh-clone runs took 24.7 and about 32 minutes, too close to CI's
# 30-minute budget to be on by default (docs/ci.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure --timeout 600 "$@"
if [ -f build-parallel-hdf5/CTestTestfile.cmake ] && [ "${ZS_PARALLEL_HDF5:-1}" = 1 ]; then
  echo "== parallel-HDF5 tree (checkpoint.mode = shared_file) =="
  ctest --test-dir build-parallel-hdf5 --output-on-failure --timeout 600 -L parallel_hdf5 "$@"
fi
if [ "${ZS_SANITIZERS:-0}" = 1 ]; then
  bash scripts/sanitizers.sh
fi
