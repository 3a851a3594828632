#!/usr/bin/env bash
# Bad command-line options of the examples end with a clear error naming the option, never a
# crash (issue 14, the front door: --log-every 0 died of SIGFPE, --hidden 0/1 divided by zero,
# --epochs abc said only "stoi"); bad files and data are refused at start-up (a 30,000-deep
# JSON overflowed the stack, --config DIR said "unexpected end of file", a data set too small
# for one step trained zero steps, an empty test set printed "-nan%", an unwritable --save-dir
# was found after training); options, data or checkpoint directories that differ across
# ranks are refused on every rank (they hung), run with Open MPI's MPMD syntax
# (`mpirun -np 1 prog ARGS : -np 1 prog OTHER-ARGS`).
# Usage: bad_options.sh BUILD_DIR MPIRUN
set -uo pipefail
build=$(cd "$1" && pwd)
mpirun=$2
failures=0
work=$(mktemp -d /tmp/zs_bad_options_XXXXXX)
trap 'rm -rf "$work"' EXIT
# expect_run "FRAGMENT" RANKS MPIRUN-ARGS...: the job must fail within 60 s (no hang), the
# error must contain FRAGMENT on RANKS ranks (every rank that refused says why), nothing may
# crash, and no training may have started.
expect_run() {
  local fragment=$1 ranks=$2
  shift 2
  local out code
  out=$(timeout 60 "$mpirun" "$@" 2>&1)
  code=$?
  local seen
  seen=$(grep -cF -- "$fragment" <<< "$out")
  if [ "$code" = 0 ] || [ "$code" = 124 ] || [ "$seen" -lt "$ranks" ] ||
     grep -qiE "signal|core dumped|Floating point|^epoch [0-9]+ step" <<< "$out"; then
    echo "FAIL: mpirun $* (exit $code$([ "$code" = 124 ] && echo ': hung'), '$fragment' on $seen of $ranks ranks), got:"
    echo "$out" | head -8
    failures=$((failures + 1))
  else
    echo "ok: $* -> $(grep -F -- "$fragment" <<< "$out" | head -1 | cut -c1-160)"
  fi
}
expect() {  # expect EXAMPLE "FRAGMENT" ARGS...: one rank
  local example=$1 fragment=$2
  shift 2
  expect_run "$fragment" 1 -np 1 "$build/examples/$example" "$@"
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
expect zs_fashion_mnist "communication.timeout_s = -1 is out of range: use 0 .. 1e9 seconds" --communication.timeout_s=-1
expect zs_fashion_mnist "communication.shared_memory_slot_bytes = 10 is out of range" --communication.shared_memory_slot_bytes=10
expect zs_fashion_mnist "communication.reduce_scatter = recursive_doubling: that is an all_gather algorithm" \
  --communication.reduce_scatter=recursive_doubling
expect zs_gpt "optimizer.in_backward = true updates each unit during backward, before the global norm that gradient_clipping = 1" \
  --optimizer.in_backward=true
expect zs_gpt "--n-layer: 'x' is not a whole number" --n-layer x
expect zs_gpt "--temperature: 'inf' is not a finite number" --temperature inf
expect zs_fashion_mnist "--peak-tflops must be > 0" --peak-tflops -1
expect zs_gpt "--peak-tflops: 'fast' is not a finite number" --peak-tflops fast
# The memory limit (issue 18): a bad value names the key; one below the model states refuses
# before anything is allocated.
expect zs_fashion_mnist "memory.limit_fraction = 2 must be in [0, 1]" --memory.limit_fraction=2
expect zs_fashion_mnist "exceeds memory.limit_bytes" --memory.limit_bytes=1000

# Files and data.
fm="$build/examples/zs_fashion_mnist"
expect zs_fashion_mnist "configuration file '/tmp' is a directory" --config /tmp
"${ZS_PYTHON:-/usr/bin/python3}" -c "print('{\"a\":' * 30000 + '1' + '}' * 30000)" > "$work/deep.json"
expect zs_fashion_mnist "nested deeper than 64 levels" --config "$work/deep.json"
# Fashion-MNIST-format data sets of a given size (idx files, as the real ones).
make_data() {  # make_data DIR TRAIN_IMAGES TEST_IMAGES
  "${ZS_PYTHON:-/usr/bin/python3}" - "$@" <<'PY'
import gzip, os, struct, sys
out, sizes = sys.argv[1], {"train": int(sys.argv[2]), "t10k": int(sys.argv[3])}
os.makedirs(out, exist_ok=True)
for prefix, n in sizes.items():
    with gzip.open(f"{out}/{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + bytes(range(256)) * (n * 784 // 256) + bytes(n * 784 % 256))
    with gzip.open(f"{out}/{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + bytes(i % 10 for i in range(n)))
PY
}
make_data "$work/tiny" 10 10
make_data "$work/no_test" 1000 0
make_data "$work/small" 1000 100
expect zs_fashion_mnist "do not fill one step" --data-dir "$work/tiny"
expect zs_fashion_mnist "holds no images" --data-dir "$work/no_test"
touch "$work/a_file"
expect zs_fashion_mnist "--save-dir $work/a_file/ckpt cannot be created" --save-dir "$work/a_file/ckpt" --epochs 1

# Ranks started differently: refused on both ranks, never a hang.
short=(--epochs 1 --hidden 16 --log-every 1000 --metrics "$work/m.jsonl")
expect_run "--epochs is 1 on some ranks, 2 on others" 2 -np 1 "$fm" --epochs 1 : -np 1 "$fm" --epochs 2
expect_run "--log-every is 5 on some ranks, 1000 on others" 2 -np 1 "$fm" "${short[@]}" --log-every 5 : -np 1 "$fm" "${short[@]}"
expect_run "--save-every is 0 on some ranks, 10 on others" 2 -np 1 "$fm" "${short[@]}" --save-dir "$work/c" : \
  -np 1 "$fm" "${short[@]}" --save-dir "$work/c" --save-every 10
expect_run "--save-dir differs" 2 -np 1 "$fm" "${short[@]}" --save-dir "$work/c" : -np 1 "$fm" "${short[@]}"
expect_run "--resume is 0 on some ranks, 1 on others" 2 -np 1 "$fm" "${short[@]}" --save-dir "$work/c" --resume : \
  -np 1 "$fm" "${short[@]}" --save-dir "$work/c"
# The same relative --save-dir from two working directories: DIR/latest exists for rank 0 only.
mkdir -p "$work/seen/ckpt" "$work/unseen"
echo step_1 > "$work/seen/ckpt/latest"
expect_run "DIR/latest (the checkpoint --resume continues) differs" 2 -np 1 -wdir "$work/seen" "$fm" "${short[@]}" \
  --save-dir ckpt --resume : -np 1 -wdir "$work/unseen" "$fm" "${short[@]}" --save-dir ckpt --resume
expect_run "training images (--data-dir) is 1000 on some ranks, 60000 on others" 2 -np 1 "$fm" "${short[@]}" \
  --data-dir "$work/small" : -np 1 "$fm" "${short[@]}"
gpt="$build/examples/zs_gpt"
expect_run "--steps is 5 on some ranks, 6 on others" 2 -np 1 "$gpt" --steps 5 : -np 1 "$gpt" --steps 6
# Hybrid sharding (issue 17): a group size that does not divide the world size, and one that
# differs between ranks, end the job with the key named (every rank refuses; the first to
# print aborts the job, so at least one message is required).
expect_run "zero_optimization.shard_group_size = 2 does not divide the world size 3" 1 -np 3 "$fm" "${short[@]}" \
  --stage 3 --zero_optimization.shard_group_size=2
expect_run "zero_optimization.shard_group_size" 1 -np 1 "$fm" "${short[@]}" --stage 3 \
  --zero_optimization.shard_group_size=2 : -np 1 "$fm" "${short[@]}" --stage 3 --zero_optimization.shard_group_size=1
[ "$failures" = 0 ] && echo "bad options: ok"
