#!/usr/bin/env bash
# The GPT example's checkpoint and resume at another world size and stage (issue 16): a run
# at 2 ranks, ZeRO stage 3, saves at step 20 and goes on to step 40; the step-20 checkpoint is
# resumed at 1 rank, stage 1. The resumed run must keep the saved global batch (micro-batch 8 x
# 1 rank x accumulation 2 for the saved 8 x 2 x 1), continue with the same windows and LR, and
# end where the uninterrupted run ends: LR of steps 21..40 equal, training losses and the
# final validation loss equal to float rounding (accumulation sums in another order).
# Usage: gpt_resume.sh BUILD_DIR MPIRUN
set -euo pipefail
build=$1
mpirun=$2
example="$build/examples/zs_gpt"
python=${ZS_PYTHON:-/usr/bin/python3}  # set by CTest (tests/CMakeLists.txt): a Python with h5py
dir=$(mktemp -d /tmp/zs_gpt_resume_XXXXXX)
trap 'rm -rf "$dir"' EXIT
model=(--n-layer 2 --n-head 2 --n-embd 32 --block-size 32 --batch 8 --steps 40 --log-every 1 --eval-every 0
       --sample-bytes 16 --scheduler.params.warmup_steps=10)

"$mpirun" -np 2 "$example" --stage 3 "${model[@]}" --save-dir "$dir/run" --save-every 20 \
  --metrics "$dir/uninterrupted.jsonl" > "$dir/uninterrupted.log"
grep -q "checkpoint $dir/run/step_20 written" "$dir/uninterrupted.log"
grep -q "checkpoint $dir/run/step_40 written" "$dir/uninterrupted.log"
mkdir "$dir/resized"
cp -r "$dir/run/step_20" "$dir/resized/"
echo step_20 > "$dir/resized/latest"
"$mpirun" -np 1 "$example" --stage 1 "${model[@]}" --save-dir "$dir/resized" --resume \
  --metrics "$dir/resumed.jsonl" > "$dir/resumed.log"
grep -q "resumed from $dir/resized/latest: step 20 (saved by a stage-3 run)" "$dir/resumed.log"
grep -q "global batch of 16 samples per step (8 x 1 ranks x accumulation 2)" "$dir/resumed.log"
grep -q "checkpoint $dir/resized/step_40 written" "$dir/resumed.log"
"$python" - "$dir/uninterrupted.jsonl" "$dir/resumed.jsonl" <<'PY'
import json, sys
def read(path):
    rows = [json.loads(line) for line in open(path)]
    train = {r["step"]: r for r in rows if r["kind"] == "train"}
    final = [r for r in rows if r["kind"] == "final"][-1]
    return train, final
(whole, whole_final), (resumed, resumed_final) = read(sys.argv[1]), read(sys.argv[2])
assert min(resumed) == 21 and max(resumed) == max(whole) == 40, (min(resumed), max(resumed), max(whole))
for s, r in resumed.items():
    w = whole[s]
    assert abs(r["lr"] - w["lr"]) <= 1e-12 * max(abs(w["lr"]), 1e-12), f"step {s}: LR {r['lr']} vs {w['lr']}"
    assert abs(r["loss"] - w["loss"]) <= 1e-4 * abs(w["loss"]), f"step {s}: loss {r['loss']} vs {w['loss']}"
a, b = whole_final["validation_loss"], resumed_final["validation_loss"]
assert abs(a - b) <= 1e-4 * abs(a), f"final validation loss {b} after the resume, {a} uninterrupted"
print(f"resumed at 1 rank, stage 1: steps 21..40 match (step 40 loss {resumed[40]['loss']:.5f} vs "
      f"{whole[40]['loss']:.5f}), final validation loss {b:.5f} vs {a:.5f}")
PY
echo "gpt resume: ok"
