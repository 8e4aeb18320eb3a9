"""Command lines of the five processes, and the objects `up` creates once the API is ready.

Flags follow /work/shared/notes/local-cluster.md §4 (cross-checked against envtest's and kwokctl's):
everything binds to 127.0.0.1; KCM and the scheduler use the admin kubeconfig; leader election is
off (one replica each); API priority-and-fairness is off to save CPU on 2-core machines.
"""

from __future__ import annotations

from .layout import Binaries, Layout, Ports

NODE_NAME = "kwok-node-0"

# A fake node for kwok (it manages nodes annotated kwok.x-k8s.io/node=fake): kwok marks it Ready,
# heartbeats it and runs its pods' lifecycle. No NoSchedule taint: workloads need no toleration (the
# real node of hack/realnode is the tainted one).
NODE_MANIFEST = f"""
apiVersion: v1
kind: Node
metadata:
  name: {NODE_NAME}
  annotations: {{node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}}
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: {NODE_NAME}
    type: kwok
status:
  allocatable: {{cpu: "32", memory: 256Gi, pods: "110"}}
  capacity: {{cpu: "32", memory: 256Gi, pods: "110"}}
"""


def etcd(b: Binaries, lay: Layout, p: Ports) -> list[str]:
    """etcd: single member, no fsync (throw-away data), warnings only."""
    peer = f"http://127.0.0.1:{p.etcd_peer}"
    client = f"http://127.0.0.1:{p.etcd}"
    return [
        str(b.etcd),
        f"--data-dir={lay.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver(b: Binaries, lay: Layout, p: Ports) -> list[str]:
    """kube-apiserver: client-cert auth against the local CA, RBAC, ServiceAccount tokens."""
    pki = lay.pki
    return [
        str(b.apiserver),
        f"--etcd-servers=http://127.0.0.1:{p.etcd}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={p.apiserver}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        # The `kubernetes` Service's Endpoints may not hold a loopback IP; nothing in-cluster calls it.
        "--endpoint-reconciler-type=none",
        # Reach a real kubelet (logs, exec) at its node IP: its host name resolves nowhere.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        # Namespace annotations may give their pods a node selector and tolerations: that is how
        # workloads choose the real node (hack/realnode) over kwok's fake ones.
        "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
    ]


def _client_flags(lay: Layout, port: int) -> list[str]:
    """Shared by KCM and scheduler: admin kubeconfig for API, delegated authn/authz, loopback-only port."""
    kc = str(lay.kubeconfig)
    return [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def controller_manager(b: Binaries, lay: Layout, p: Ports) -> list[str]:
    """kube-controller-manager: the default controller set ('*': statefulset, garbagecollector, ...)."""
    pki = lay.pki
    return [
        str(b.controller_manager),
        *_client_flags(lay, p.controller_manager),
        "--controllers=*",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        "--use-service-account-credentials=false",
    ]


def scheduler(b: Binaries, lay: Layout, p: Ports) -> list[str]:
    """kube-scheduler with its default profile."""
    return [str(b.scheduler), *_client_flags(lay, p.scheduler)]


def kwok(b: Binaries, lay: Layout, p: Ports) -> list[str]:
    """kwok: fakes the annotated nodes, takes their pods to Running/Ready, provisions `kwok-volume` PVCs."""
    return [
        str(b.kwok),
        f"--kubeconfig={lay.kubeconfig}",
        f"--config={b.kwok_stages}",
        # Only the fake nodes (annotated so): a real node (hack/realnode) has a real kubelet.
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        # Fake pod IPs live in loopback (127.0.0.0/8): whatever dials one (the operator's agent client,
        # a test) is refused on this host at once. A private range such as 10.244/16 would send that
        # traffic out of the machine, where no such pod exists.
        "--cidr=127.244.0.0/16",
        "--node-ip=127.0.0.1",
        f"--server-address=127.0.0.1:{p.kwok}",
    ]
