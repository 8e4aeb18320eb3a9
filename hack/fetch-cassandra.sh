#!/usr/bin/env bash
# Assembles Apache Cassandra from Maven Central jars (no tarball download is allowed here): a tiny pom
# that depends on org.apache.cassandra:cassandra-all, then `mvn dependency:copy-dependencies`.
# Result: ~/.cache/kubetrove/cassandra-<ver>/lib/*.jar (+ a stamp file), and hack/fetch-jolokia.sh's
# jar. Idempotent: a second run is instant.
# 5.0.x, not 4.1: 4.1 runs on Java 8/11 only, 5.0 supports Java 17 (see docs/development.md).
set -euo pipefail
VER="${CASSANDRA_VERSION:-5.0.9}"
# Every Cassandra JVM here loads the Jolokia agent (the agent's ring view): fetched with the jars.
bash "$(dirname "$0")/fetch-jolokia.sh"
DEST="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}/cassandra-$VER"
if [ -f "$DEST/.complete" ]; then echo "cassandra $VER: cached in $DEST"; exit 0; fi
command -v mvn >/dev/null || { echo "fetch-cassandra: mvn not found (apt-get install maven)" >&2; exit 1; }
start=$(date +%s)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kubetrove</groupId><artifactId>cassandra-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId><version>$VER</version></dependency>
  </dependencies>
</project>
POM
echo "cassandra $VER: resolving cassandra-all and its dependencies from Maven Central into $DEST/lib ..."
rm -rf "$DEST"; mkdir -p "$DEST/lib"
# -B: no colour codes in logs; includeScope=runtime: the server's own classpath, not test jars.
mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$DEST/lib"
n=$(ls "$DEST/lib" | wc -l)
ls "$DEST/lib" | grep -q "^cassandra-all-$VER.jar$" || { echo "fetch-cassandra: cassandra-all jar missing" >&2; exit 1; }
touch "$DEST/.complete"
echo "cassandra $VER: $n jars in $DEST/lib ($(( $(date +%s) - start )) s)"
