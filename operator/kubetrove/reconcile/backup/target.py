"""Where a backup goes and who takes it: the storage target (with its credentials) and the member's agent.

The S3 credentials are read from the referenced Secret by the operator and passed to the agent in the
request body (the agent never reads Kubernetes). The member is a replica where the cluster has one
(a backup must not load the primary), else the primary or the single pod; only pods that are Ready and
have an IP qualify.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetrove.agent.protocol import BackupTarget, DirectoryTarget, S3Target
from kubetrove.api.backup import BackupSpec
from kubetrove.api.policies import BackupStorage
from kubetrove.api.resources import Parsed
from kubetrove.api.specs import InstanceSpec
from kubetrove.k8s.kinds import SECRET
from kubetrove.k8s.pods import is_ready, is_terminating, pod_ip
from kubetrove.k8s.port import Kube, Obj
from kubetrove.k8s.secrets import SecretValueError, secret_value
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from kubetrove.render import names
from kubetrove.render.names import ChildNames

ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 (a key name)


class StorageProblem(Exception):
    """The storage cannot be used as configured (no storage, missing Secret or key): retrying cannot help."""


def _secret_value(secret: Obj, key: str, where: str) -> str:
    try:
        value = secret_value(secret, key)
    except SecretValueError as exc:
        raise StorageProblem(str(exc)) from None
    if value is None:
        raise StorageProblem(f"Secret {where} has no key {key}")
    return value


def backup_storage(backup: BackupSpec, source: InstanceSpec | None) -> BackupStorage | None:
    """Where a backup is stored: the DatabaseBackup's own ``spec.storage``, else its source's
    ``spec.backup.storage`` (None: neither says; ``resolve_target`` refuses that)."""
    if backup.storage is not None:
        return backup.storage
    return source.backup.storage if source is not None and source.backup is not None else None


async def resolve_target(
    kube: Kube, namespace: str, storage: BackupStorage | None, mounted: str | None = None
) -> BackupTarget:
    """The agent's target for ``storage``, with S3 credentials from its Secret.

    A ``pvc`` target must be the claim ``mounted`` in the pods doing the work (``backup_claim``): a pod's
    volumes are fixed, so any other claim would be a directory that does not exist there.
    """
    if storage is None:
        raise StorageProblem("no storage: set spec.storage or the source's spec.backup.storage")
    if storage.pvc is not None:
        claim = storage.pvc.claim_name
        if claim != mounted:
            raise StorageProblem(
                f"PersistentVolumeClaim {claim} is not mounted in the pods: only the claim named in the"
                " instance's spec.backup.storage.pvc is; name it there"
            )
        return BackupTarget(directory=DirectoryTarget(path=f"{names.BACKUP_PVC_ROOT}/{claim}"))
    s3 = storage.s3
    assert s3 is not None  # the model guarantees exactly one
    name = s3.credentials_secret_ref
    secret = await kube.get(SECRET, namespace, name)
    if secret is None:
        raise StorageProblem(f"credentials Secret {namespace}/{name} not found")
    where = f"{namespace}/{name}"
    return BackupTarget(
        s3=S3Target(
            bucket=s3.bucket,
            prefix=s3.prefix,
            endpoint=s3.endpoint,
            region=s3.region,
            access_key_id=_secret_value(secret, ACCESS_KEY, where),
            secret_access_key=_secret_value(secret, SECRET_KEY, where),
        )
    )


def _ready(pod: Obj) -> bool:
    return is_ready(pod) and bool(pod_ip(pod)) and not is_terminating(pod)


def choose_member(pods: list[Obj]) -> Obj | None:
    """A ready replica if any, else a ready primary (or unlabelled single member); None when none is ready."""

    def rank(pod: Obj) -> tuple[int, str]:
        role = (pod["metadata"].get("labels") or {}).get(names.LABEL_ROLE)
        return (0 if role == names.ROLE_REPLICA else 1, pod["metadata"]["name"])

    ready = sorted((p for p in pods if _ready(p)), key=rank)
    return ready[0] if ready else None


@dataclass(frozen=True)
class Member:
    """One pod of the source and how to reach its agent."""

    pod: str
    url: str
    token: str


async def find_member(deps: Deps, source: Parsed[InstanceSpec], pod_name: str | None = None) -> Member:
    """The member to talk to: ``pod_name`` when given (the one already running the backup), else chosen."""
    ns, members = source.ref.namespace, deps.members
    pods = await members.pods(source.ref, source.spec.datastore.type)
    if pod_name is not None:
        pods = [p for p in pods if p["metadata"]["name"] == pod_name]
    pod = choose_member(pods)
    if pod is None:
        which = pod_name or f"any member of {source.ref.kind.kind} {source.ref.name}"
        raise NotReady(f"no ready pod to take the backup ({which})", 15)
    token = await members.token(ns, source.ref.name)
    if token is None:
        secret = ChildNames(source.ref.name).agent_token_secret
        raise NotReady(f"agent token Secret {ns}/{secret} does not exist yet", 15)
    return Member(pod["metadata"]["name"], members.url(ns, pod), token)


async def every_member(deps: Deps, source: Parsed[InstanceSpec], replicas: int) -> list[Member]:
    """Members ``0..replicas-1`` in order, each Ready with an IP (a ring's backup needs every node)."""
    ns, members = source.ref.namespace, deps.members
    pods = {p["metadata"]["name"]: p for p in await members.pods(source.ref, source.spec.datastore.type)}
    wanted = [f"{source.ref.name}-{i}" for i in range(replicas)]
    missing = [name for name in wanted if name not in pods or not _ready(pods[name])]
    if missing:
        raise NotReady(f"a ring's backup needs every member ready: {', '.join(missing)} not yet", 15)
    token = await members.token(ns, source.ref.name)
    if token is None:
        secret = ChildNames(source.ref.name).agent_token_secret
        raise NotReady(f"agent token Secret {ns}/{secret} does not exist yet", 15)
    return [Member(name, members.url(ns, pods[name]), token) for name in wanted]
