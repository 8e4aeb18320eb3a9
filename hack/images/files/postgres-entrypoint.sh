#!/bin/bash
# docker-entrypoint.sh of kubetrove's locally built PostgreSQL test image: the subset of the official
# image's entrypoint (docker-library/postgres) that kubetrove relies on. On an empty $PGDATA: initdb with
# the superuser "postgres" and $POSTGRES_PASSWORD, initdb's defaults (trust inside the pod), then every
# other TCP client by scram-sha-256 (the official POSTGRES_HOST_AUTH_METHOD default); then exec the server.
set -Eeo pipefail
[ "${1:0:1}" = '-' ] && set -- postgres "$@"
if [ "$1" != postgres ]; then exec "$@"; fi

: "${PGDATA:?PGDATA is not set}"
mkdir -p "$PGDATA"
chmod 00700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?the data directory is empty and POSTGRES_PASSWORD is not set}"
  echo "entrypoint: initdb $PGDATA"
  initdb --username=postgres --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") -D "$PGDATA" \
    $POSTGRES_INITDB_ARGS >/dev/null
  printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
fi
exec "$@"
