#!/usr/bin/env bash
# The peer benchmark's own packages (not the library's): PyTorch from Debian and OpenBLAS, the
# BLAS PyTorch's GEMMs run on in a fair comparison (Debian's default libblas.so.3 is the
# reference implementation, ~3 GFLOP/s). peer_bench.py points PyTorch at OpenBLAS through
# LD_LIBRARY_PATH, so the system's BLAS alternative is left as it is.
set -euo pipefail
sudo_cmd=""
[ "$(id -u)" = 0 ] || sudo_cmd="sudo"
missing=()
for p in python3-torch libopenblas0-pthread; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/python3 -c "import torch; print('peer: torch', torch.__version__)"
