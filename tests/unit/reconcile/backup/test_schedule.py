"""Schedule slots (literal times), idempotent creation per slot, ownership, and the retention choice."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from kubetrove.api.resources import BACKUP, INSTANCE, parse_body
from kubetrove.api.specs import InstanceSpec
from kubetrove.k8s.kinds import CUSTOM
from kubetrove.reconcile.backup.schedule import (
    SCHEDULED_BY,
    backup_name,
    due_slot,
    last_completion,
    schedule_pass,
    slot_interval,
    to_prune,
)
from kubetrove.reconcile.context import Deps
from tests.unit.reconcile.backup.fakes import NS, source
from tests.unit.reconcile.conftest import LOG
from tests.unit.reconcile.fake_kube import FakeKube


def t(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


CREATED = t("2026-01-01T00:00:30")


@pytest.mark.parametrize(
    ("schedule", "now", "slot"),
    [
        ("0 3 * * *", "2026-01-02T03:00:00", "2026-01-02T03:00:00"),  # exactly on the slot counts
        ("0 3 * * *", "2026-01-02T02:59:59", "2026-01-01T03:00:00"),
        ("0 3 * * *", "2026-01-02T14:10:00", "2026-01-02T03:00:00"),
        ("* * * * *", "2026-01-02T03:04:59.900000", "2026-01-02T03:04:00"),
        ("*/15 * * * *", "2026-01-02T03:29:00", "2026-01-02T03:15:00"),
        ("0 3 * * *", "2026-01-01T02:00:00", None),  # the only past slot is before the source existed
        ("* * * * *", "2026-01-01T00:00:45", "2026-01-01T00:00:00"),  # the creation minute is due
    ],
)
def test_due_slot(schedule: str, now: str, slot: str | None) -> None:
    assert due_slot(schedule, CREATED, t(now)) == (t(slot) if slot else None)


def test_backup_name() -> None:
    assert backup_name("orders", t("2026-01-02T03:04:00")) == "orders-202601020304"


def _backup(name: str, phase: str | None, completed: str | None = None) -> dict[str, Any]:
    st = {"phase": phase, "completedAt": completed} if phase else {}
    return {"metadata": {"name": name}, "status": st}


def test_retention_keeps_the_newest_completed_and_ignores_the_rest() -> None:
    backups = [
        _backup("a", "Completed", "2026-01-01T03:00:00Z"),
        _backup("b", "Completed", "2026-01-02T03:00:00Z"),
        _backup("c", "Failed"),
        _backup("d", "Running"),
        _backup("e", "Completed", "2026-01-03T03:00:00Z"),
        _backup("f", None),
    ]
    assert to_prune(backups, 2) == ["a"]
    assert to_prune(backups, 1) == ["b", "a"]
    assert to_prune(backups, 3) == []


async def test_schedule_pass_creates_once_per_slot_owned_by_the_source_and_prunes(
    kube: FakeKube, deps: Deps
) -> None:
    body = source(backup={"schedule": "* * * * *", "keep": 2}, deletionPolicy={"backups": "Delete"})
    kube.put(body)
    parsed = parse_body(INSTANCE, body, InstanceSpec)
    clock = {"now": t("2026-01-02T03:04:20")}
    deps = dataclasses.replace(deps, clock=lambda: clock["now"])
    rtype = CUSTOM[BACKUP.kind]
    assert await schedule_pass(parsed, CREATED, deps, LOG) == "db-202601020304"
    assert await schedule_pass(parsed, CREATED, deps, LOG) is None  # same slot: nothing new
    created = kube.find(rtype, NS, "db-202601020304")
    assert created is not None
    assert created["spec"] == {
        "source": {"kind": "DatabaseInstance", "name": "db"},
        "method": "auto",
        "deletionPolicy": "Delete",
    }
    (owner,) = created["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "DatabaseInstance",
        "db",
        "uid-db",
        True,
    )
    assert created["metadata"]["labels"][SCHEDULED_BY] == "db"
    for minute in (5, 6):
        clock["now"] = t(f"2026-01-02T03:0{minute}:01")
        await schedule_pass(parsed, CREATED, deps, LOG)
    for minute in (4, 5, 6):  # all completed now
        made = kube.find(rtype, NS, f"db-20260102030{minute}")
        assert made is not None
        kube.put(
            {
                **made,
                "status": {"phase": "Completed", "completedAt": f"2026-01-02T03:0{minute}:30Z"},
            }
        )
    await schedule_pass(parsed, CREATED, deps, LOG)
    names = sorted(o["metadata"]["name"] for o in await kube.list(rtype, NS))
    assert names == ["db-202601020305", "db-202601020306"]  # keep 2: the oldest completed went


async def test_no_schedule_does_nothing(kube: FakeKube, deps: Deps) -> None:
    parsed = parse_body(INSTANCE, source(), InstanceSpec)
    assert await schedule_pass(parsed, CREATED, deps, LOG) is None
    assert kube.writes() == []


@pytest.mark.parametrize(
    ("schedule", "now", "seconds"),
    [
        ("0 3 * * *", "2026-01-02T14:10:00", 86400),
        ("*/15 * * * *", "2026-01-02T03:29:00", 900),
        ("0 3 * * 1-5", "2026-01-05T04:00:00", 3 * 86400),  # Monday: the gap since Friday's slot
        ("0 3 * * 1-5", "2026-01-06T04:00:00", 86400),  # Tuesday
    ],
)
def test_slot_interval_is_the_gap_between_the_two_newest_slots(schedule: str, now: str, seconds: int) -> None:
    assert slot_interval(schedule, t(now)) == seconds


def test_last_completion_then_the_first_attempt_then_nothing() -> None:
    def made(backup: dict[str, Any], created: str) -> dict[str, Any]:
        return {**backup, "metadata": {**backup["metadata"], "creationTimestamp": created}}

    failed = made(_backup("a", "Failed"), "2026-01-01T03:00:00Z")
    running = made(_backup("b", "Running"), "2026-01-02T03:00:00Z")
    assert last_completion([running, failed]) == t("2026-01-01T03:00:00")  # none completed: since the first
    done = [made(_backup("c", "Completed", "2026-01-03T03:07:00Z"), "2026-01-03T03:00:00Z"),
            made(_backup("d", "Completed", "2026-01-02T03:09:00Z"), "2026-01-02T03:00:00Z")]  # fmt: skip
    assert last_completion([failed, running, *done]) == t("2026-01-03T03:07:00")
    assert last_completion([]) is None


async def test_schedule_pass_sets_the_schedule_gauges(kube: FakeKube, deps: Deps) -> None:
    body = source(backup={"schedule": "0 3 * * *", "keep": 2})
    kube.put(body)
    parsed = parse_body(INSTANCE, body, InstanceSpec)
    deps = dataclasses.replace(deps, clock=lambda: t("2026-01-02T03:04:20"))

    def sample(name: str) -> float | None:
        labels = {"namespace": NS, "kind": "DatabaseInstance", "owner": "db"}
        return deps.metrics.registry.get_sample_value(name, labels)

    await schedule_pass(parsed, CREATED, deps, LOG)
    assert sample("kubetrove_backup_schedule_interval_seconds") == 86400
    # The fake API server stamps no creationTimestamp: no completed backup and no first attempt known yet.
    assert sample("kubetrove_backup_last_completion_timestamp_seconds") is None
    made = kube.find(CUSTOM[BACKUP.kind], NS, "db-202601020300")
    assert made is not None
    made["metadata"]["creationTimestamp"] = "2026-01-02T03:00:05Z"
    kube.put(made)
    await schedule_pass(parsed, CREATED, deps, LOG)
    assert (
        sample("kubetrove_backup_last_completion_timestamp_seconds") == t("2026-01-02T03:00:05").timestamp()
    )
    kube.put({**made, "status": {"phase": "Completed", "completedAt": "2026-01-02T03:04:00Z"}})
    await schedule_pass(parsed, CREATED, deps, LOG)
    assert (
        sample("kubetrove_backup_last_completion_timestamp_seconds") == t("2026-01-02T03:04:00").timestamp()
    )
