"""The real node's config files: containerd, CNI, kubelet, kube-proxy, CoreDNS, and their kubeconfigs.

References: containerd 1.6 CRI config (https://github.com/containerd/containerd/blob/release/1.6/docs/cri/
config.md), KubeletConfiguration v1beta1 and KubeProxyConfiguration v1alpha1
(https://kubernetes.io/docs/reference/config-api/), CNI bridge/host-local/portmap
(https://www.cni.dev/plugins/current/), CoreDNS kubernetes plugin (https://coredns.io/plugins/kubernetes/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from localcluster import pki
from localcluster.layout import CONTEXT, Layout

from . import registry
from .layout import (
    BRIDGE,
    BRIDGE_IP,
    CLUSTER_DOMAIN,
    DNS_IP,
    NODE_LABELS,
    NODE_NAME,
    NODE_TAINT,
    POD_CIDR,
    NodeBinaries,
    NodeLayout,
    NodePorts,
)

SANDBOX_IMAGE = f"{registry.REPOSITORY}/pause:1"  # built by hack/images (recipes.pause)


def containerd_toml(n: NodeLayout, b: NodeBinaries) -> str:
    """containerd 1.6 (config version 2): private socket and dirs, runc with cgroupfs, our pause image."""
    return f"""version = 2
root = "{n.containerd_root}"
state = "{n.containerd_state}"
# Plugins that need kernel features or services this machine lacks; without them start-up is quieter.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{n.containerd_socket}"

[ttrpc]
  address = "{n.containerd_socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  enable_selinux = false
  # These machines drop CAP_SYS_RESOURCE from every process's bounding set, so nobody may lower an
  # oom_score_adj below 0; without this runc fails writing the sandbox's -998 ("can't get final child's
  # PID from pipe"). Restricted, containers get max(wanted, containerd's own score) instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{b.runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{b.cni_bin}"
    conf_dir = "{n.cni_conf_dir}"
    max_conf_num = 1
  # Per-registry hosts.toml files (hosts_toml below): the local registry over plain HTTP.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{n.config / "certs.d"}"
"""


def hosts_toml() -> str:
    """containerd's host config for the local registry (https://github.com/containerd/containerd/blob/
    release/1.6/docs/hosts.md): plain HTTP on loopback, pull and resolve only (nothing pushes through
    containerd)."""
    return f"""server = "http://{registry.ADDRESS}"

[host."http://{registry.ADDRESS}"]
  capabilities = ["pull", "resolve"]
"""


def apiserver_slice(apiserver_port: int) -> str:
    """The `kubernetes` Service's EndpointSlice: the bridge address, where apiproxy.py relays to the
    API server (its own endpoint reconciler is off: it would publish 127.0.0.1, which pods cannot use).
    Not managed by the EndpointSlice controllers (managed-by is ours), so they leave it alone."""
    return f"""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-realnode
  namespace: default
  labels:
    kubernetes.io/service-name: kubernetes
    endpointslice.kubernetes.io/managed-by: kubetrove-realnode
addressType: IPv4
endpoints:
- addresses: ["{BRIDGE_IP}"]
  conditions: {{ready: true}}
