#!/bin/bash
# docker-entrypoint.sh of kubetrove's Cassandra image: the official image's entrypoint
# (docker-library/cassandra) for `cassandra -f`: before the server starts, CASSANDRA_* variables are
# written into $CASSANDRA_CONF/cassandra.yaml and cassandra-rackdc.properties (listen and broadcast
# addresses, "auto" meaning this container's address; seeds; cluster_name, num_tokens, endpoint_snitch,
# dc, rack). Arguments starting with "-" are the server's (`cassandra -f` is prepended); any other
# command runs as given. kubetrove does not use it: it starts `cassandra -f` on its own configuration
# (the datastore's start script), with a read-only root filesystem, where nothing here is edited.
set -e
[ "${1:0:1}" = '-' ] && set -- cassandra -f "$@"
CASSANDRA_CONF="${CASSANDRA_CONF:-/etc/cassandra}"
if [ "$1" != cassandra ] || [ ! -w "$CASSANDRA_CONF/cassandra.yaml" ]; then exec "$@"; fi

_ip_address() { hostname --ip-address | cut -d' ' -f1; }
: "${CASSANDRA_RPC_ADDRESS=0.0.0.0}"
: "${CASSANDRA_LISTEN_ADDRESS=auto}"
[ "$CASSANDRA_LISTEN_ADDRESS" = auto ] && CASSANDRA_LISTEN_ADDRESS="$(_ip_address)"
: "${CASSANDRA_BROADCAST_ADDRESS=$CASSANDRA_LISTEN_ADDRESS}"
[ "$CASSANDRA_BROADCAST_ADDRESS" = auto ] && CASSANDRA_BROADCAST_ADDRESS="$(_ip_address)"
: "${CASSANDRA_BROADCAST_RPC_ADDRESS:=$CASSANDRA_BROADCAST_ADDRESS}"
: "${CASSANDRA_SEEDS:=$CASSANDRA_BROADCAST_ADDRESS}"
export CASSANDRA_RPC_ADDRESS CASSANDRA_LISTEN_ADDRESS CASSANDRA_BROADCAST_ADDRESS CASSANDRA_BROADCAST_RPC_ADDRESS

sed -ri 's/(- seeds:).*/\1 "'"$CASSANDRA_SEEDS"'"/' "$CASSANDRA_CONF/cassandra.yaml"
for yaml in broadcast_address broadcast_rpc_address cluster_name endpoint_snitch listen_address \
  num_tokens rpc_address; do
  var="CASSANDRA_${yaml^^}"
  val="${!var}"
  if [ -n "$val" ]; then
    sed -ri 's/^(# )?('"$yaml"':).*/\2 '"$val"'/' "$CASSANDRA_CONF/cassandra.yaml"
  fi
done
for rackdc in dc rack; do
  var="CASSANDRA_${rackdc^^}"
  val="${!var}"
  if [ -n "$val" ]; then
    sed -ri 's/^('"$rackdc"'=).*/\1'"$val"'/' "$CASSANDRA_CONF/cassandra-rackdc.properties"
  fi
done
exec "$@"
