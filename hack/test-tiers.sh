#!/usr/bin/env bash
# `make test`: every tier, none skipped. The unit tier first (seconds; a broken build stops here), then the
# integration tier (real engine servers on loopback) and the e2e tier (the local Kubernetes and its real
# node) side by side: both spend most of their time waiting for servers, rings and pods, and they share
# nothing (random loopback ports, the ring on 127.0.0.2-7, the node on its own bridge; e2e sessions watch
# only their own namespaces), so running them together keeps a cold CI run inside its budget on 2 cores.
# The e2e tier's output is written to a log and printed when both are done; the exit code is non-zero when
# either tier failed. Both print their 25 slowest steps (--durations): where the CI budget goes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
LOGDIR="${KUBETROVE_TEST_LOGS:-.work/test-logs}"
mkdir -p "$LOGDIR"
E2E_LOG="$LOGDIR/e2e.log"

"$PY" -m pytest tests/unit || exit 1

echo "== e2e tier running beside the integration tier; its output: $E2E_LOG"
# Each tier its own base temp dir: pytest prunes old numbered dirs under /tmp/pytest-of-$USER, and two
# sessions there could prune each other's (servers' data dirs and logs live in them).
"$PY" -m pytest tests/e2e --with-e2e --durations=25 --basetemp=/tmp/kubetrove-e2e >"$E2E_LOG" 2>&1 &
e2e_pid=$!
"$PY" -m pytest tests/integration --with-integration --durations=25 --basetemp=/tmp/kubetrove-integration
integration_rc=$?
wait "$e2e_pid"
e2e_rc=$?
echo "== e2e tier output"
cat "$E2E_LOG"
echo "== integration tier rc=$integration_rc, e2e tier rc=$e2e_rc"
[ "$integration_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ]
