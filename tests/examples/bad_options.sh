#!/usr/bin/env bash
# Bad command-line options of the examples end with a clear error naming the option, never a
# crash (issue 14, the front door: --log-every 0 died of SIGFPE, --hidden 0/1 divided by zero,
# --epochs abc said only "stoi").
# Usage: bad_options.sh BUILD_DIR MPIRUN
set -uo pipefail
build=$1
mpirun=$2
failures=0
expect() {  # expect EXAMPLE "FRAGMENT" ARGS...
  local example=$1 fragment=$2
  shift 2
  local out
  out=$("$mpirun" -np 1 "$build/examples/$example" "$@" 2>&1)
  local code=$?
  if [ "$code" = 0 ] || ! grep -qF -- "$fragment" <<< "$out" || grep -qiE "signal|core dumped|Floating point" <<< "$out"; then
    echo "FAIL: $example $* (exit $code), expected an error with '$fragment', got:"
    echo "$out" | head -5
    failures=$((failures + 1))
  else
    echo "ok: $example $* -> $(grep -F -- "$fragment" <<< "$out" | head -1 | cut -c1-140)"
  fi
}
expect zs_fashion_mnist "--log-every must be >= 1" --log-every 0
expect zs_fashion_mnist "--hidden must be >= 2" --hidden 0
expect zs_fashion_mnist "--hidden must be >= 2" --hidden 1
expect zs_fashion_mnist "--epochs: 'abc' is not a whole number" --epochs abc
expect zs_fashion_mnist "--epochs: 4294967298 is out of range" --epochs 4294967298
expect zs_fashion_mnist "--dropout: 'nan' is not a finite number" --dropout nan
expect zs_fashion_mnist "--dropout must be in [0, 1)" --dropout 1.5
expect zs_fashion_mnist "'5' is not a step range A:B" --profiler.steps=5
expect zs_fashion_mnist "'4:2' is not a step range A:B" --profiler.steps=4:2
expect zs_fashion_mnist "communication.timeout_s = -1 must be >= 0" --communication.timeout_s=-1
expect zs_gpt "--n-layer: 'x' is not a whole number" --n-layer x
expect zs_gpt "--temperature: 'inf' is not a finite number" --temperature inf
expect zs_fashion_mnist "--peak-tflops must be > 0" --peak-tflops -1
expect zs_gpt "--peak-tflops: 'fast' is not a finite number" --peak-tflops fast
# The memory limit (issue 18): a bad value names the key; one below the model states refuses
# before anything is allocated.
expect zs_fashion_mnist "memory.limit_fraction = 2 must be in [0, 1]" --memory.limit_fraction=2
expect zs_fashion_mnist "exceeds memory.limit_bytes" --memory.limit_bytes=1000
[ "$failures" = 0 ] && echo "bad options: ok"
