#!/usr/bin/env bash
# Builds the kwok controller (fake nodes, pod and volume lifecycle for the local cluster) from the Go
# module proxy, cached under ~/.cache/kubetrove/kwok-<version>/, and assembles its stage config.
#
# Why v0.8.0: it ships volume stages (pvc-provision, pv-bind, ...) so StatefulSet PVCs bind without a
# real provisioner. Unlike v0.7.0, the bare `kwok` binary has no built-in stages: it needs --config, so
# we concatenate the module's own kustomize/stage/*/fast YAML files into stages.yaml (nothing copied
# into this repo). kwok's go.mod has no replace directives, so plain `go install` works.
set -euo pipefail
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"
OUT="$CACHE/kwok-$KWOK_VERSION"
if [ -x "$OUT/kwok" ] && [ -s "$OUT/stages.yaml" ] && [ -s "$OUT/storage-class.yaml" ]; then
  echo "kwok $KWOK_VERSION: cached in $OUT"; exit 0
fi
echo "kwok $KWOK_VERSION: building into $OUT ($(date +%T); cold build: a few minutes on 2 cores)"
export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$OUT"
GOBIN="$OUT" go install -p 2 -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
SRC="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
# Node: initialize + heartbeat; pod: ready/complete/delete; volume: provision/bind/delete (fast = no delays).
STAGES="node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml
 pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml
 volume/fast/pvc-provision.yaml volume/fast/pv-bind.yaml volume/fast/pvc-delete.yaml volume/fast/pv-delete.yaml"
: > "$OUT/stages.yaml.tmp"
for s in $STAGES; do { echo "---"; cat "$SRC/$s"; } >> "$OUT/stages.yaml.tmp"; done
mv "$OUT/stages.yaml.tmp" "$OUT/stages.yaml"
install -m 0644 "$SRC/volume/fast/storage-class.yaml" "$OUT/storage-class.yaml"
"$OUT/kwok" --version
echo "kwok $KWOK_VERSION: built in $OUT ($(date +%T))"
