#!/usr/bin/env bash
# The whole test suite: sets up and builds if needed, then runs every CTest test (unit tests,
# multi-rank tests at world sizes 1-4 under scripts/zs-mpirun, the installed-package consumer
# test). Tests labelled "gpu" skip cleanly on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure --timeout 600 "$@"
