#!/usr/bin/env bash
# Runs an MPI program on an emulated cluster made for this test alone (scripts/zs-cluster run:
# its own name, subnet and namespaces, so concurrent `ctest -j` runs never collide), then checks
# the cluster is gone afterwards. Exits 77 (CTest SKIP_RETURN_CODE) with the reason where this
# machine cannot create namespaces.
# Usage: run_on_cluster.sh NODES RANKS_PER_NODE PROGRAM [ARGS...]
# The program sees ZS_EXPECT_NODES, ZS_EXPECT_RANKS_PER_NODE and ZS_LINK_INTERFACE (the node's
# interface to the bridge: eth0) (tests/cluster/test_cluster_topology.cpp).
set -euo pipefail
cluster="$(cd "$(dirname "$0")/../../scripts" && pwd)/zs-cluster"
nodes=$1 per_node=$2
shift 2
"$cluster" check || exit $?
name="c$(($$ % 10000000))"
status=0
"$cluster" --name "$name" run --nodes "$nodes" --slots "$per_node" -np $((nodes * per_node)) --map-by "ppr:$per_node:node" \
  -x ZS_EXPECT_NODES="$nodes" -x ZS_EXPECT_RANKS_PER_NODE="$per_node" -x ZS_LINK_INTERFACE=eth0 "$@" || status=$?
left=$(ip netns list | awk '{print $1}' | grep -E "^zs-$name-n" || true)
if [ -n "$left" ]; then
  echo "run_on_cluster: the cluster was not torn down: $left" >&2
  "$cluster" --name "$name" down
  exit 1
fi
exit $status
