#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of one pinned
# Kubernetes release from the Go module proxy, cached under ~/.cache/kubetrove/k8s-<version>/.
#
# Why a wrapper module: k8s.io/kubernetes' go.mod replaces every staging module (k8s.io/api, ...)
# with ./staging/..., so `go install k8s.io/kubernetes/cmd/x@v1.y.z` is refused. We generate a
# throw-away module whose replace lines point each staging module at its published v0.y.z tag,
# reading the list from the release's real go.mod (it changes between minors).
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"
OUT="$CACHE/k8s-$K8S_VERSION"
BINS="${K8S_BINS:-kube-apiserver kube-controller-manager kube-scheduler kubectl}"
missing=""
for b in $BINS; do [ -x "$OUT/$b" ] || missing="$missing $b"; done
if [ -z "$missing" ]; then echo "k8s $K8S_VERSION: cached in $OUT"; exit 0; fi
echo "k8s $K8S_VERSION: building$missing into $OUT (cold build: ~15-30 min on 2 cores)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT; cd "$W"
go mod init local/kubetrove-k8s-build >/dev/null 2>&1
STAGING="v0.${K8S_VERSION#v1.}"
GOMOD="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$GOMOD"); do
  go mod edit -replace="$m=$m@$STAGING"
done
PKGS=""; for b in $missing; do PKGS="$PKGS k8s.io/kubernetes/cmd/$b"; done
echo "  resolving modules..."
go get $(for p in $PKGS; do echo "$p@$K8S_VERSION"; done)
MINOR="$(echo "$K8S_VERSION" | cut -d. -f2)"
LDF="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$MINOR -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$MINOR"
mkdir -p "$OUT"
for p in $PKGS; do
  b="$(basename "$p")"; echo "  go build $b ($(date +%T))"
  go build -p 2 -trimpath -ldflags "$LDF" -o "$OUT/$b.tmp" "$p"
  mv "$OUT/$b.tmp" "$OUT/$b"
done
"$OUT/kube-apiserver" --version 2>/dev/null || true
echo "k8s $K8S_VERSION: built in $OUT"
