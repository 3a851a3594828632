#!/usr/bin/env bash
# The whole test suite: sets up and builds if needed, then runs every CTest test (unit tests,
# multi-rank tests at world sizes 1-4 under scripts/zs-mpirun, the installed-package consumer
# test). Tests labelled "gpu" skip cleanly on a machine without a GPU. Where setup.sh built the
# parallel-HDF5 tree, its tests (label parallel_hdf5: checkpoints in both modes, shared-file
# end to end read by the serial build) run too. Then the sanitizer jobs (scripts/sanitizers.sh:
# ASan+UBSan over the unit and multi-rank suites and the installed-package consumer, TSan over
# the async checkpoint writer and the progress engine), each started only if it can end within
# CI's 30-minute budget counted from here (docs/ci.md); ZS_SANITIZERS=0 leaves them out, and
# so does any argument (arguments select CTest tests: `bash scripts/test.sh -L mpi`).
set -euo pipefail
cd "$(dirname "$0")/.."
export ZS_TEST_STARTED=${ZS_TEST_STARTED:-$(date +%s)}
bash scripts/setup.sh
ctest --test-dir build --output-on-failure --timeout 600 "$@"
if [ -f build-parallel-hdf5/CTestTestfile.cmake ] && [ "${ZS_PARALLEL_HDF5:-1}" = 1 ]; then
  echo "== parallel-HDF5 tree (checkpoint.mode = shared_file) =="
  ctest --test-dir build-parallel-hdf5 --output-on-failure --timeout 600 -L parallel_hdf5 "$@"
fi
if [ "${ZS_SANITIZERS:-1}" != 0 ] && [ $# = 0 ]; then
  bash scripts/sanitizers.sh
fi
