#!/usr/bin/env bash
# Installs every system package ZeroShard needs (idempotent, quiet when already there), then
# configures and builds into build/.  Usage: bash scripts/setup.sh [--run] [extra cmake -D args]
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
          libeigen3-dev libgtest-dev zlib1g-dev python3-h5py python3-numpy dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p build
if ! cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" >build/configure.log 2>&1; then
  cat build/configure.log
  exit 1
fi
grep -E "^-- ZeroShard" build/configure.log || true
cmake --build build -j "$(nproc)"

if [ "$run_main_job" = 1 ]; then
  scripts/zs-mpirun -np 4 build/examples/zs_fashion_mnist --stage 3
fi
