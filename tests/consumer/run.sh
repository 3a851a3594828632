#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, builds tests/consumer against it with
# find_package(ZeroShard), runs the ZeroShard::nn-only program, then the full one at 2 ranks
# ("consumer: ok", which CTest looks for, is printed only if both get that far).
# Usage: run.sh <build-dir> <consumer-source-dir> <mpirun-wrapper>
set -euo pipefail
build=$1 source=$2 mpirun=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
# The library's SIMD flags (ZS_SIMD) are its own: a consumer must not be compiled with them.
if grep -rq -- "-march" "$scratch/prefix"/lib*/cmake; then
  echo "consumer: the installed package exports -march flags to its users" >&2
  exit 1
fi
cmake --build "$scratch/build" -- VERBOSE=1 >"$scratch/build.log"
if grep -q -- "-march" "$scratch/build.log"; then
  echo "consumer: the consumer was compiled with the library's -march flags" >&2
  exit 1
fi
"$scratch/build/consumer_nn"
"$mpirun" -np 2 "$scratch/build/consumer"
