#!/bin/bash
# docker-entrypoint.sh of kubetrove's locally built MariaDB test image: the subset of the official image's
# entrypoint (MariaDB/mariadb-docker) that kubetrove relies on. On an empty data dir: install the system
# tables, set the root password from $MARIADB_ROOT_PASSWORD for root@localhost and root@'%', drop the
# install-time anonymous and host-named accounts; then exec the server with the given arguments.
# The setup runs with SQL_LOG_BIN=0 on a socket-only temporary server, so none of it reaches the binary
# log (a replica replaying "CREATE USER root@'%'" would stop with a duplicate-user error).
set -eo pipefail
[ "${1:0:1}" = '-' ] && set -- mariadbd "$@"
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then exec "$@"; fi

DATADIR="$("$@" --verbose --help 2>/dev/null | awk '$1 == "datadir" { print $2; exit }')"
if [ ! -d "$DATADIR/mysql" ]; then
  : "${MARIADB_ROOT_PASSWORD:?the data directory is empty and MARIADB_ROOT_PASSWORD is not set}"
  echo "entrypoint: initialising $DATADIR"
  mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal --skip-test-db \
    --skip-log-bin --expire-logs-days=0 --default-time-zone=SYSTEM >/dev/null
  SOCK=/run/mysqld/init.sock
  "$@" --skip-networking --socket="$SOCK" --skip-slave-start --skip-log-bin --expire-logs-days=0 &
  pid=$!
  for _ in $(seq 60); do mariadb-admin --socket="$SOCK" -uroot ping >/dev/null 2>&1 && break; sleep 1; done
  pw="${MARIADB_ROOT_PASSWORD//\\/\\\\}"; pw="${pw//\'/\\\'}"
  mariadb --socket="$SOCK" -uroot --binary-mode <<SQL
SET @@SESSION.SQL_LOG_BIN=0;
DROP USER IF EXISTS ''@'localhost', ''@'${HOSTNAME}', 'root'@'127.0.0.1', 'root'@'::1', 'root'@'${HOSTNAME}';
ALTER USER 'root'@'localhost' IDENTIFIED BY '${pw}';
CREATE USER 'root'@'%' IDENTIFIED BY '${pw}';
GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
GRANT PROXY ON ''@'%' TO 'root'@'%' WITH GRANT OPTION;
SQL
  kill -TERM "$pid"
  wait "$pid" || true
  echo "entrypoint: initialised"
fi
exec "$@"
