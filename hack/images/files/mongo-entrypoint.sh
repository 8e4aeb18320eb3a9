#!/bin/bash
# docker-entrypoint.sh of kubetrove's locally built MongoDB image: the subset of the official image's
# entrypoint (docker-library/mongo) that kubetrove relies on. On a data directory with no database yet
# and MONGO_INITDB_ROOT_USERNAME/_PASSWORD set: start mongod alone with --auth on a loopback port of its
# own (never the client port: nothing outside this script may see the half-made server), create the root
# user through the localhost exception (https://www.mongodb.com/docs/manual/core/localhost-exception/),
# stop it (SIGTERM); then exec mongod with the given arguments (kubetrove's: --config, with --replSet and
# --keyFile in it). The image has no mongosh: python3 and Debian's pymongo make the one call.
#
# The data directory is kubetrove's fixed storage.dbPath (/data/db, MONGO_DBPATH overrides). It counts
# as initialised when it holds WiredTiger's metadata (a restore placed its files there, or an earlier
# start): the official image's check.
set -Eeo pipefail
[ "${1:0:1}" = '-' ] && set -- mongod "$@"
if [ "$1" != mongod ]; then exec "$@"; fi

DBPATH="${MONGO_DBPATH:-/data/db}"
if [ -n "$MONGO_INITDB_ROOT_USERNAME" ] && [ ! -e "$DBPATH/WiredTiger" ] && [ ! -e "$DBPATH/storage.bson" ]; then
  : "${MONGO_INITDB_ROOT_PASSWORD:?the data directory is empty and MONGO_INITDB_ROOT_PASSWORD is not set}"
  echo "entrypoint: creating $MONGO_INITDB_ROOT_USERNAME in $DBPATH"
  INIT_PORT=27099
  # Smallest footprint for a few seconds' work: the WiredTiger cache floor, no FTDC.
  mongod --dbpath "$DBPATH" --auth --bind_ip 127.0.0.1 --port "$INIT_PORT" --wiredTigerCacheSizeGB 0.25 \
    --setParameter diagnosticDataCollectionEnabled=false --quiet --logpath /dev/null &
  pid=$!
  INIT_PORT="$INIT_PORT" python3 - <<'PY'
import os, sys, time
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure

client = MongoClient("127.0.0.1", int(os.environ["INIT_PORT"]), directConnection=True,
                     serverSelectionTimeoutMS=2000)
deadline = time.monotonic() + 120
while True:
    try:
        client.admin.command("ping")
        break
    except ConnectionFailure:
        if time.monotonic() > deadline:
            sys.exit("entrypoint: the temporary mongod did not answer within 120 s")
        time.sleep(0.5)
client.admin.command("createUser", os.environ["MONGO_INITDB_ROOT_USERNAME"],
                     pwd=os.environ["MONGO_INITDB_ROOT_PASSWORD"], roles=[{"role": "root", "db": "admin"}])
PY
  # SIGTERM: mongod's clean shutdown (the localhost exception is gone now that a user exists).
  kill -TERM "$pid"
  wait "$pid" || true
  echo "entrypoint: $MONGO_INITDB_ROOT_USERNAME created"
fi
exec "$@"
