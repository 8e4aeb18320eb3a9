"""Invariants every rendered resource must hold, whatever the engine (fake or real)."""

from __future__ import annotations

import json
from typing import Any

from kubetrove.render import Manifests, RenderInputs


def pod_spec(manifests: Manifests) -> dict[str, Any]:
    spec: dict[str, Any] = manifests.statefulset["spec"]["template"]["spec"]
    return spec


def assert_restricted(manifests: Manifests, *, engine_read_only_root: bool) -> None:
    """The Pod Security Standard "restricted", plus our read-only root filesystem rule."""
    pod = pod_spec(manifests)
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] > 0 and psc["runAsGroup"] > 0 and psc["fsGroup"] == psc["runAsGroup"]
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert "hostNetwork" not in pod and "hostPID" not in pod and "hostIPC" not in pod
    containers = pod["containers"] + pod.get("initContainers", [])
    for c in containers:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
        assert "privileged" not in sc and "runAsUser" not in sc, c["name"]
        expected_ro = engine_read_only_root if c["name"] == "engine" else True
        assert sc["readOnlyRootFilesystem"] is expected_ro, c["name"]
    # No hostPath (forbidden by "baseline", a fortiori by "restricted").
    assert all("hostPath" not in v for v in pod["volumes"])


def assert_no_secret_values(manifests: Manifests, inputs: RenderInputs) -> None:
    """Secret values appear in the two Secrets and nowhere else (not in env, args, annotations...)."""
    secrets = [*inputs.credentials.values(), inputs.agent_token]
    others = [m for m in manifests.all() if m["kind"] != "Secret"]
    assert len(others) == len(manifests.all()) - 2
    text = json.dumps(others)
    for value in secrets:
        assert value not in text
    secret_text = json.dumps([manifests.credentials_secret, manifests.agent_token_secret])
    for value in secrets:
        assert value in secret_text


def assert_pod_consistent(manifests: Manifests) -> None:
    """Every mount names a volume (or the claim template), and nothing is declared twice."""
    sts = manifests.statefulset["spec"]
    pod = sts["template"]["spec"]
    volumes = [v["name"] for v in pod["volumes"]] + [
        c["metadata"]["name"] for c in sts["volumeClaimTemplates"]
    ]
    assert len(volumes) == len(set(volumes))
    containers = pod["containers"] + pod.get("initContainers", [])
    assert len({c["name"] for c in containers}) == len(containers)
    for c in containers:
        paths = [m["mountPath"] for m in c["volumeMounts"]]
        assert len(paths) == len(set(paths)), c["name"]
        assert {m["name"] for m in c["volumeMounts"]} <= set(volumes), c["name"]
        env = [e["name"] for e in c.get("env", [])]
        assert env == sorted(set(env)), c["name"]  # unique and in a stable order
        for port in c.get("ports", []):
            assert len(port["name"]) <= 15, port  # IANA_SVC_NAME, so Services can target it by name
