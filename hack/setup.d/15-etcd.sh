#!/usr/bin/env bash
# etcd for the local cluster (cached under ~/.cache/kubetrove/etcd-<version>/).
exec bash "$(dirname "$0")/../build-etcd.sh"
