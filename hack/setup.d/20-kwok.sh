#!/usr/bin/env bash
# kwok: fake nodes, pods and volumes for the local cluster (cached under ~/.cache/kubetrove/kwok-<version>/).
exec bash "$(dirname "$0")/../build-kwok.sh"
