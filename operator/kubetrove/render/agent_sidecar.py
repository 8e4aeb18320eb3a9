"""The agent sidecar and the restore init container (both run the kubetrove agent image).

Wire facts (port, probe paths, the token-file env var) come from ``kubetrove.agent.protocol``, the one
place they are defined; the import-linter contract allows exactly this import from render.

The command line is what ``kubetrove.agent.main`` parses: ``--engine``, ``--engine-port``,
``--engine-user`` and ``--engine-password-file``. Secrets reach the agent as mounted FILES (the
credentials and agent token Secrets), never as env values or flags, which ``ps`` and
``kubectl describe`` would show.

Probes: readiness on ``/readyz`` (agent up AND engine answering) keeps a member out of the rw/ro
Services while its engine is down; liveness on ``/healthz`` restarts only the agent container. The engine
container deliberately has no liveness probe: killing a database in crash recovery or in a long
checkpoint makes the outage longer; a hung primary is the clustering loop's job (failover).
A startup probe on ``/healthz`` holds liveness off until the agent first answers: on a busy node the
agent's imports alone took over a minute (seen in CI), and a liveness kill in that window restarts an
agent that was about to serve. Once it has answered, liveness takes over with its own short budget.
The health routes must stay unauthenticated: a token in ``httpGet.httpHeaders`` would sit in the pod spec.
"""

from __future__ import annotations

from typing import Any

from kubetrove.agent.protocol import PORT, TOKEN_FILE_ENV, Paths
from kubetrove.api.specs import InstanceSpec
from kubetrove.datastores.base import Datastore, EngineContainer
from kubetrove.render import names
from kubetrove.render.inputs import RenderInputs
from kubetrove.render.security import container_security_context

AGENT_COMMAND = ("kubetrove-agent",)
# Not secrets: where the Secret volumes are mounted in the agent container.
CREDENTIALS_DIR = "/var/run/kubetrove/credentials"
TOKEN_DIR = "/var/run/kubetrove/agent-token"  # noqa: S105 (a path)
TOKEN_FILE = f"{TOKEN_DIR}/{names.AGENT_TOKEN_KEY}"
TLS_DIR = "/var/run/kubetrove/agent-tls"
RESTORE_DIR = "/var/run/kubetrove/restore"
RESTORE_REQUEST_FILE = f"{RESTORE_DIR}/{names.RESTORE_REQUEST_KEY}"
AGENT_TMP_DIR = "/tmp"  # noqa: S108 (an emptyDir of its own inside the container)

# A small fixed budget: the agent idles between operator calls. No CPU limit (CFS throttling would
# slow probes under load); a memory limit so a leak restarts the agent, never the engine.
AGENT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}


def _agent_args(inputs: RenderInputs, store: Datastore, engine: EngineContainer) -> list[str]:
    args = [
        f"--engine={store.engine.value}",
        f"--engine-port={store.ports[0].number}",
        f"--data-dir={engine.data_dir}",
    ]
    if inputs.spec.restore_from is not None:
        # The agent loads a logical backup once the engine runs (the init container only checked it) and
        # answers /readyz 503 until the restore is done; the dump is spooled to its /tmp emptyDir.
        args += [f"--restore-request={RESTORE_REQUEST_FILE}", f"--spool-dir={AGENT_TMP_DIR}"]
    if engine.demoted_marker:
        args.append(f"--demoted-marker={engine.demoted_marker}")
    if engine.clone_dir:
        args.append(f"--clone-dir={engine.clone_dir}")
    if engine.admin_user:
        args.append(f"--engine-user={engine.admin_user}")
    if engine.admin_password_key:
        args.append(f"--engine-password-file={CREDENTIALS_DIR}/{engine.admin_password_key}")
    if inputs.server_tls is not None:
        # The engine serves TLS (and may refuse plaintext TCP): the agent's own connections and the
        # replication it sets up ask for TLS (how is the agent bundle's: agent/engines/<engine>), and it
        # has the engine re-read the files (mounted here too) when a renewal swaps them in.
        args.append(f"--engine-tls-dir={names.ENGINE_TLS_DIR}")
    if inputs.agent_tls is not None:
        # HTTPS only, and /v1 only for a client certificate the installation's CA signed (the operator's).
        args += [
            f"--tls-cert={TLS_DIR}/{names.TLS_CERT_KEY}",
            f"--tls-key={TLS_DIR}/{names.TLS_KEY_KEY}",
            f"--tls-client-ca={TLS_DIR}/{names.TLS_CA_KEY}",
        ]
    return args


# The startup probe's budget: STARTUP_PERIOD x STARTUP_FAILURES seconds for the agent to first answer.
STARTUP_PERIOD = 5
STARTUP_FAILURES = 120


