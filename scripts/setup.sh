#!/usr/bin/env bash
# Installs every system package ZeroShard needs (idempotent, quiet when already there), then
# configures and builds into build/ (serial HDF5, like most machines and the GPU machine).
# Where parallel HDF5 can be installed (libhdf5-openmpi-dev) it also builds what the
# shared-file checkpoint mode needs into build-parallel-hdf5/ (the example, zeroshard-ckpt and
# the checkpoint tests); ZS_PARALLEL_HDF5=0 skips that.
# Usage: bash scripts/setup.sh [--run] [extra cmake -D args]
#   --run   afterwards, run the main job (Fashion-MNIST with ZeRO-3 on 4 ranks).
set -euo pipefail
cd "$(dirname "$0")/.."

run_main_job=0
cmake_args=()
for arg in "$@"; do
  case "$arg" in
    --run) run_main_job=1 ;;
    *) cmake_args+=("$arg") ;;
  esac
done

packages=(build-essential cmake libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libboost-dev
          libeigen3-dev libopenblas-pthread-dev libgtest-dev zlib1g-dev python3-h5py python3-numpy
          python3-matplotlib dataset-fashion-mnist iproute2
          fortunes)
sudo_cmd=""
[ "$(id -u)" = 0 ] || sudo_cmd="sudo"
apt_updated=0
# Installs the packages of "$@" that are missing; fails if apt-get does.
install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "setup: installing ${missing[*]}"
  if [ "$apt_updated" = 0 ]; then
    $sudo_cmd apt-get update -qq || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_missing "${packages[@]}"

# Parallel HDF5 installs beside the serial one (its own directory; the serial build keeps
# finding serial HDF5). Optional: machines without it (the GPU machine, no network) skip it.
parallel_hdf5=${ZS_PARALLEL_HDF5:-1}
if [ "$parallel_hdf5" = 1 ] && ! install_missing libhdf5-openmpi-dev; then
  echo "setup: parallel HDF5 (libhdf5-openmpi-dev) unavailable: skipping the shared-file checkpoint build"
  parallel_hdf5=0
fi

mkdir -p build
if ! cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" >build/configure.log 2>&1; then
  cat build/configure.log
  exit 1
fi
grep -E "^-- ZeroShard" build/configure.log || true
cmake --build build -j "$(nproc)"

if [ "$parallel_hdf5" = 1 ]; then
  mkdir -p build-parallel-hdf5
  if ! cmake -S . -B build-parallel-hdf5 -DCMAKE_BUILD_TYPE=Release -DHDF5_PREFER_PARALLEL=ON -DZS_CUDA=OFF \
       -DZS_BUILD_BENCH=OFF -DZS_BLAS=Eigen -DZS_READER_BUILD_DIR="$PWD/build" >build-parallel-hdf5/configure.log 2>&1; then
    cat build-parallel-hdf5/configure.log
    exit 1
  fi
  grep -E "^-- ZeroShard [0-9]" build-parallel-hdf5/configure.log | sed 's/^/parallel-HDF5 tree: /' || true
  cmake --build build-parallel-hdf5 -j "$(nproc)" --target zs_checkpoint_tests zeroshard-ckpt zs_fashion_mnist
fi

if [ "$run_main_job" = 1 ]; then
  scripts/zs-mpirun -np 4 build/examples/zs_fashion_mnist --stage 3
fi
