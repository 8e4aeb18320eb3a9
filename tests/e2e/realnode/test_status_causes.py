"""The status names why members do not run (issue 23), on the real node with the operator:

- an image that does not exist (``spec.datastore.image`` on a registry address that refuses): the
  Ready reason is ImagePullFailed and the message names the image;
- an engine that exits at start (PostgreSQL with ``huge_pages: "on"`` on a node without huge pages:
  "could not map anonymous shared memory"): CrashLoop with the exit code and the engine's last lines;
- a storage class that does not exist: VolumeNotBound naming the class.

Each starts Progressing (not "Settled" while nothing has converged); past ``progressDeadlineSeconds``
(30 here) it is Degraded with that reason, Progressing=False ProgressDeadlineExceeded, a Warning Event
with the reason, and ``kubectl get`` prints the reason in its Reason column.

The three instances are created together (2 cores: one after the other would triple the wait).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from ..conftest import LocalCluster
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import CRDS, GROUP, PLURALS, VERSION, Operator, apply_cr, get_cr, poll
from .conftest import real_namespace_named, real_resource

DEADLINE = 30
MISSING_IMAGE = "127.0.0.1:9/kubetrove/does-not-exist:10.11"  # nothing listens on port 9: refused at once
MISSING_CLASS = "no-such-class"

# name -> (engine, version, spec changes, expected reason, words the Ready message must hold)
CASES: dict[str, tuple[str, str, dict[str, Any], str, tuple[str, ...]]] = {
    "pull": ("mariadb", "10.11", {"datastore": {"type": "mariadb", "version": "10.11",
                                                "image": MISSING_IMAGE}},
             "ImagePullFailed", ("pull-0", MISSING_IMAGE, "cannot be pulled")),
    "crash": ("postgresql", "15", {"parameters": {"huge_pages": "on"}},
              "CrashLoop", ("crash-0", "container engine exited (exit code", "restarted")),
    "volume": ("mariadb", "10.11", {"storage": {"size": "1Gi", "storageClassName": MISSING_CLASS}},
               "VolumeNotBound", ("volume-0", f"storage class '{MISSING_CLASS}' does not exist")),
}  # fmt: skip


def _body(name: str, namespace: str) -> dict[str, Any]:
    engine, version, changes, _, _ = CASES[name]
    body = real_resource("DatabaseInstance", name, namespace, engine, version, "shop")
    body["spec"] |= changes | {"progressDeadlineSeconds": DEADLINE, "users": []}
    return body


@pytest.fixture(scope="module")
def broken(local_cluster: LocalCluster, operator: Operator, real_node: str) -> Iterator[str]:
    """A namespace holding the three instances that cannot run."""
    # On a cluster shared with other sessions, another branch's CRDs may have replaced this session's
    # since it started (operator_crds): spec.datastore.image and progressDeadlineSeconds must be known.
    local_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    with real_namespace_named(local_cluster.api, f"real-causes-{uuid.uuid4().hex[:6]}") as ns:
        for name in CASES:
            apply_cr(local_cluster, _body(name, ns))
        yield ns
        # Deleted while the operator still runs (it removes its finalizer), before the namespace goes.
        local_cluster.kubectl("delete", "databaseinstances", "--all", "-n", ns, "--wait=false")
        poll(lambda: not any(get_cr(local_cluster.api, "DatabaseInstance", ns, n) for n in CASES),
             "the broken instances deleted", 240)  # fmt: skip


def _conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions", [])}


def _warnings(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    """reason -> note of the Warning Events regarding ``name`` (raw JSON: kopf's own have no eventTime)."""
    raw = client.EventsV1Api(api).list_namespaced_event(namespace, _preload_content=False)
    items = json.loads(raw.data)["items"]
    return {
        e.get("reason", ""): e.get("note", "")
        for e in items
        if e.get("type") == "Warning" and (e.get("regarding") or {}).get("name") == name
    }


def _printed(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The row `kubectl get dbi <name> -o wide` prints: the server's Table, column name -> cell."""
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURALS['DatabaseInstance']}/{name}"
    resp = api.call_api(path, "GET", header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
                        _preload_content=False, _return_http_data_only=True,
                        auth_settings=["BearerToken"])  # fmt: skip
    table = json.loads(resp.data)
    names = [c["name"] for c in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_status_names_why_the_member_does_not_run(
    local_cluster: LocalCluster, operator: Operator, broken: str, name: str
) -> None:
    api, (_, _, _, reason, words) = local_cluster.api, CASES[name]

    def current() -> dict[str, Any] | None:
        return get_cr(api, "DatabaseInstance", broken, name)

    def when(kind: str, field: str, value: str) -> dict[str, Any] | None:
        obj = current()
        return obj if _conditions(obj).get(kind, {}).get(field) == value else None

    try:
        # First the cause, while it is still converging: Progressing=True, never "Settled".
        first = poll(lambda: when("Ready", "reason", reason), f"{name}: Ready reason {reason}", 180)
        ready = _conditions(first)["Ready"]
        assert ready["status"] == "False"
        for word in words:
            assert word in ready["message"], (word, ready["message"])
        if _conditions(first)["Degraded"]["status"] == "False":  # the deadline may already be past
            assert _conditions(first)["Progressing"]["status"] == "True", _conditions(first)

        # Past the deadline: Degraded with that reason, no longer Progressing, a Warning Event.
        late = poll(lambda: when("Degraded", "status", "True"), f"{name}: Degraded", DEADLINE + 120)
        conditions = _conditions(late)
        assert late["status"]["phase"] == "Degraded"
        assert conditions["Degraded"]["reason"] == reason
        assert all(word in conditions["Degraded"]["message"] for word in words), conditions["Degraded"]
        assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == (
            "False",
            "ProgressDeadlineExceeded",
        )
        note = poll(lambda: _warnings(api, broken, name).get(reason), f"{name}: a Warning Event {reason}", 60)
        assert words[1] in note
        row = _printed(api, broken, name)
        assert (row["Phase"], row["Reason"]) == ("Degraded", reason), row
        assert words[1] in row["Message"]
    except AssertionError as exc:
        pods = client.CoreV1Api(api).list_namespaced_pod(broken, _preload_content=False)
        statuses = [
            p.get("status") for p in json.loads(pods.data)["items"] if p["metadata"]["name"].startswith(name)
        ]
        raise AssertionError(f"{exc}\nstatus: {(current() or {}).get('status')}\npods: {statuses}\n"
                             f"operator log tail:\n{operator.log()[-3000:]}") from None  # fmt: skip
