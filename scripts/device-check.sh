#!/usr/bin/env bash
# The checks that need a GPU, as one short script for a machine that has one and no network
# (the device machine of ../shared/facts.md: CUDA, NCCL, Open MPI, serial HDF5, no OpenBLAS).
# It configures build-gpu/ with CUDA on, builds, runs the tests labelled "gpu" (NCCL at one
# rank, the staged path at two ranks on one GPU, cuBLAS against float64), then the rest of the
# suite that needs neither the Fashion-MNIST package nor network namespaces, so a second
# machine (other CPU, compiler and HDF5) checks the CPU path too.
# With ZS_DEVICE_BENCH=1 it also runs bf16 against fp32 at 4 ranks on this machine's cores
# (zs_step_bench --precision, zs_collective_bench), each bounded in time.
# ZS_DEVICE_DATA=DIR: a copy of Debian's Fashion-MNIST folder (the device machine has none),
# installed where the example looks, so the checkpoint tests that train it run too.
# Usage: bash scripts/device-check.sh [OUT_DIR]   (logs land in OUT_DIR, default $OUT or /tmp)
# Exit status: non-zero when the build or any gpu test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/zs-device-check}}
mkdir -p "$out"
jobs=$(nproc)

{
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  echo "cores: $jobs"; gcc --version | head -1; nvcc --version | tail -2
  mpirun --version | head -1; grep -m1 "model name" /proc/cpuinfo
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

started=$(date +%s)
if ! cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DZS_CUDA=ON >"$out/configure.log" 2>&1; then
  tail -40 "$out/configure.log"; exit 1
fi
grep "ZeroShard" "$out/configure.log"
if ! timeout 420 cmake --build build-gpu -j"$jobs" >"$out/build.log" 2>&1; then
  grep -B2 -A8 -m5 "error" "$out/build.log" | head -80; exit 1
fi
echo "configure + build: $(( $(date +%s) - started )) s"

ctest --test-dir build-gpu -L gpu --output-on-failure -V --timeout 120 >"$out/gpu.log" 2>&1
gpu_status=$?
grep -E "^\[ *(OK|FAILED|SKIPPED) *\]|tests passed|tests failed|Passed|Failed|\*\*\*" "$out/gpu.log" | sort | uniq -c | head -40

# The CPU suite on this machine, bounded so the logs always come back.
if [ -n "${ZS_DEVICE_DATA:-}" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  mkdir -p /usr/share/datasets && cp -r "$ZS_DEVICE_DATA" /usr/share/datasets/fashion-mnist
fi
timeout "${ZS_DEVICE_CPU_SUITE_S:-150}" ctest --test-dir build-gpu -j"$((jobs / 2))" \
  -LE "gpu|cluster|example|install|parallel_hdf5" --timeout 120 --output-on-failure >"$out/cpu-suite.log" 2>&1
echo "cpu suite exit $? (124 = cut at its time limit)"
tail -25 "$out/cpu-suite.log"
if [ "${ZS_DEVICE_BENCH:-0}" = 1 ]; then
  timeout 150 scripts/zs-mpirun -np 4 build-gpu/bench/zs_step_bench --precision --layers 8 --width 1024 \
    --batch 32 --steps 7 >"$out/step-bench-np4.txt" 2>&1
  echo "step bench exit $?"; cat "$out/step-bench-np4.txt"
  timeout 100 scripts/zs-mpirun -np 4 build-gpu/bench/zs_collective_bench --min-bytes 4M --max-bytes 64M \
    --seconds-per-case 0.3 >"$out/collective-bench-np4.txt" 2>&1
  echo "collective bench exit $?"; grep -i "bf16\|bfloat16" "$out/collective-bench-np4.txt" | head -20
fi
exit $gpu_status
