#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit-test runner) from the Go module proxy, cached
# under ~/.cache/kubetrove/promtool-<version>/, for tests/integration/test_alert_rules.py
# (`promtool check rules`, `promtool test rules` on charts/kubetrove/alerts/).
#
# The version is the Go module version of Prometheus 3.x: Prometheus tags its releases v3.y.z but publishes
# the module github.com/prometheus/prometheus as v0.3yy.z (v0.316.0 is Prometheus 3.16.0), because the
# module path has no /v3 suffix. Its go.mod has no replace directives, so a plain `go install pkg@version`
# builds it. No version is injected with -ldflags (Prometheus's Makefile does, through promu): `promtool
# --version` prints an empty version, which nothing here reads.
# Measured: 10 min 10 s wall (11 min 46 s user) on 2 cores shared with a running test suite, downloading
# 137 modules; the Go module and build caches already held what earlier builds (Kubernetes, Helm) had
# left, so a brand-new machine may take a little longer.
set -euo pipefail
PROMTOOL_VERSION="${PROMTOOL_VERSION:-v0.316.0}"
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"
OUT="$CACHE/promtool-$PROMTOOL_VERSION"
if [ -x "$OUT/promtool" ]; then
  echo "promtool $PROMTOOL_VERSION: cached in $OUT"; exit 0
fi
echo "promtool $PROMTOOL_VERSION: building into $OUT ($(date +%T); cold build: about 10 minutes on 2 cores)"
export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$OUT"
rm -rf "$OUT.tmp"
GOBIN="$OUT.tmp" go install -p 2 -trimpath -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
mv "$OUT.tmp/promtool" "$OUT/promtool" && rmdir "$OUT.tmp"
echo "promtool $PROMTOOL_VERSION: built in $OUT ($(date +%T))"
