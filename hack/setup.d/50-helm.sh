#!/usr/bin/env bash
# Helm v3 for the chart tests (cached under ~/.cache/kubetrove/helm-<version>/).
exec bash "$(dirname "$0")/../build-helm.sh"
