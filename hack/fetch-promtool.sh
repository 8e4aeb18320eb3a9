#!/usr/bin/env bash
# promtool (Prometheus's rule checker and rule unit-test runner) for tests/integration/test_alert_rules.py:
# taken from Debian's `prometheus` package (the machine's own suite), cached under
# ~/.cache/kubetrove/promtool/ with the package version in VERSION; a new candidate version replaces it.
#
# Why Debian's build and not `go install` from the Go module proxy: the module build of promtool
# (github.com/prometheus/prometheus/cmd/promtool@v0.316.0) works here but compiles every service
# discovery client Prometheus links (AWS, Azure, GCP, Kubernetes, ...): 10 min 10 s on 2 cores, measured,
# on a CI budget of 90 minutes for a brand-new machine. The package downloads in about 9 s. Only the
# promtool binary is extracted (dpkg -x): the package's server, its user and its service are not
# installed. The rules use nothing newer than Prometheus 2.42 (bookworm's) knows; the test runs them.
set -euo pipefail
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"
OUT="$CACHE/promtool"
candidate() { apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}'; }
VERSION="$(candidate)"
if [ -z "$VERSION" ] || [ "$VERSION" = "(none)" ]; then
  apt-get update -qq
  VERSION="$(candidate)"
fi
if [ -z "$VERSION" ] || [ "$VERSION" = "(none)" ]; then
  echo "promtool: apt's sources have no prometheus package" >&2
  exit 1
fi
if [ -x "$OUT/promtool" ] && [ "$(cat "$OUT/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  echo "promtool (prometheus $VERSION): cached in $OUT"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt's _apt user writes the download here
(cd "$work" && apt-get download -qq "prometheus=$VERSION")
dpkg -x "$work"/prometheus_*.deb "$work/x"
mkdir -p "$OUT"
install -m 755 "$work/x/usr/bin/promtool" "$OUT/promtool.tmp"
mv "$OUT/promtool.tmp" "$OUT/promtool"
echo "$VERSION" >"$OUT/VERSION"
echo "promtool (prometheus $VERSION): extracted into $OUT"
