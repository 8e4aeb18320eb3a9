#!/usr/bin/env bash
# Builds the local OCI registry (CNCF Distribution's `registry`) and its client (`crane`, from
# go-containerregistry) from the Go module proxy, cached under ~/.cache/kubetrove/registry-<version>/
# and ~/.cache/kubetrove/crane-<version>/.
#
# Why these two: Distribution is the reference registry implementation (it is what Docker Hub and
# most registries grew from: https://distribution.github.io/distribution/), so what the real node pulls
# from it is what it would pull from any registry. crane is Google's maintained client library's CLI
# (https://github.com/google/go-containerregistry/tree/main/cmd/crane): one static binary, it pushes an
# OCI image layout as is (no daemon, no re-compression) and copies/retags remotely; skopeo would
# need cgo and the containers/image C dependencies.
# Both go.mod files (distribution v3.1.2, go-containerregistry v0.22.1) have no replace directives,
# so a plain `go install pkg@version` builds them.
set -euo pipefail
REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
CRANE_VERSION="${CRANE_VERSION:-v0.22.1}"
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"
export GOTOOLCHAIN=local CGO_ENABLED=0

build() {  # build <name> <version> <package>
  local out="$CACHE/$1-$2"
  if [ -x "$out/$1" ]; then echo "$1 $2: cached in $out"; return; fi
  echo "$1 $2: building into $out ($(date +%T))"
  mkdir -p "$out"
  rm -rf "$out.tmp"
  GOBIN="$out.tmp" go install -p 2 -trimpath -ldflags "-s -w" "$3@$2"
  mv "$out.tmp/$1" "$out/$1" && rmdir "$out.tmp"
  echo "$1 $2: built in $out ($(date +%T))"
}
build registry "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry
build crane "$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane
