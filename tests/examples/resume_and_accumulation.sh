#!/usr/bin/env bash
# The example's training state across epochs ends, resizes and resumes (issue 11):
# 1. gradient accumulation that does not divide an epoch (937 micro-steps at 1 rank,
#    accumulation 2; 2 ranks, accumulation 5): the last partial window is dropped, training
#    ends at a boundary, and the final checkpoint is written (it was refused, MPI_Abort);
# 3. a run trained at 4 ranks and resumed from step 300 at 2 ranks continues the saved LR
#    schedule (the LR of every step 301..468 equals the uninterrupted run's; it was recomputed
#    from the new world size) and the saved global batch (accumulation 2 at 2 ranks), and
#    ends at the same step, at the schedule's floor;
# 4. resumed for more epochs (3 instead of 2): the saved schedule ends at step 468, before the
#    run does, and the example says so with the fix; with that fix on the command line
#    (--scheduler.params.total_steps) the user's value wins over the saved one (it was
#    silently replaced, and the LR rose again past step 468) and the LR falls to the floor;
# 3b. batch keys on the resuming command line and optimizer.in_backward (below).
# Usage: resume_and_accumulation.sh BUILD_DIR MPIRUN
set -euo pipefail
build=$1
mpirun=$2
example="$build/examples/zs_fashion_mnist"
python=${ZS_PYTHON:-/usr/bin/python3}  # set by CTest (tests/CMakeLists.txt): a Python with h5py
dir=$(mktemp -d /tmp/zs_resume_XXXXXX)
trap 'rm -rf "$dir"' EXIT

# 1. Accumulation that does not divide an epoch.
"$mpirun" -np 1 "$example" --epochs 1 --hidden 32 --gradient_accumulation_steps=2 --save-dir "$dir/a1" \
  --metrics "$dir/a1.jsonl" > "$dir/a1.log"
grep -q "checkpoint $dir/a1/step_468 written" "$dir/a1.log"
[ "$(cat "$dir/a1/latest")" = step_468 ]
"$mpirun" -np 2 "$example" --epochs 1 --hidden 32 --gradient_accumulation_steps=5 --save-dir "$dir/a2" \
  --metrics "$dir/a2.jsonl" > "$dir/a2.log"
grep -q "checkpoint $dir/a2/step_93 written" "$dir/a2.log"
echo "accumulation: final checkpoints written at the last whole step (468 and 93)"

# 3. 2 epochs at 4 ranks (234 steps per epoch of 256 samples), checkpoint at step 300.
"$mpirun" -np 4 "$example" --epochs 2 --hidden 32 --log-every 1 --save-dir "$dir/run" --save-every 300 \
  --metrics "$dir/uninterrupted.jsonl" > "$dir/uninterrupted.log"
mkdir "$dir/resized"
cp -r "$dir/run/step_300" "$dir/resized/"
echo step_300 > "$dir/resized/latest"
"$mpirun" -np 2 "$example" --epochs 2 --hidden 32 --log-every 1 --save-dir "$dir/resized" --resume \
  --metrics "$dir/resumed.jsonl" > "$dir/resumed.log"
grep -q "global batch of 256 samples per step (64 x 2 ranks x accumulation 2)" "$dir/resumed.log"
"$python" - "$dir/uninterrupted.jsonl" "$dir/resumed.jsonl" <<'PY'
import json, sys
def lrs(path):
    return {r["step"]: r["lr"] for r in map(json.loads, open(path)) if r["kind"] == "train"}
