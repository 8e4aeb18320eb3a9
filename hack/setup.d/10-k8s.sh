#!/usr/bin/env bash
# The local Kubernetes control plane binaries (cached under ~/.cache/kubetrove/k8s-<version>/).
exec bash "$(dirname "$0")/../build-k8s.sh"
