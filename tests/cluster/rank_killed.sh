#!/usr/bin/env bash
# Faults across nodes (issue 17): a ZeroShard training job (the Fashion-MNIST example, ZeRO
# stage 3) on 2 emulated nodes x 2 ranks loses, once it is training,
#   rank: one rank process on node 1 (SIGKILL), or
#   node: every process on node 1 at once, Open MPI's daemon included (a node that dies).
# Every other rank must end and the job must fail (non-zero exit, Open MPI naming what died)
# within ENDS_WITHIN seconds of the kill: no hang. Afterwards no process of the job may be left
# on any node. Exits 77 (skip) where namespaces cannot be created.
# Usage: rank_killed.sh BUILD_DIR rank|node
set -euo pipefail
build=$1 scenario=$2
cluster="$(cd "$(dirname "$0")/../../scripts" && pwd)/zs-cluster"
example="$build/examples/zs_fashion_mnist"
ENDS_WITHIN=20
"$cluster" check || exit $?
name="k$(($$ % 10000000))"
work=$(mktemp -d)
job=""
cleanup() {
  [ -z "$job" ] || kill -KILL "$job" 2>/dev/null || true
  "$cluster" --name "$name" down || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "rank killed ($scenario): FAILED: $*"; echo "--- job output ---"; cat "$work/log"; exit 1; }

"$cluster" --name "$name" up --nodes 2 --owner $$ >/dev/null
# A run far longer than the test: it can only end because of the kill.
"$cluster" --name "$name" run -np 4 --map-by ppr:2:node "$example" --stage 3 --epochs 50 --hidden 256 \
  --log-every 1 --communication.timeout_s=60 >"$work/log" 2>&1 &
job=$!
started=$SECONDS
until grep -q "^epoch 1 step" "$work/log"; do
  kill -0 "$job" 2>/dev/null || fail "the job ended before training started"
  [ $((SECONDS - started)) -lt 120 ] || fail "no training step within 120 s"
  sleep 0.2
done

rank_pids() {  # the example's processes on node $1
  local pid
  for pid in $("$cluster" --name "$name" pids "$1"); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "zs_fashion_mnis" ] || echo "$pid"
  done
}
victims=$(rank_pids 1)
[ "$(echo "$victims" | wc -w)" = 2 ] || fail "expected 2 ranks on node 1, found: $victims"
[ "$(rank_pids 0 | wc -w)" = 2 ] || fail "expected 2 ranks on node 0"
if [ "$scenario" = rank ]; then
  victims=$(echo "$victims" | head -1)
else
  victims=$("$cluster" --name "$name" pids 1)  # the ranks and the daemon: the whole node
fi
kill -KILL $victims
killed=$(date +%s%N)
status=""
while [ -z "$status" ]; do
  if ! kill -0 "$job" 2>/dev/null; then
    set +e; wait "$job"; status=$?; set -e
  elif [ $(($(date +%s%N) - killed)) -gt $((ENDS_WITHIN * 1000000000)) ]; then
    fail "the job did not end within $ENDS_WITHIN s of the kill"
  else
    sleep 0.1
  fi
done
job=""
ended_ms=$((($(date +%s%N) - killed) / 1000000))
[ "$status" != 0 ] || fail "the job exited 0 after losing a rank"
for node in 0 1; do
  [ -z "$(rank_pids $node)" ] || fail "ranks still running on node $node after the job ended"
done
if [ "$scenario" = rank ]; then
  grep -Eq "process rank [23] with PID [0-9]+ on node [^ ]+ exited on signal 9" "$work/log" \
    || fail "Open MPI did not name the killed rank"
fi
echo "rank killed ($scenario): job ended $ended_ms ms after the kill, exit $status, no rank left"
echo "rank killed: ok"
