#!/bin/bash
# docker-entrypoint.sh of kubetrove's locally built MariaDB test image: the subset of the official image's
# entrypoint (MariaDB/mariadb-docker) that kubetrove relies on. On an empty data dir: install the system
# tables, set the root password from $MARIADB_ROOT_PASSWORD for root@localhost and root@'%', drop the
# install-time anonymous and host-named accounts; then exec the server with the given arguments.
# The setup runs with SQL_LOG_BIN=0 on a socket-only temporary server, so none of it reaches the binary
# log (a replica replaying "CREATE USER root@'%'" would stop with a duplicate-user error).
# With MARIADB_AUTO_UPGRADE set (as the official image reads it), a data dir last upgraded by an older
# major.minor (its mariadb_upgrade_info / mysql_upgrade_info, or none) gets `mariadb-upgrade
# --upgrade-system-tables` on a temporary server without networking, grant checks or a binary log, so
# replicas never replay it: https://mariadb.com/kb/en/mariadb-upgrade/
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
elif [ -n "$MARIADB_AUTO_UPGRADE" ] && [ "$MARIADB_AUTO_UPGRADE" != 0 ]; then
  server="$("$1" --version | sed -n 's/.* Ver \([0-9]*\.[0-9]*\)\..*/\1/p')"
  # Either file may be missing (pipefail: cat's status must not end the script).
  info="$( { cat "$DATADIR/mariadb_upgrade_info" || cat "$DATADIR/mysql_upgrade_info" || true; } 2>/dev/null | head -c 32)"
  data="$(printf '%s' "$info" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p')"
  older="$(printf '%s\n%s\n' "${data:-0.0}" "$server" | sort -V | head -1)"
  if [ -n "$server" ] && [ "$data" != "$server" ] && [ "$older" != "$server" ]; then
    echo "entrypoint: upgrading $DATADIR from ${info:-an unrecorded version} to $server"
    SOCK=/run/mysqld/upgrade.sock
    "$@" --skip-networking --socket="$SOCK" --skip-slave-start --skip-log-bin --skip-grant-tables \
      --loose-innodb-buffer-pool-dump-at-shutdown=0 &
    pid=$!
    for _ in $(seq 120); do mariadb-admin --socket="$SOCK" ping >/dev/null 2>&1 && break; sleep 1; done
    mariadb-upgrade --socket="$SOCK" --upgrade-system-tables --skip-write-binlog
    kill -TERM "$pid"
    wait "$pid" || true
    echo "entrypoint: upgraded to $server"
  fi
fi
exec "$@"