ports:
- {{name: https, port: {apiserver_port}, protocol: TCP}}
"""


def cni_conflist(n: NodeLayout) -> str:
    """bridge (our pre-created bridge as the pods' gateway) + host-local IPAM, then portmap.

    ipMasq is off: pod traffic never leaves the machine (an iptables rule drops anything else, see
    net.py), so there is nothing to NAT.
    """
    config = {
        "cniVersion": "1.0.0",
        "name": "kubetrove",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,  # a pod reaching itself through its own Service
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(n.cni_ipam_dir),
                    "ranges": [[{"subnet": POD_CIDR, "gateway": BRIDGE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(config, indent=2)


def _free_kubeconfig(server_port: int, ca: Path, cert: Path, key: Path, user: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": f"https://127.0.0.1:{server_port}",
                                                   "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }  # fmt: skip
    return yaml.safe_dump(config, sort_keys=False)


def client_kubeconfig(cluster: Layout, apiserver_port: int, name: str, subject: str) -> str:
    """A kubeconfig for a client cert signed by the cluster's CA (created once, kept with the PKI)."""
    p = cluster.pki
    if not (p / f"{name}.crt").is_file():
        # localcluster.pki's signing helper: one CA for the whole cluster.
        pki._signed(p, name, subject, "extendedKeyUsage=clientAuth\n")
    return _free_kubeconfig(apiserver_port, p / "ca.crt", p / f"{name}.crt", p / f"{name}.key", name)


def kubelet_config(n: NodeLayout, ports: NodePorts) -> str:
    """KubeletConfiguration: cgroupfs, our containerd, cluster DNS on the bridge, loopback-ish serving."""
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # The API server reaches kubelet (logs, exec) at the node IP; that is the private bridge address.
        "address": BRIDGE_IP,
        "port": ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.kubelet_healthz,
        # A test node: the API server has no kubelet client cert (localcluster's flags), so kubelet
        # accepts anonymous requests on its bridge-only port to keep `kubectl logs/exec` working.
        "authentication": {
            "anonymous": {"enabled": True},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(n.cluster.pki / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",  # no systemd on these machines
        "containerRuntimeEndpoint": f"unix://{n.containerd_socket}",
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [DNS_IP],
        "resolvConf": str(n.config / "resolv.conf"),
        "failSwapOn": False,
        "podLogsDir": str(n.pod_logs),
        "volumePluginDir": str(n.kubelet_root / "volume-plugins"),
        # Never garbage-collect images: pulling them again from the registry slows every test down.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A shared dev disk may be fuller than 90%; only evict when it is really about to run out.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "maxPods": 110,
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
    }  # fmt: skip
    return yaml.safe_dump(config, sort_keys=False)


def kubelet_argv(b: NodeBinaries, n: NodeLayout) -> list[str]:
    """kubelet flags that have no config-file field (node name, IP, labels, root dir)."""
    labels = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
    return [
        str(b.kubelet),
        f"--config={n.config / 'kubelet.yaml'}",
        f"--kubeconfig={n.config / 'kubelet.kubeconfig'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={BRIDGE_IP}",
        f"--node-labels={labels}",
        f"--register-with-taints={NODE_TAINT}",
        f"--root-dir={n.kubelet_root}",
        f"--cert-dir={n.kubelet_root / 'pki'}",
        "--v=1",
    ]


def kube_proxy_config(n: NodeLayout, ports: NodePorts) -> str:
    """KubeProxyConfiguration: iptables mode; leaves the host's conntrack sysctls and route_localnet alone."""
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(n.config / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports.proxy_healthz}",
        "metricsBindAddress": f"127.0.0.1:{ports.proxy_metrics}",
        "clusterCIDR": POD_CIDR,
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
                      "udpTimeout": "0s", "udpStreamTimeout": "0s"},
    }  # fmt: skip
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_argv(b: NodeBinaries, n: NodeLayout) -> list[str]:
    """kube-proxy with its config file."""
    return [str(b.kube_proxy), f"--config={n.config / 'kube-proxy.yaml'}", "--v=1"]


def corefile(n: NodeLayout, ports: NodePorts) -> str:
    """CoreDNS: cluster.local from the API, on the bridge address only; no forwarder (no outside traffic)."""
    return f""".:53 {{
    bind {DNS_IP}
    errors
    health 127.0.0.1:{ports.coredns_health}
    ready 127.0.0.1:{ports.coredns_ready}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {n.cluster.kubeconfig} {CONTEXT}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""


def coredns_argv(b: NodeBinaries, n: NodeLayout) -> list[str]:
    """coredns with our Corefile."""
    return [str(b.coredns), "-conf", str(n.config / "Corefile")]


STORAGE_CLASS_MANIFEST = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {name}
  labels: {{app.kubernetes.io/managed-by: kubetrove-realnode}}
provisioner: {provisioner}
reclaimPolicy: Delete
# The scheduler picks the node first, then the provisioner makes the directory there; allowedTopologies
# keeps pods with such volumes off kwok's fake nodes.
volumeBindingMode: WaitForFirstConsumer
allowedTopologies:
- matchLabelExpressions:
  - {{key: kubetrove.io/node, values: [real]}}
"""


def storage_class(name: str, provisioner: str, expandable: bool = False) -> str:
    """The StorageClass of one of the node's provisioners; `expandable`: its claims may ask for more."""
    manifest = STORAGE_CLASS_MANIFEST.format(name=name, provisioner=provisioner)
    return manifest + ("allowVolumeExpansion: true\n" if expandable else "")
