"""What the CLI shows: summaries of the custom resources as plain dicts (pure: no I/O).

Rows are built from the objects exactly as the API server returns them; a field the operator has not
written yet shows as "" (table) or null (JSON/YAML), never as a guess.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from kubetrove.render.names import ChildNames

Obj = Mapping[str, Any]


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _condition(obj: Obj, ctype: str) -> Mapping[str, Any]:
    return next((c for c in _status(obj).get("conditions") or [] if c.get("type") == ctype), {})


def age(timestamp: str | None, now: datetime.datetime) -> str:
    """kubectl's age: 45s, 12m, 5h, 3d (from an RFC 3339 timestamp)."""
    if not timestamp:
        return ""
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def backups_of(obj: Obj, backups: Iterable[Obj]) -> list[Obj]:
    """The DatabaseBackups whose source is ``obj``, newest first."""
    meta = obj["metadata"]
    mine = [
        b
        for b in backups
        if (b.get("spec") or {}).get("source", {}).get("name") == meta["name"]
        and (b.get("spec") or {}).get("source", {}).get("kind") == obj["kind"]
    ]
    return sorted(mine, key=lambda b: b["metadata"].get("creationTimestamp", ""), reverse=True)


def last_completed(backups: list[Obj]) -> Obj | None:
    """The newest backup that completed."""
    return next((b for b in backups if _status(b).get("phase") == "Completed"), None)


def last_verified(backups: list[Obj]) -> Obj | None:
    """The newest backup with a finished verification (passed or failed)."""
    return next(
        (b for b in backups if (_status(b).get("verification") or {}).get("phase") in ("Passed", "Failed")),
        None,
    )


def _members(obj: Obj) -> str:
    """Healthy members / wanted, from the clustering loop's ``status.members``; an instance (or a cluster
    before the loop's first report) has none, so its Ready condition stands for its one pod set."""
    members = _status(obj).get("members") or []
    want = (obj.get("spec") or {}).get("replicas", 1) if obj["kind"] == "DatabaseCluster" else 1
    if members:
        return f"{sum(1 for m in members if m.get('healthy'))}/{want}"
    return f"{want}/{want}" if _condition(obj, "Ready").get("status") == "True" else f"?/{want}"


def list_row(obj: Obj, backups: list[Obj], now: datetime.datetime) -> dict[str, Any]:
    """One line of ``kubectl trove list``."""
    spec, status = obj.get("spec") or {}, _status(obj)
    last = last_completed(backups)
    ready = _condition(obj, "Ready")
    return {
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace", ""),
        "kind": obj["kind"],
        "engine": (spec.get("datastore") or {}).get("type", ""),
        "version": (spec.get("datastore") or {}).get("version", ""),
        "phase": status.get("phase", ""),
        "ready": _members(obj),
        "reason": ready.get("reason", "") if ready.get("status") != "True" else "",
        "primary": status.get("primary") or "",
        "lastBackup": age((_status(last) or {}).get("completedAt") if last else None, now),
        "age": age(obj["metadata"].get("creationTimestamp"), now),
    }


LIST_COLUMNS = (
    "name",
    "kind",
    "engine",
    "version",
    "phase",
    "ready",
    "primary",
    "lastBackup",
    "age",
    "reason",
)


def verification(backup: Obj | None) -> dict[str, Any] | None:
    """A backup's verification report: its result, when, the measured time to restore, and why."""
    if backup is None:
        return None
    status = _status(backup)
    ver = status.get("verification") or {}
    seconds = None
    if ver.get("startedAt") and ver.get("completedAt"):
        start = datetime.datetime.fromisoformat(ver["startedAt"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(ver["completedAt"].replace("Z", "+00:00"))
        seconds = round((end - start).total_seconds(), 1)
    return {
        "backup": backup["metadata"]["name"],
        "phase": ver.get("phase") or "",
        "startedAt": ver.get("startedAt"),
        "completedAt": ver.get("completedAt"),
        "restoreSeconds": seconds,
        "tables": ver.get("tables"),
        "reason": ver.get("reason"),
        "message": ver.get("message"),
    }


def detail(obj: Obj, backups: list[Obj], events: Iterable[Obj], now: datetime.datetime) -> dict[str, Any]:
    """``kubectl trove get NAME``: the row, plus members, endpoints, conditions, backups and Events."""
    status = _status(obj)
    last = last_completed(backups)
    return {
        **list_row(obj, backups, now),
        "endpoints": status.get("endpoints") or {},
        "credentialsSecret": status.get("credentialsSecret"),
        "users": [
            {
                "name": u.get("name"),
                "secret": (u.get("passwordSecretRef") or {}).get("name")
                or ChildNames(obj["metadata"]["name"]).user_secret(str(u.get("name"))),
            }
            for u in (obj.get("spec") or {}).get("users") or []
        ],
        "members": [
            {
                "pod": m.get("pod"),
                "role": m.get("role"),
                "healthy": m.get("healthy"),
                "lagSeconds": m.get("lagSeconds"),
                "position": m.get("position"),
                **({"ringState": m["ringState"]} if m.get("ringState") else {}),
            }
            for m in status.get("members") or []
        ],
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
        ],
        "lastBackup": {
            "name": last["metadata"]["name"],
            "completedAt": _status(last).get("completedAt"),
            "method": _status(last).get("method"),
            "sizeBytes": _status(last).get("sizeBytes"),
        }
        if last
        else None,
        "lastVerification": verification(last_verified(backups)),
        "backups": [{"name": b["metadata"]["name"], "phase": _status(b).get("phase", "")} for b in backups],
        "events": [
            {"type": e.get("type"), "reason": e.get("reason"), "note": e.get("note") or e.get("message")}
            for e in sorted(
                events, key=lambda e: e.get("eventTime") or e["metadata"].get("creationTimestamp", "")
            )
        ][-10:],
    }
