#!/usr/bin/env bash
# Builds the MinIO server (a real S3-compatible object store) from the Go module proxy into
# ~/.cache/kubetrove/minio-<ver>/minio for the backup tests and benchmark. Idempotent: a second run is instant.
#
# MinIO publishes no semver tags (its releases are RELEASE.<date> tags), so the proxy serves it at
# pseudo-versions; the pin below is the newest one when this was written. Its go.mod has NO replace
# directives (checked: `go mod download -json github.com/minio/minio@<ver>` then grep its GoMod), so a
# plain `go install pkg@version` works and no wrapper module is needed. If a later pin adds replace
# directives, build it from a wrapper module instead (see hack/build-k8s.sh for the pattern).
# Without the release ldflags MinIO reports version "DEVELOPMENT.GOGET": harmless for tests.
set -euo pipefail
VER="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
DEST="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}/minio-$VER"
if [ -x "$DEST/minio" ]; then echo "minio $VER: cached in $DEST"; exit 0; fi
command -v go >/dev/null || { echo "build-minio: go not found" >&2; exit 1; }
start=$(date +%s)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
gomod=$(go mod download -json "github.com/minio/minio@$VER" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
if grep -q '^replace\|^[[:space:]]*replace[[:space:]]*(' "$gomod"; then
  echo "build-minio: github.com/minio/minio@$VER has replace directives; go install cannot build it" >&2
  exit 1
fi
echo "minio $VER: compiling (CGO_ENABLED=0, -p 1; about 10 minutes on 2 cores) ..."
mkdir -p "$DEST"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# -p 1: the machine is shared; one package compiled at a time keeps memory and cores free for others.
GOBIN="$tmp" go install -p 1 -trimpath -ldflags "-s -w" "github.com/minio/minio@$VER"
"$tmp/minio" --version >/dev/null
mv "$tmp/minio" "$DEST/minio"
echo "minio $VER: built $DEST/minio ($(( $(date +%s) - start )) s)"