whole, resumed = lrs(sys.argv[1]), lrs(sys.argv[2])
assert min(resumed) == 301 and max(resumed) == max(whole) == 468, (min(resumed), max(resumed), max(whole))
bad = [(s, whole[s], lr) for s, lr in resumed.items() if abs(lr - whole[s]) > 1e-9 * max(abs(whole[s]), 1e-12)]
assert not bad, f"LR differs after the resume at 2 ranks (step, uninterrupted, resumed): {bad[:5]}"
print(f"resize: LR of steps 301..468 equal to the uninterrupted run's (step 301: {resumed[301]:.6g}, last: {resumed[468]:.6g})")
PY
# 3b. A batch key on the resuming command line that would change the saved global batch is
#     refused naming the value that keeps it (it was applied without the plan's accumulation: a
#     silently larger global batch under a note saying it was kept); optimizer.in_backward, which
#     cannot accumulate, resumes with accumulation 1 and the micro-batch that makes up the batch.
for conflicting in --train_micro_batch_size_per_gpu=48 --gradient_accumulation_steps=1; do
  if "$mpirun" -np 2 "$example" --epochs 2 --hidden 32 --save-dir "$dir/resized" --resume --save-every 0 \
       "$conflicting" > "$dir/conflict.log" 2>&1; then
    echo "resume with $conflicting was accepted:"; cat "$dir/conflict.log"; exit 1
  fi
  grep -q "would change the global batch the checkpoint was trained with" "$dir/conflict.log" ||
    { echo "resume with $conflicting: no clear refusal:"; cat "$dir/conflict.log"; exit 1; }
done
mkdir "$dir/in_backward"
cp -r "$dir/run/step_300" "$dir/in_backward/"
echo step_300 > "$dir/in_backward/latest"
"$mpirun" -np 2 "$example" --epochs 2 --hidden 32 --log-every 1000 --save-dir "$dir/in_backward" --resume --save-every 0 \
  --optimizer.in_backward=true > "$dir/in_backward.log"
grep -q "global batch of 256 samples per step (128 x 2 ranks x accumulation 1)" "$dir/in_backward.log" ||
  { echo "in_backward resume did not keep the global batch in one micro-step:"; cat "$dir/in_backward.log"; exit 1; }
echo "resume batch keys: conflicting values refused; in_backward resumed with 128 x 2 x 1"

# 4. More epochs than the saved schedule covers.
mkdir "$dir/longer"
cp -r "$dir/run/step_300" "$dir/longer/"
echo step_300 > "$dir/longer/latest"
"$mpirun" -np 2 "$example" --epochs 3 --hidden 32 --log-every 1000 --save-dir "$dir/longer" --resume \
  --save-every 0 > "$dir/longer_warned.log"
grep -q "warning: the cosine LR schedule ends at step 468 but this run trains to step 702" "$dir/longer_warned.log" ||
  { echo "no warning that the saved schedule ends before the run:"; cat "$dir/longer_warned.log"; exit 1; }
grep -q -- "--scheduler.params.total_steps=502" "$dir/longer_warned.log"
mkdir "$dir/stretched"
cp -r "$dir/run/step_300" "$dir/stretched/"
echo step_300 > "$dir/stretched/latest"
"$mpirun" -np 2 "$example" --epochs 3 --hidden 32 --log-every 1 --save-dir "$dir/stretched" --resume --save-every 0 \
  --scheduler.params.total_steps=502 --metrics "$dir/longer.jsonl" > "$dir/longer.log"
grep -q "scheduler.params.total_steps as given on the command line" "$dir/longer.log" ||
  { echo "the resume note does not say the command line's total_steps was kept:"; grep resume "$dir/longer.log"; exit 1; }
! grep -q "warning: the cosine LR schedule" "$dir/longer.log"
"$python" - "$dir/longer.jsonl" <<'PY'
import json, sys
lr = {r["step"]: r["lr"] for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "train"}
steps = sorted(lr)
assert steps[0] == 301 and steps[-1] == 702, (steps[0], steps[-1])
rises = [(a, lr[a], lr[b]) for a, b in zip(steps, steps[1:]) if lr[b] > lr[a] * (1 + 1e-12)]
assert not rises, f"the LR rose after the resume: {rises[:3]}"
print(f"longer: LR falls from {lr[301]:.6g} at step 301 to {lr[702]:.6g} at step 702, never rising")
PY
echo "resume and accumulation: ok"