def _probe(path: str, period: int, failures: int, tls: bool) -> dict[str, Any]:
    # The kubelet's HTTPS probe verifies no certificate and presents none: the health routes need none.
    return {
        "httpGet": {"path": path, "port": names.AGENT_CONTAINER, "scheme": "HTTPS" if tls else "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _data_mount(engine: EngineContainer) -> dict[str, Any]:
    # Read-write: physical backup and restore tools work on the data directory itself.
    return {"name": names.DATA_VOLUME, "mountPath": engine.data_dir}


def backup_claim(spec: InstanceSpec) -> str | None:
    """The claim of ``spec.backup.storage.pvc``, which the agent and restore containers mount, or None."""
    storage = spec.backup.storage if spec.backup else None
    return storage.pvc.claim_name if storage is not None and storage.pvc is not None else None


def backup_pvc_mounts(spec: InstanceSpec) -> list[dict[str, Any]]:
    """The backup PVC's mount at ``BACKUP_PVC_ROOT/<claim>`` (where the agent writes), if there is one."""
    claim = backup_claim(spec)
    if claim is None:
        return []
    return [{"name": names.BACKUP_PVC_VOLUME, "mountPath": f"{names.BACKUP_PVC_ROOT}/{claim}"}]


def _tmp_mount() -> dict[str, Any]:
    return {"name": names.AGENT_TMP_VOLUME, "mountPath": AGENT_TMP_DIR}


def agent_container(inputs: RenderInputs, store: Datastore, engine: EngineContainer) -> dict[str, Any]:
    """The sidecar: serves the agent HTTP API on ``protocol.PORT`` next to the engine."""
    if engine.admin_password_key and engine.admin_password_key not in inputs.credentials:
        raise ValueError(f"credentials lack key {engine.admin_password_key} that the agent reads")
    tls = inputs.agent_tls is not None
    return {
        "name": names.AGENT_CONTAINER,
        "image": inputs.agent_image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(AGENT_COMMAND),
        "args": _agent_args(inputs, store, engine),
        "env": [{"name": TOKEN_FILE_ENV, "value": TOKEN_FILE}],
        "ports": [{"name": names.AGENT_CONTAINER, "containerPort": PORT, "protocol": "TCP"}],
        "startupProbe": _probe(Paths.HEALTHZ, period=STARTUP_PERIOD, failures=STARTUP_FAILURES, tls=tls),
        "readinessProbe": _probe(Paths.READYZ, period=5, failures=3, tls=tls),
        "livenessProbe": _probe(Paths.HEALTHZ, period=10, failures=6, tls=tls),
        "resources": AGENT_RESOURCES,
        "securityContext": container_security_context(read_only_root_filesystem=True),
        "volumeMounts": [
            _data_mount(engine),
            {"name": names.CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_DIR, "readOnly": True},
            {"name": names.AGENT_TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True},
            *([{"name": names.AGENT_TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True}] if tls else []),
            *(
                [{"name": names.ENGINE_TLS_VOLUME, "mountPath": names.ENGINE_TLS_DIR, "readOnly": True}]
                if inputs.server_tls is not None
                else []
            ),
            _tmp_mount(),
            *_restore_mounts(inputs.spec),
            *backup_pvc_mounts(inputs.spec),
            *([{"name": names.CLONE_VOLUME, "mountPath": engine.clone_dir}] if engine.clone_dir else []),
        ],
    }


def _restore_mounts(spec: InstanceSpec) -> list[dict[str, Any]]:
    """The restore Secret (the RestoreRequest JSON), read-only, when ``spec.restoreFrom`` is set."""
    if spec.restore_from is None:
        return []
    return [{"name": names.RESTORE_VOLUME, "mountPath": RESTORE_DIR, "readOnly": True}]


def restore_container(
    inputs: RenderInputs, store: Datastore, engine: EngineContainer
) -> dict[str, Any] | None:
    """The init container that fills an empty data volume from ``spec.restoreFrom``, or None.

    It runs ``kubetrove-agent restore --request-file=...`` (agent/backup/restore.py): the RestoreRequest
    JSON (target, credentials, engine, major, data dir) is written by reconcile into the restore Secret
    (``ChildNames.restore_secret``) after checking the DatabaseBackup, and mounted here as a file.
    It runs before the engine starts, verifies every checksum before touching the data directory, and
    is a no-op when the volume already holds this backup's restore (a recreated pod). A logical backup
    is only checked here; the agent sidecar loads it once the engine runs (``--restore-request``).
    """
    restore = inputs.spec.restore_from
    if restore is None:
        return None
    return {
        "name": names.RESTORE_CONTAINER,
        "image": inputs.agent_image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(AGENT_COMMAND),
        "args": ["restore", f"--request-file={RESTORE_REQUEST_FILE}"],
        # Restore decompresses and copies the whole data set: it gets the engine's budget.
        "resources": inputs.spec.resources.to_wire(),
        # A refusal's ErrorReply (stderr) becomes the termination message: the Restored condition shows it.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(read_only_root_filesystem=True),
        "volumeMounts": [
            _data_mount(engine),
            _tmp_mount(),
            *_restore_mounts(inputs.spec),
            *backup_pvc_mounts(inputs.spec),
        ],
    }
