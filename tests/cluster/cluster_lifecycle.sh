#!/usr/bin/env bash
# scripts/zs-cluster's life cycle: `up` makes the nodes, bridge, addresses and shaping it
# promises; a repeated `up` keeps them; another shape rebuilds; `down` leaves nothing (twice is
# fine); a `run` on a cluster that was not up removes it when it ends, also when it is
# interrupted (SIGTERM), and one killed outright (SIGKILL: no trap runs) is reaped by the next
# `up`, its orphaned mpirun with it; `down` during a run ends the run. Exits 77 (skip) where
# namespaces cannot be created.
set -euo pipefail
cluster="$(cd "$(dirname "$0")/../../scripts" && pwd)/zs-cluster"
"$cluster" check || exit $?
name="l$(($$ % 10000000))" other="m$(($$ % 10000000))"
trap '"$cluster" --name "$name" down; "$cluster" --name "$other" down' EXIT
fail() { echo "cluster lifecycle: FAILED: $*"; exit 1; }
objects() {  # every namespace and link of cluster $1, one per line
  { ip netns list | awk '{print $1}' | grep -E "^zs-$1-n" || true
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^zs(br|v)$1(h[0-9]+)?$" || true; } | sort
}

"$cluster" --name "$name" up --nodes 3 --rate 500mbit --owner $$ >/dev/null
[ "$(objects "$name" | grep -c "^zs-$name-n")" = 3 ] || fail "up --nodes 3 made $(objects "$name")"
ip -4 -o addr show dev "zsbr$name" | grep -q "inet 10\.251\.[0-9]*\.1/24" || fail "the bridge has no 10.251.K.1/24 address"
for i in 0 1 2; do
  tc qdisc show dev "zsv${name}h$i" | grep -q "tbf .*rate 500Mbit burst 262[0-9]*b lat 10ms" || fail "node $i's bridge side is not shaped"
  tc -n "zs-$name-n$i" qdisc show dev eth0 | grep -q "tbf .*rate 500Mbit" || fail "node $i's own side is not shaped"
  [ "$("$cluster" --name "$name" exec $i hostname)" = "$name-node$i" ] || fail "node $i has not its own hostname"
done
hosts=$("$cluster" --name "$name" run --slots 1 -np 3 hostname | sort | tr '\n' ' ')
[ "$hosts" = "$name-node0 $name-node1 $name-node2 " ] || fail "mpirun across the nodes ran on: $hosts"

bridge_index=$(cat "/sys/class/net/zsbr$name/ifindex")
"$cluster" --name "$name" up --nodes 3 --rate 500mbit --owner $$ >/dev/null
[ "$(cat "/sys/class/net/zsbr$name/ifindex")" = "$bridge_index" ] || fail "a repeated up rebuilt the cluster"
"$cluster" --name "$name" up --nodes 2 --rate 500mbit --owner $$ >/dev/null
[ "$(objects "$name" | grep -c "^zs-$name-n")" = 2 ] || fail "up --nodes 2 over 3 nodes left $(objects "$name")"

"$cluster" --name "$name" down
[ -z "$(objects "$name")" ] || fail "down left $(objects "$name")"
[ ! -e "/run/zs-cluster/$name" ] || fail "down left the state directory"
"$cluster" --name "$name" down || fail "a second down failed"

# `down` while a run is going: the run ends (its mpirun was left waiting forever for the
# daemons the namespaces took with them).
"$cluster" --name "$name" up --nodes 2 >/dev/null
"$cluster" --name "$name" run -np 2 sleep 60 >/dev/null 2>&1 &
runner=$!
sleep 2
"$cluster" --name "$name" down
for _ in $(seq 100); do kill -0 $runner 2>/dev/null || break; sleep 0.1; done
! kill -0 $runner 2>/dev/null || { kill -KILL $runner; fail "a run went on for 10 s after down"; }
! pgrep -f "mpirun .*-np 2 sleep 60" >/dev/null || fail "down left the run's mpirun running"

# A run on a cluster that was not up: made for the run, gone after it, also when interrupted.
"$cluster" --name "$name" run -np 2 true
[ -z "$(objects "$name")" ] || fail "run left $(objects "$name")"
# Starts a long run on no cluster, waits until its 2 nodes exist and mpirun started, then sends
# signal $1 to the run.
signal_a_run() {
  "$cluster" --name "$name" run -np 2 sleep 60 >/dev/null 2>&1 &
  local runner=$!
  for _ in $(seq 100); do [ "$(objects "$name" | grep -c "^zs-$name-n")" = 2 ] && break; sleep 0.1; done
  sleep 1
  kill "-$1" $runner
  wait $runner 2>/dev/null || true
}
signal_a_run TERM
[ -z "$(objects "$name")" ] || fail "an interrupted run left $(objects "$name")"
signal_a_run KILL
[ -n "$(objects "$name")" ] || fail "expected leftovers of a SIGKILLed run"
"$cluster" --name "$other" up --nodes 1 >/dev/null   # any up reaps clusters whose run is gone
[ -z "$(objects "$name")" ] || fail "the next up did not reap $(objects "$name")"
! pgrep -f "mpirun .*-np 2 sleep 60" >/dev/null || fail "the reaped cluster's orphaned mpirun still runs"
"$cluster" --name "$other" down
echo "cluster lifecycle: ok"
