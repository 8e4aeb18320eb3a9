#!/bin/bash
# docker-entrypoint.sh of kubetrove's locally built MySQL image (Debian sid's 9.7): the subset of the
# official image's entrypoint (docker-library/mysql) that kubetrove relies on. On an empty data dir:
# mysqld --initialize-insecure, then, on a socket-only temporary server, set root@localhost's password
# from $MYSQL_ROOT_PASSWORD and create root@'%' (the agent logs in over TCP on the pod's loopback, and
# replicas connect as root from their pods); then exec the server with the given arguments.
# The setup runs with SQL_LOG_BIN=0, so none of it reaches the binary log (it would be a GTID only this
# member has: errant on every other one). The temporary server is started writable (a cluster member's
# rendered config says super_read_only = ON) and without replication (nothing is configured yet).
set -eo pipefail
[ "${1:0:1}" = '-' ] && set -- mysqld "$@"
if [ "$1" != mysqld ]; then exec "$@"; fi

# --log-bin-index: --help must not create a binary log index in the data dir (as the official image).
DATADIR="$("$@" --verbose --help --log-bin-index="$(mktemp -u)" 2>/dev/null \
  | awk '$1 == "datadir" { print $2; exit }')"
if [ ! -d "$DATADIR/mysql" ]; then
  : "${MYSQL_ROOT_PASSWORD:?the data directory is empty and MYSQL_ROOT_PASSWORD is not set}"
  echo "entrypoint: initialising $DATADIR"
  "$@" --initialize-insecure --default-time-zone=SYSTEM --super-read-only=OFF --read-only=OFF
  SOCK=/run/mysqld/init.sock
  "$@" --skip-networking --socket="$SOCK" --skip-replica-start --default-time-zone=SYSTEM \
    --super-read-only=OFF --read-only=OFF &
  pid=$!
  for _ in $(seq 120); do
    mysqladmin --socket="$SOCK" -uroot ping >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "entrypoint: the temporary server exited" >&2; exit 1; }
    sleep 1
  done
  pw="${MYSQL_ROOT_PASSWORD//\\/\\\\}"; pw="${pw//\'/\\\'}"
  mysql --socket="$SOCK" -uroot --binary-mode <<SQL
SET @@SESSION.SQL_LOG_BIN=0;
ALTER USER 'root'@'localhost' IDENTIFIED BY '${pw}';
CREATE USER 'root'@'%' IDENTIFIED BY '${pw}';
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
GRANT PROXY ON ''@'' TO 'root'@'%' WITH GRANT OPTION;
SQL
  kill -TERM "$pid"
  wait "$pid" || true
  echo "entrypoint: initialised"
fi
exec "$@"
