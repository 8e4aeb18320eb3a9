#!/usr/bin/env bash
# `make demo`: the main job, the way a user does it. The local cluster with its real node
# (hack/realnode) and the local registry, every image built from Debian packages and pushed there
# (hack/images), `helm install` of charts/kubetrove (the operator runs as a pod on the real node with
# its ServiceAccount), `kubectl apply` of a 3-member MariaDB DatabaseCluster; wait for Ready, show the
# status, then connect with a real client (pymysql) through the read-write Service's ClusterIP
# (kube-proxy on the host routes it) as the spec's user, and write and read a row.
# The cluster, node and registry stay up afterwards (`make cluster-down` stops them); the demo's
# DatabaseCluster, namespace and Helm release are removed first unless DEMO_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${VENV:-.venv}/bin/python"
NS="${DEMO_NAMESPACE:-kubetrove-demo}"
OPNS="${DEMO_OPERATOR_NAMESPACE:-kubetrove-system}"
RELEASE="${DEMO_RELEASE:-kubetrove}"
T0=$(date +%s)
say() { echo "== demo: $* (+$(( $(date +%s) - T0 ))s)"; }

say "local cluster + real node + registry (images built and pushed: hack/images)"
"$PY" hack/localkube.py up --real-node
KUBECONFIG="$("$PY" hack/localkube.py kubeconfig)"; export KUBECONFIG
KUBECTL="$HOME/.cache/kubetrove/k8s-$(sed -n 's/^K8S_VERSION="\${K8S_VERSION:-\(.*\)}"$/\1/p' hack/build-k8s.sh)/kubectl"
K() { "$KUBECTL" "$@"; }
HELM="$HOME/.cache/kubetrove/helm-$(sed -n 's/^HELM_VERSION="\${HELM_VERSION:-\(.*\)}"$/\1/p' hack/build-helm.sh)/helm"
REGISTRY="$(PYTHONPATH=hack "$PY" -c 'from realnode import registry; print(registry.REPOSITORY)')"
real_node_namespace() {  # a namespace whose pods all run on the real node (the kwok node is fake)
  K create namespace "$1" --dry-run=client -o yaml | K apply -f - >/dev/null
  PYTHONPATH=hack "$PY" -c 'import realnode; [print(f"{k}={v}") for k, v in realnode.REAL_NODE_ANNOTATIONS.items()]' |
    while IFS= read -r a; do K annotate --overwrite namespace "$1" "$a" >/dev/null; done
}

cleanup() {
  # The DatabaseCluster carries the operator's finalizer: delete it while the operator still runs.
  if [ "${DEMO_KEEP:-0}" != 1 ]; then
    K -n "$NS" delete dbc --all --timeout=120s >/dev/null 2>&1 || true
    K delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
    "$HELM" uninstall "$RELEASE" -n "$OPNS" --wait >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

say "CRDs (kubectl apply: Helm installs a chart's CRDs once and never upgrades them)"
K apply --server-side --force-conflicts -f crds/ >/dev/null
K wait --for=condition=Established --timeout=60s crd --all >/dev/null
# A previous run's namespace may still be terminating (it needs an operator to release the finalizer).
if [ "$(K get namespace "$NS" -o jsonpath='{.status.phase}' 2>/dev/null)" = Terminating ]; then
  K wait --for=delete "namespace/$NS" --timeout=180s >/dev/null 2>&1 || true
fi
real_node_namespace "$NS"

# Namespaced mode (watchNamespaces): the local cluster is shared with the e2e tests, whose namespaces a
# cluster-wide operator would reconcile too.
say "helm install $RELEASE into $OPNS (operator image $REGISTRY/operator, watching $NS)"
real_node_namespace "$OPNS"
"$HELM" upgrade --install "$RELEASE" charts/kubetrove -n "$OPNS" --wait --timeout 300s \
  --set imageRegistry="$REGISTRY" --set "watchNamespaces={$NS}" --set extraEnv[0].name=KUBETROVE_STATUS_INTERVAL \
  --set-string extraEnv[0].value=5
K -n "$OPNS" get pods -o wide
operator_log() { K -n "$OPNS" logs -l app.kubernetes.io/component=operator --tail=30 || true; }

say "DatabaseCluster demo in $NS (kubectl apply)"
K -n "$NS" create secret generic app-password --from-literal=password="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  --dry-run=client -o yaml | K apply -f - >/dev/null
DEMO_CR=$(cat <<'EOF2'
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
EOF2
)
# The chart's DatabasePolicy webhooks (admission.enabled, failurePolicy Fail) answer once kube-proxy
# routes their Service to the new operator pod, a moment after it is Ready: wait for a server dry run.
for _ in $(seq 1 60); do
  printf '%s\n' "$DEMO_CR" | K -n "$NS" apply --dry-run=server -f - >/dev/null 2>&1 && break
  sleep 1
done
printf '%s\n' "$DEMO_CR" | K -n "$NS" apply -f -

say "waiting for Ready, a primary and the users (real pods: mariadb-install-db, replication, role labels)"
deadline=$(( $(date +%s) + ${DEMO_TIMEOUT:-600} ))
# The rw Service routes to the pod labelled primary, and the app user exists once UsersReady is True:
# phase Ready alone is not enough to log in.
status() { K -n "$NS" get dbc demo -o jsonpath="{.status.$1}" 2>/dev/null || true; }
until [ "$(status phase)" = Ready ] && [ -n "$(status primary)" ] &&
  [ "$(status 'conditions[?(@.type=="UsersReady")].status')" = True ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    echo "demo: FAILED: not Ready with a primary in time"; K -n "$NS" get dbc,sts,pods,pvc -o wide || true
    K -n "$NS" get dbc demo -o jsonpath='{.status}' || true; echo; operator_log; exit 1
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
say "next: the same without YAML, acting as you (docs/cli.md, docs/console.md)"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  keep="DEMO_KEEP=1: the demo database stays (kubectl -n $NS delete dbc demo removes it)"
else
  keep="the demo removes its database on exit; run DEMO_KEEP=1 make demo to keep it for these"
fi
other=demo-0; [ "$(status primary)" = demo-0 ] && other=demo-1
cat <<NEXT
  # $keep
  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$KUBECTL"):$PWD/${VENV:-.venv}/bin:\$PATH
  kubectl trove -n $NS list
  kubectl trove -n $NS get demo
  kubectl trove -n $NS credentials demo --user app
  kubectl trove -n $NS connect demo --user app --database orders
  kubectl trove -n $NS switchover demo --to $other   # planned and lossless; \`get demo\` shows the new primary
  kubectl trove -n $NS console      # prints a URL with a login token: open it in a browser
NEXT
say "done; \`make cluster-down\` stops the cluster, the real node and the registry"
