#!/usr/bin/env bash
# `make test`: every tier, none skipped. The unit tier first (seconds; a broken build stops here), then
# three lanes side by side, all of them mostly waiting for servers, rings and pods:
#   - the integration tier (real engine servers on loopback: random ports, the rings on 127.0.0.2-7);
#   - the e2e tier's real-node part (tests/e2e/realnode: real pods; the real node is one per machine);
#   - the rest of the e2e tier (tests/e2e/*.py: kwok pods, host agents and rings on 127.0.0.11-17).
# The two e2e lanes are two pytest sessions, each on a local cluster of its own (free loopback ports,
# its own --basetemp): one session's operator watches every namespace of its cluster (docs/development.md
# says why it is not scoped to the session's), so two sessions must never share a cluster.
# Together they run every e2e file exactly once: the second lane is the tree minus tests/e2e/realnode.
# Cassandra JVMs never overlap across lanes and tiers (tests/integration/servers/cassandra.py,
# hold_jvm_turn), whichever process starts them.
# Each lane's output is written to a log and printed when all are done; the exit code is non-zero when any
# lane failed. Each prints its 25 slowest steps (--durations): where the CI budget goes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
LOGDIR="${KUBETROVE_TEST_LOGS:-.work/test-logs}"
mkdir -p "$LOGDIR"

"$PY" -m pytest tests/unit || exit 1
# Every module of every tier imports (15 s): a lane that cannot even collect would otherwise say so only
# once the others have run for half an hour (session 16's CI: an import left behind by a refactor).
"$PY" -m pytest --collect-only -qq -p no:cacheprovider tests --with-integration --with-e2e >/dev/null \
  || { "$PY" -m pytest --collect-only -q -p no:cacheprovider tests --with-integration --with-e2e | tail -40; exit 1; }

# Each session its own base temp dir: pytest empties --basetemp at start and prunes old numbered dirs,
# and the clusters' state, the servers' data dirs and their logs live there.
# A kept `make cluster-up` cluster is not reused here: the two lanes would share it.
export KUBETROVE_E2E_OWN_CLUSTER=1
pids=() names=() logs=()
lane() {  # lane NAME pytest-args...: run in the background, output to its log
  local name=$1; shift
  "$PY" -m pytest "$@" --durations=25 >"$LOGDIR/$name.log" 2>&1 &
  pids+=($!) names+=("$name") logs+=("$LOGDIR/$name.log")
  echo "== $name running beside the integration tier; its output: $LOGDIR/$name.log"
}
lane e2e-realnode tests/e2e/realnode --with-e2e --basetemp=/tmp/kubetrove-e2e-realnode
lane e2e tests/e2e --ignore=tests/e2e/realnode --with-e2e --basetemp=/tmp/kubetrove-e2e
"$PY" -m pytest tests/integration --with-integration --durations=25 --basetemp=/tmp/kubetrove-integration
integration_rc=$?
summary="integration rc=$integration_rc"
failed=$((integration_rc != 0))
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  echo "== ${names[$i]} output"
  cat "${logs[$i]}"
  summary="$summary, ${names[$i]} rc=$rc"
  [ "$rc" -eq 0 ] || failed=1
done
echo "== $summary"
[ "$failed" -eq 0 ]
