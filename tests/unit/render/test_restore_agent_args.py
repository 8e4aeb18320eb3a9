"""With ``spec.restoreFrom`` the agent sidecar reads the restore request too (it loads logical backups)."""

from __future__ import annotations

from typing import Any

from kubetrove.agent.main import parse_args
from tests.unit.render.test_render_fake import cluster, instance, run, template

REQUEST = "/var/run/kubetrove/restore/request.json"


def agent_of(manifests: Any) -> dict[str, Any]:
    containers: list[dict[str, Any]] = template(manifests)["spec"]["containers"]
    (agent,) = [c for c in containers if c["name"] == "agent"]
    return agent


def test_agent_gets_the_restore_request_read_only() -> None:
    agent = agent_of(run(instance(restoreFrom={"backup": "nightly"})))
    assert {f"--restore-request={REQUEST}", "--spool-dir=/tmp"} <= set(agent["args"])
    (mount,) = [m for m in agent["volumeMounts"] if m["name"] == "restore-request"]
    assert mount == {"name": "restore-request", "mountPath": "/var/run/kubetrove/restore", "readOnly": True}
    # The spool goes to the agent's own /tmp emptyDir (its root filesystem is read-only).
    assert any(m["mountPath"] == "/tmp" for m in agent["volumeMounts"])
    # What render passes is what the agent parses (no drift between the two sides).
    args = parse_args([*agent["args"], "--token-file=/t"])
    assert (args.restore_request, args.spool_dir) == (REQUEST, "/tmp")


def test_no_restore_request_without_restore_from() -> None:
    for spec in (instance(), cluster()):
        agent = agent_of(run(spec))
        assert not any(a.startswith("--restore-request") for a in agent["args"])
        assert all(m["name"] != "restore-request" for m in agent["volumeMounts"])
