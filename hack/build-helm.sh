#!/usr/bin/env bash
# Builds Helm v3 from the Go module proxy, cached under ~/.cache/kubetrove/helm-<version>/.
#
# helm.sh/helm/v3's go.mod (checked for v3.21.4 and v3.22.0) has no replace directives, so a plain
# `go install pkg@version` works: no wrapper module is needed. The version string is injected with
# -ldflags as Helm's own Makefile does: the version (else `helm version` reports a dev build), and the
# Kubernetes version `helm template`/`helm lint` assume without a cluster, derived from the client-go
# minor Helm requires (else it is v1.20, and a chart with kubeVersion >= 1.29 refuses to render).
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"
OUT="$CACHE/helm-$HELM_VERSION"
if [ -x "$OUT/helm" ]; then
  echo "helm $HELM_VERSION: cached in $OUT"; exit 0
fi
echo "helm $HELM_VERSION: building into $OUT ($(date +%T); cold build: several minutes on 2 cores)"
export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$OUT"
GOMOD="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
K8S_MINOR="$(sed -n 's#^\s*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$GOMOD")"
[ -n "$K8S_MINOR" ] || { echo "cannot read the client-go version from $GOMOD" >&2; exit 1; }
X="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  X="$X -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$K8S_MINOR"
done
GOBIN="$OUT.tmp" go install -p 2 -trimpath -ldflags "-s -w $X" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$OUT.tmp/helm" "$OUT/helm" && rmdir "$OUT.tmp"
"$OUT/helm" version
echo "helm $HELM_VERSION: built in $OUT ($(date +%T))"
