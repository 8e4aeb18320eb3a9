"""What list, get and verify show, from objects as the API server returns them."""

from __future__ import annotations

import datetime

from kubetrove.cli import output, views

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)


def cluster(name: str = "orders") -> dict[str, object]:
    return {
        "kind": "DatabaseCluster",
        "metadata": {
            "name": name,
            "namespace": "dev",
            "uid": "u1",
            "creationTimestamp": "2026-12-04T10:00:00Z",
        },
        "spec": {"datastore": {"type": "mariadb", "version": "10.11"}, "replicas": 3},
        "status": {
            "phase": "Ready",
            "primary": f"{name}-0",
            "endpoints": {"readWrite": f"{name}-rw.dev.svc:3306"},
            "members": [
                {"pod": f"{name}-0", "role": "primary", "healthy": True},
                {"pod": f"{name}-1", "role": "replica", "healthy": True, "lagSeconds": 0.5},
                {"pod": f"{name}-2", "role": "replica", "healthy": False},
            ],
            "conditions": [{"type": "Ready", "status": "True", "reason": "AllMembersReady"}],
        },
    }


def backup(
    name: str, created: str, phase: str = "Completed", ver: dict[str, object] | None = None
) -> dict[str, object]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"source": {"kind": "DatabaseCluster", "name": "orders"}},
        "status": {"phase": phase, "completedAt": created, **({"verification": ver} if ver else {})},
    }


def test_list_row() -> None:
    backups = [backup("b1", "2026-12-04T11:00:00Z"), backup("b2", "2026-12-04T11:30:00Z", phase="Failed")]
    row = views.list_row(cluster(), views.backups_of(cluster(), backups), NOW)
    assert row["ready"] == "2/3" and row["primary"] == "orders-0" and row["phase"] == "Ready"
    assert row["lastBackup"] == "1h" and row["age"] == "2h" and row["reason"] == ""


def test_backups_of_another_resource_are_not_mine() -> None:
    other = backup("x", "2026-12-04T11:00:00Z")
    other["spec"] = {"source": {"kind": "DatabaseInstance", "name": "orders"}}  # same name, other kind
    assert views.backups_of(cluster(), [other]) == []


def test_detail_reports_the_verification_with_its_time_to_restore() -> None:
    ver = {
        "phase": "Passed",
        "startedAt": "2026-12-04T11:10:00Z",
        "completedAt": "2026-12-04T11:11:30Z",
        "tables": 4,
    }
    backups = [backup("b1", "2026-12-04T11:00:00Z", ver=ver)]
    got = views.detail(cluster(), backups, [], NOW)
    assert got["lastVerification"]["restoreSeconds"] == 90.0
    assert got["lastVerification"]["phase"] == "Passed" and got["lastBackup"]["name"] == "b1"
    assert [m["role"] for m in got["members"]] == ["primary", "replica", "replica"]
    assert got["endpoints"] == {"readWrite": "orders-rw.dev.svc:3306"}


def test_table_output_has_headers_and_aligned_columns() -> None:
    text = output.table(
        [{"name": "a", "phase": "Ready"}, {"name": "longer", "phase": None}], ("name", "phase")
    )
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "PHASE"]
    assert lines[1].index("Ready") == lines[0].index("PHASE")
    assert lines[2].strip() == "longer"


def test_json_and_yaml_round_trip() -> None:
    import json

    import yaml

    data = [{"name": "a", "n": 1}]
    assert json.loads(output.render(data, "json")) == data
    assert yaml.safe_load(output.render(data, "yaml")) == data
