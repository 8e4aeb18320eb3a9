#!/bin/bash
# cassandra: the launcher of kubetrove's Cassandra image, which is built from the Apache jars on Maven
# Central (the release tarball, with its bin/ and conf/, is not reachable here). It does what the
# tarball's bin/cassandra and conf/cassandra-env.sh do for `cassandra -f` on Java 17, and no more:
#   cassandra -f [-R] [-D<name>=<value> ...]
# - always in the foreground (a container's main process); -f is accepted, -R ignored (no root check);
# - the heap: MAX_HEAP_SIZE (e.g. 1G) if set, else cassandra-env.sh's rule applied to the container's
#   memory limit (cgroup v2 memory.max) rather than the host's memory: max(min(1/2, 1 GiB), min(1/4,
#   8 GiB)). HEAP_NEWSIZE is accepted and ignored: G1, 5.0's default collector on Java 17, sizes it;
# - JMX on 127.0.0.1:${JMX_PORT:-7199} without authentication (cassandra-env.sh's LOCAL_JMX=yes, the
#   official image's default): what nodetool, in this pod, talks to;
# - the Jolokia JVM agent on 127.0.0.1:${JOLOKIA_PORT:-8778} only, read-only and limited by its policy
#   (/etc/jolokia/jolokia-access.xml) to the StorageService attributes `nodetool status` reads: the
#   kubetrove agent's ring view, one HTTP request instead of a nodetool JVM every few seconds;
# - conf/jvm17-server.options' module flags; JVM_EXTRA_OPTS appended (as cassandra-env.sh);
# - the configuration from $CASSANDRA_CONF (/etc/cassandra) unless -Dcassandra.config= says otherwise;
#   logging to the console (logback.xml there).
set -euo pipefail
CASSANDRA_HOME="${CASSANDRA_HOME:-/opt/cassandra}"
CASSANDRA_CONF="${CASSANDRA_CONF:-/etc/cassandra}"
CASSANDRA_STORAGEDIR="${CASSANDRA_STORAGEDIR:-/var/lib/cassandra}"
CASSANDRA_LOG_DIR="${CASSANDRA_LOG_DIR:-/var/log/cassandra}"
JOLOKIA_HOME=/opt/jolokia

props=()
while [ $# -gt 0 ]; do
  case "$1" in
    -f | -R) ;;
    -D*) props+=("$1") ;;
    *) echo "cassandra: unsupported option $1 (this launcher knows -f, -R and -D<name>=<value>)" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "${MAX_HEAP_SIZE:-}" ]; then
  limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo max)
  if [ "$limit" = max ]; then
    mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  else
    mb=$((limit / 1048576))
  fi
  half=$((mb / 2)); quarter=$((mb / 4))
  [ "$half" -gt 1024 ] && half=1024
  [ "$quarter" -gt 8192 ] && quarter=8192
  MAX_HEAP_SIZE="$(( half > quarter ? half : quarter ))M"
fi

jamm=("$CASSANDRA_HOME"/lib/jamm-*.jar)
opens=(java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref
  java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module
  java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal java.base/sun.nio.ch
  java.base/java.io java.base/java.lang.reflect jdk.compiler/com.sun.tools.javac java.base/java.lang
  java.base/java.util)
exports=(java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi
  java.rmi/sun.rmi.registry java.rmi/sun.rmi.server java.sql/java.sql java.base/java.lang.ref
  jdk.unsupported/sun.misc jdk.compiler/com.sun.tools.javac.file jdk.attach/sun.tools.attach)
jolokia="host=127.0.0.1,port=${JOLOKIA_PORT:-8778},discoveryEnabled=false"
jolokia+=",policyLocation=file:///etc/jolokia/jolokia-access.xml"
jvm=(
  -ea "-da:net.openhft..."
  "-Xms$MAX_HEAP_SIZE" "-Xmx$MAX_HEAP_SIZE" -Xss256k
  -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m
  -XX:+UseTLAB -XX:+ResizeTLAB -XX:+UseNUMA -XX:+PerfDisableSharedMem -XX:+HeapDumpOnOutOfMemoryError
  -XX:HeapDumpPath="$CASSANDRA_STORAGEDIR" -XX:+ExitOnOutOfMemoryError
  -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true
  -Dio.netty.tryReflectionSetAccessible=true
  "-javaagent:${jamm[0]}"
  "-javaagent:$JOLOKIA_HOME/jolokia-agent.jar=$jolokia"
)
for m in "${exports[@]}"; do jvm+=("--add-exports=$m=ALL-UNNAMED"); done
for m in "${opens[@]}"; do jvm+=("--add-opens=$m=ALL-UNNAMED"); done
jvm+=(
  "-Dcassandra.jmx.local.port=${JMX_PORT:-7199}"
  -Dcom.sun.management.jmxremote.authenticate=false
  "-Dlogback.configurationFile=$CASSANDRA_CONF/logback.xml"
  "-Dcassandra.logdir=$CASSANDRA_LOG_DIR"
  "-Dcassandra.storagedir=$CASSANDRA_STORAGEDIR"
  -Dcassandra-foreground=yes
)
case " ${props[*]-} " in
  *" -Dcassandra.config="*) ;;
  *) jvm+=("-Dcassandra.config=file://$CASSANDRA_CONF/cassandra.yaml") ;;
esac
# shellcheck disable=SC2206 # JVM_EXTRA_OPTS is a list of words, as in cassandra-env.sh
extra=(${JVM_EXTRA_OPTS:-})
echo "cassandra: heap $MAX_HEAP_SIZE, JMX on 127.0.0.1:${JMX_PORT:-7199}, Jolokia on 127.0.0.1:${JOLOKIA_PORT:-8778}, configuration ${props[*]-}" >&2
exec java "${jvm[@]}" "${props[@]}" "${extra[@]}" -cp "$CASSANDRA_CONF:$CASSANDRA_HOME/lib/*" \
  org.apache.cassandra.service.CassandraDaemon
