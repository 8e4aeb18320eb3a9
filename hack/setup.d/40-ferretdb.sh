#!/usr/bin/env bash
# FerretDB v1.24 (MongoDB wire protocol on SQLite) for the integration tier (cached under ~/.cache/kubetrove/).
exec bash "$(dirname "$0")/../build-ferretdb.sh"
