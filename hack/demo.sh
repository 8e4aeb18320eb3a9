#!/usr/bin/env bash
# `make demo`: the main job, for real. The local cluster with its real node (hack/realnode), the CRDs,
# the operator as a host process, a 3-member MariaDB DatabaseCluster on real pods; wait for Ready, show
# the status, then connect with a real client (pymysql) through the read-write Service's ClusterIP
# (kube-proxy on the host routes it) as the spec's user, and write and read a row.
# The cluster and node stay up afterwards (`make cluster-down` stops them); the operator stops on exit,
# and the demo's DatabaseCluster and namespace are deleted first unless DEMO_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
NS="${DEMO_NAMESPACE:-kubetrove-demo}"
T0=$(date +%s)
say() { echo "== demo: $* (+$(( $(date +%s) - T0 ))s)"; }

say "local cluster + real node"
"$PY" hack/localkube.py up --real-node
KUBECONFIG="$("$PY" hack/localkube.py kubeconfig)"; export KUBECONFIG
STATE="$(dirname "$KUBECONFIG")"
K() { "$HOME/.cache/kubetrove/k8s-$(sed -n 's/^K8S_VERSION="\${K8S_VERSION:-\(.*\)}"$/\1/p' hack/build-k8s.sh)/kubectl" "$@"; }

say "CRDs"
K apply --server-side --force-conflicts -f crds/ >/dev/null
K wait --for=condition=Established --timeout=60s crd --all >/dev/null

say "operator (log: $STATE/logs/operator.log)"
# Ports 0: the metrics and health endpoints must not collide with another operator on this machine.
PYTHONPATH=operator KUBETROVE_STATUS_INTERVAL=5 KUBETROVE_METRICS_PORT=0 KUBETROVE_HEALTH_PORT=0 \
  "$PY" -m kubetrove.handlers.main >>"$STATE/logs/operator.log" 2>&1 &
OP=$!
cleanup() {
  # The DatabaseCluster carries the operator's finalizer: delete it while the operator still runs.
  if [ "${DEMO_KEEP:-0}" != 1 ]; then
    K -n "$NS" delete dbc --all --timeout=120s >/dev/null 2>&1 || true
    K delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  fi
  kill "$OP" 2>/dev/null && wait "$OP" 2>/dev/null || true
}
trap cleanup EXIT
# A previous run's namespace may still be terminating (it needs the operator to release the finalizer).
if [ "$(K get namespace "$NS" -o jsonpath='{.status.phase}' 2>/dev/null)" = Terminating ]; then
  K wait --for=delete "namespace/$NS" --timeout=180s >/dev/null 2>&1 || true
fi

say "namespace $NS (annotated: its pods run on the real node) and the DatabaseCluster"
K create namespace "$NS" --dry-run=client -o yaml | K apply -f - >/dev/null
PYTHONPATH=hack "$PY" -c 'import realnode; [print(f"{k}={v}") for k, v in realnode.REAL_NODE_ANNOTATIONS.items()]' |
  while IFS= read -r a; do K annotate --overwrite namespace "$NS" "$a" >/dev/null; done
K -n "$NS" create secret generic app-password --from-literal=password="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  --dry-run=client -o yaml | K apply -f - >/dev/null
K -n "$NS" apply -f - <<'EOF'
apiVersion: kubetrove.io/v1alpha1
kind: DatabaseCluster
metadata:
  name: demo
spec:
  datastore: {type: mariadb, version: "10.11"}
  replicas: 3
  resources:
    requests: {cpu: 200m, memory: 384Mi}
    limits: {memory: 1Gi}
  storage: {size: 1Gi, storageClassName: kubetrove-local}
  databases: [{name: orders}]
  users:
    - name: app
      passwordSecretRef: {name: app-password, key: password}
      grants: [{database: orders, privileges: [readWrite]}]
  deletionPolicy: {volumes: Delete}
EOF

say "waiting for Ready, a primary and the users (real pods: mariadb-install-db, replication, role labels)"
deadline=$(( $(date +%s) + ${DEMO_TIMEOUT:-600} ))
# The rw Service routes to the pod labelled primary, and the app user exists once UsersReady is True:
# phase Ready alone is not enough to log in.
status() { K -n "$NS" get dbc demo -o jsonpath="{.status.$1}" 2>/dev/null || true; }
until [ "$(status phase)" = Ready ] && [ -n "$(status primary)" ] &&
  [ "$(status 'conditions[?(@.type=="UsersReady")].status')" = True ]; do
  kill -0 "$OP" 2>/dev/null || { echo "demo: FAILED: the operator exited"; tail -30 "$STATE/logs/operator.log"; exit 1; }
  if [ "$(date +%s)" -gt "$deadline" ]; then
    echo "demo: FAILED: not Ready with a primary in time"; K -n "$NS" get dbc,sts,pods,pvc -o wide || true
    K -n "$NS" get dbc demo -o jsonpath='{.status}' || true; echo; tail -30 "$STATE/logs/operator.log"; exit 1
  fi
  sleep 5
done
K -n "$NS" get dbc,pods -o wide
K -n "$NS" get dbc demo -o jsonpath='{.status}' | "$PY" -m json.tool

say "pymysql through Service demo-rw, as user app"
RW="$(K -n "$NS" get svc demo-rw -o jsonpath='{.spec.clusterIP}')"
PW="$(K -n "$NS" get secret app-password -o jsonpath='{.data.password}' | base64 -d)"
RW="$RW" PW="$PW" "$PY" - <<'EOF'
import os
import time

import pymysql

# The Service's endpoints and kube-proxy's rules follow the primary label within seconds: retry a
# refused connection for a while (never a failed login).
for attempt in range(30):
    try:
        conn = pymysql.connect(host=os.environ["RW"], port=3306, user="app", password=os.environ["PW"],
                               database="orders", connect_timeout=10, autocommit=True)
        break
    except pymysql.err.OperationalError as exc:
        if exc.args[0] not in (2003, 2013) or attempt == 29:
            raise
        time.sleep(2)
with conn.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS demo (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64))")
    cur.execute("INSERT INTO demo (note) VALUES ('hello from make demo')")
    cur.execute("SELECT id, note, @@hostname, VERSION() FROM demo ORDER BY id DESC LIMIT 1")
    row = cur.fetchone()
print(f"wrote and read back: id={row[0]} note={row[1]!r} on {row[2]} ({row[3]})")
EOF
say "done; \`make cluster-down\` stops the cluster and the real node"
