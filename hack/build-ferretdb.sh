#!/usr/bin/env bash
# Builds FerretDB v1.24 (a MongoDB-wire server on SQLite; no mongod can be obtained here) from the Go
# module proxy into ~/.cache/kubetrove/ferretdb-<ver>/ferretdb. Idempotent: a second run is instant.
#
# Why not `go install ...@v1.24.x`: build/version/version.go panics at start-up unless the embedded
# version.txt (gitignored, absent from the module zip) holds "v<major>.<minor>.<patch>" whenever the
# binary's main module is github.com/FerretDB/FerretDB. The wrapper-module trick (go get + go build
# from a local module) no longer avoids it: Go >= 1.24 records the main package's own module as the
# main module in the build info. So: copy the module source out of the module cache, write the
# missing version.txt, and build it as the main module (its go.sum is in the zip; no git needed).
# v1.24 is the last v1 line; v2 needs PostgreSQL with Microsoft's DocumentDB extension and has no SQLite.
set -euo pipefail
VER="${FERRETDB_VERSION:-v1.24.2}"
DEST="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}/ferretdb-$VER"
if [ -x "$DEST/ferretdb" ]; then echo "ferretdb $VER: cached in $DEST"; exit 0; fi
command -v go >/dev/null || { echo "build-ferretdb: go not found" >&2; exit 1; }
start=$(date +%s)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
echo "ferretdb $VER: downloading github.com/FerretDB/FerretDB@$VER from the Go module proxy ..."
src=$(go mod download -json "github.com/FerretDB/FerretDB@$VER" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "build-ferretdb: module download failed" >&2; exit 1; }
cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
echo "$VER" > "$work/src/build/version/version.txt"
echo "ferretdb $VER: compiling (CGO_ENABLED=0; about 2 minutes on 2 cores) ..."
mkdir -p "$DEST"
cd "$work/src"
# -p 1: the machine is shared; one package compiled at a time keeps memory and cores free for others.
go build -p 1 -trimpath -o "$DEST/ferretdb.tmp" ./cmd/ferretdb
"$DEST/ferretdb.tmp" --version >/dev/null  # the start-up panic above would show here, not in a test
mv "$DEST/ferretdb.tmp" "$DEST/ferretdb"
echo "ferretdb $VER: built $DEST/ferretdb ($(( $(date +%s) - start )) s)"
