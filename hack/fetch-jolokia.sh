#!/usr/bin/env bash
# The Jolokia JVM agent (org.jolokia:jolokia-agent-jvm, classifier javaagent) from Maven Central, which
# every Cassandra JVM loads (hack/images/files/cassandra.sh, tests/integration/servers/cassandra.py): the
# agent reads the ring view (StorageService's attributes) over HTTP on 127.0.0.1 instead of running
# nodetool, a JVM, every few seconds (operator/kubetrove/agent/engines/cassandra/ring.py).
# Result: ~/.cache/kubetrove/jolokia-<ver>/lib/jolokia-agent.jar (+ a stamp file). Idempotent: a second
# run is instant. One self-contained jar, no dependencies:
# https://jolokia.org/reference/html/manual/agents/jvm.html
set -euo pipefail
VER="${JOLOKIA_VERSION:-2.6.0}"
# sha256 of jolokia-agent-jvm-2.6.0-javaagent.jar as Maven Central served it on 2026-12-07.
SHA256=95c2c1230970ac0ad71b9cb556b8a55c4c6008e9ffd7745be7797f477120b6ae
[ "$VER" = 2.6.0 ] || { echo "fetch-jolokia: only 2.6.0's checksum is known" >&2; exit 1; }
DEST="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}/jolokia-$VER"
if [ -f "$DEST/.complete" ]; then echo "jolokia $VER: cached in $DEST"; exit 0; fi
command -v mvn >/dev/null || { echo "fetch-jolokia: mvn not found (apt-get install maven)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "jolokia $VER: downloading org.jolokia:jolokia-agent-jvm:$VER:javaagent from Maven Central ..."
mvn -B -q dependency:copy "-Dartifact=org.jolokia:jolokia-agent-jvm:$VER:jar:javaagent" "-DoutputDirectory=$work"
jar="$work/jolokia-agent-jvm-$VER-javaagent.jar"
echo "$SHA256  $jar" | sha256sum -c --quiet - || { echo "fetch-jolokia: $jar checksum mismatch" >&2; exit 1; }
rm -rf "$DEST"; mkdir -p "$DEST/lib"
cp "$jar" "$DEST/lib/jolokia-agent.jar"
touch "$DEST/.complete"
echo "jolokia $VER: $DEST/lib/jolokia-agent.jar"
