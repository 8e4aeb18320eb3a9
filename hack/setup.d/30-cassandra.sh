#!/usr/bin/env bash
# Apache Cassandra 5.0 jars for the integration tier (cached under ~/.cache/kubetrove/cassandra-<version>/).
exec bash "$(dirname "$0")/../fetch-cassandra.sh"
