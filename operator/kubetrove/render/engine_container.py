"""The engine container: image, command and env from the datastore strategy, resources from the spec.

Mounts: the data volume at ``data_dir``, the config ConfigMap (a whole directory, not ``subPath``, so a
dynamic parameter reaches the file without a restart), and one emptyDir per ``scratch_dirs`` entry
(sockets, pid files, tmp) since the root filesystem is read-only where the engine allows it.
"""

from __future__ import annotations

from typing import Any

from kubetrove.datastores.base import Datastore, EngineContainer, qualified_image
from kubetrove.render import names
from kubetrove.render.inputs import RenderInputs
from kubetrove.render.security import container_security_context


def image(inputs: RenderInputs, store: Datastore) -> str:
    """The spec's image, else the catalog's image of the spec's version in the operator's image registry
    (the version is validated before render; a miss is a programming error)."""
    if inputs.spec.datastore.image:
        return inputs.spec.datastore.image
    version = inputs.spec.datastore.version
    info = store.versions.get(version)
    if info is None:
        raise ValueError(
            f"{store.engine.value} {version} is not in the catalog (validate the spec before render)"
        )
    return qualified_image(inputs.image_registry, info.image)


def scratch_volume(index: int) -> str:
    """The emptyDir volume name of ``scratch_dirs[index]`` (by position: paths are not valid names)."""
    return f"{names.SCRATCH_VOLUME_PREFIX}{index}"


def _env(inputs: RenderInputs, engine: EngineContainer) -> list[dict[str, Any]]:
    # Sorted by name: Kubernetes treats env as a list, so an unordered source must be ordered to keep the
    # template stable. (Only ``$(VAR)`` references depend on order; strategies must not use them.)
    missing = sorted(set(engine.secret_env.values()) - set(inputs.credentials))
    if missing:
        # A pod referencing a missing key never starts (CreateContainerConfigError): fail here instead.
        raise ValueError(f"credentials lack key(s) {', '.join(missing)} that the engine container reads")
    plain: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in engine.env.items()]
    secret = inputs.names.credentials_secret
    from_secret: list[dict[str, Any]] = [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for k, key in engine.secret_env.items()
    ]
    return sorted(plain + from_secret, key=lambda e: str(e["name"]))


def engine_container(inputs: RenderInputs, store: Datastore, engine: EngineContainer) -> dict[str, Any]:
    """The database server container."""
    container: dict[str, Any] = {
        "name": names.ENGINE_CONTAINER,
        "image": image(inputs, store),
        "imagePullPolicy": "IfNotPresent",
    }
    if engine.command:
        container["command"] = list(engine.command)
    if engine.args:
        container["args"] = list(engine.args)
    container |= {
        "env": _env(inputs, engine),
        "ports": [{"name": p.name, "containerPort": p.number, "protocol": "TCP"} for p in store.ports],
        "resources": inputs.spec.resources.to_wire(),
        # An engine that exits leaves its last log lines in lastState.terminated.message, where the
        # status reads why it crashed (reconcile/causes.py); the agent cannot read another container's log.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(
            read_only_root_filesystem=engine.read_only_root_filesystem
        ),
        "volumeMounts": [
            {"name": names.DATA_VOLUME, "mountPath": engine.data_dir},
            {"name": names.CONFIG_VOLUME, "mountPath": store.config_file.mount_dir, "readOnly": True},
            *({"name": scratch_volume(i), "mountPath": d} for i, d in enumerate(engine.scratch_dirs)),
            *([{"name": names.CLONE_VOLUME, "mountPath": engine.clone_dir}] if engine.clone_dir else []),
            *(
                [{"name": names.ENGINE_TLS_VOLUME, "mountPath": names.ENGINE_TLS_DIR, "readOnly": True}]
                if inputs.server_tls is not None
                else []
            ),
        ],
    }
    return container
