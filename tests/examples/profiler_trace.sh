#!/usr/bin/env bash
# The profiler from an example's command line (issue 18): the GPT example at 2 ranks with
# --profiler.enabled=true writes one Chrome trace that Python's json module reads (an
# independent parser), with a process per rank and the spans of a step.
# Usage: profiler_trace.sh BUILD_DIR MPIRUN
set -euo pipefail
build=$1
mpirun=$2
dir=$(mktemp -d /tmp/zs_profiler_XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$mpirun" -np 2 "$build/examples/zs_gpt" --stage 3 --n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch 4 \
  --steps 6 --eval-every 0 --sample-bytes 0 --metrics "$dir/metrics.jsonl" \
  --profiler.enabled=true --profiler.steps=2:4 --profiler.output="$dir/trace" | tee "$dir/out.txt"
grep -qF "profiler: Chrome trace in $dir/trace.json" "$dir/out.txt"
"${ZS_PYTHON:-/usr/bin/python3}" -m json.tool "$dir/trace.json" >/dev/null
"${ZS_PYTHON:-/usr/bin/python3}" - "$dir/trace.json" <<'PY'
import json, sys
trace = json.load(open(sys.argv[1]))
events = trace["traceEvents"]
processes = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
assert sorted(processes) == [0, 1], processes
for pid in processes:
    names = {e["name"] for e in events if e["pid"] == pid and e["ph"] in ("X", "b")}
    for expected in ("forward unit 0", "backward unit 0", "optimizer update", "gradient norm", "wait unit 0"):
        assert expected in names, (pid, expected, sorted(names))
    assert any(n.startswith("all_gather unit") for n in names), sorted(names)
    assert any(n.startswith("reduce_scatter unit") for n in names), sorted(names)
    begins = sum(1 for e in events if e["pid"] == pid and e["ph"] == "b")
    ends = sum(1 for e in events if e["pid"] == pid and e["ph"] == "e")
    assert begins == ends > 0, (begins, ends)
print("profiler trace: ok (%d events, ranks %s)" % (len(events), sorted(processes)))
PY
