"""An owner's backup series go with what they report on: a stale one would keep an alert firing for good."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from kubetrove.metrics import OperatorMetrics
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from tests.unit.reconcile.backup.fakes import STORAGE
from tests.unit.reconcile.conftest import LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

OWNER = {"namespace": "ns", "kind": "DatabaseInstance", "owner": "db"}
SCHEDULE = (
    "kubetrove_backup_schedule_interval_seconds",
    "kubetrove_backup_last_completion_timestamp_seconds",
)
VERIFICATION = (
    "kubetrove_backup_verification_ok",
    "kubetrove_backup_verification_last_success_timestamp_seconds",
    "kubetrove_backup_restore_seconds",
    "kubetrove_backup_verified_backup_age_seconds",
    "kubetrove_backup_restore_target_seconds",
)
COUNTER = "kubetrove_backup_verifications_total"


def set_every_series(m: OperatorMetrics) -> None:
    labels = tuple(OWNER.values())
    for gauge in (
        m.backup_schedule_interval,
        m.backup_last_completion,
        m.backup_verification_ok,
        m.backup_verification_success_time,
        m.backup_restore_seconds,
        m.backup_verified_age_seconds,
        m.backup_restore_target_seconds,
    ):
        gauge.labels(*labels).set(1)
    m.backup_verifications.labels(*labels, "failure").inc()


def present(m: OperatorMetrics) -> set[str]:
    names = {n for n in (*SCHEDULE, *VERIFICATION) if m.registry.get_sample_value(n, OWNER) is not None}
    if m.registry.get_sample_value(COUNTER, {**OWNER, "result": "failure"}) is not None:
        names.add(COUNTER)
    return names


@pytest.mark.parametrize(
    ("backup", "kept"),
    [
        ({"schedule": "0 3 * * *", "verify": True}, {*SCHEDULE, *VERIFICATION, COUNTER}),
        ({"schedule": "0 3 * * *"}, set(SCHEDULE)),
        ({"verify": True}, {*VERIFICATION, COUNTER}),
        (None, set()),
    ],
    ids=["both", "schedule-only", "verify-only", "no-backup"],
)
async def test_a_reconcile_drops_the_series_of_what_the_spec_turned_off(
    kube: FakeKube, deps: Deps, backup: dict[str, Any] | None, kept: set[str]
) -> None:
    spec = {"backup": {**backup, "storage": STORAGE}} if backup else {}
    kube.put(body(**spec))
    set_every_series(deps.metrics)
    with contextlib.suppress(NotReady):  # the members never get ready here; the series are dropped first
        await run.reconcile(parsed(**spec), None, deps, LOG)
    assert present(deps.metrics) == kept


async def test_deleting_the_owner_drops_every_backup_series(kube: FakeKube, deps: Deps) -> None:
    spec = {"backup": {"schedule": "0 3 * * *", "verify": True, "storage": STORAGE}}
    kube.put(body(**spec))
    set_every_series(deps.metrics)
    await run.delete(parsed(**spec), deps, LOG)
    assert present(deps.metrics) == set()


def test_backup_failure_counters_start_at_zero() -> None:
    m = OperatorMetrics()
    m.start_backup_counters({"mariadb": ["auto", "physical", "logical"], "cassandra": ["auto", "physical"]})
    value = m.registry.get_sample_value
    assert value("kubetrove_backup_failures_total", {"engine": "mariadb", "method": "logical"}) == 0
    assert value("kubetrove_backup_failures_total", {"engine": "cassandra", "method": "physical"}) == 0
    assert value("kubetrove_backup_failures_total", {"engine": "cassandra", "method": "logical"}) is None
