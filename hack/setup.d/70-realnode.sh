#!/usr/bin/env bash
# The real node (hack/realnode): kubelet + kube-proxy (same release as the control plane), CoreDNS,
# and the local test images. Every step is cached; a warm run takes seconds.
# Cold on 2 cores: apt ~30 s, kubelet + kube-proxy 3-10 min, CoreDNS ~8 min, images ~10 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
# apt packages (containerd, runc, CNI plugins, iptables, conntrack, mmdebstrap, ...) come from setup.sh.
K8S_BINS="kubelet kube-proxy" bash hack/build-k8s.sh
bash hack/realnode/build-coredns.sh
echo "realnode: images ($(date +%T))"
PYTHONPATH=hack "${VENV:-.venv}/bin/python" -m images
