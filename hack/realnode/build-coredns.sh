#!/usr/bin/env bash
# Builds CoreDNS (cluster DNS of the real node) from the Go module proxy into ~/.cache/kubetrove/coredns-<v>/.
# Its go.mod has no replace directives (checked at v1.14.7), so a plain `go install mod@version` works.
# v1.14.x: go 1.25 (v1.15 wants go 1.26, also fine); the default plugin set includes `kubernetes`.
set -euo pipefail
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
OUT="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}/coredns-$COREDNS_VERSION"
if [ -x "$OUT/coredns" ]; then echo "coredns $COREDNS_VERSION: cached in $OUT"; exit 0; fi
echo "coredns $COREDNS_VERSION: building into $OUT ($(date +%T); cold: a few minutes on 2 cores)"
mkdir -p "$OUT"
GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$OUT" go install -p 2 -trimpath -ldflags "-s -w" \
  "github.com/coredns/coredns@$COREDNS_VERSION"
"$OUT/coredns" -version
