"""Restore verification against the fake Kube and a fake agent: start, wait, check, report, clean up."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from kubetrove.agent.protocol import TableCheck, TableStats, VerifyReply, VerifyRequest
from kubetrove.api.resources import BACKUP, INSTANCE, parse_body
from kubetrove.api.specs import InstanceSpec
from kubetrove.k8s.kinds import CUSTOM, EVENT
from kubetrove.reconcile.backup.verify import verify_pass
from kubetrove.reconcile.context import Deps
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.backup.fakes import NS, b64, backup, pod, seed, source
from tests.unit.reconcile.conftest import LOG, NOW
from tests.unit.reconcile.fake_kube import FakeKube

BACKUPS, INSTANCES, OWNER = CUSTOM[BACKUP.kind], CUSTOM[INSTANCE.kind], "db"
STATS = {"shop.items": TableStats(rows=500, checksum="111")}


REPLY = VerifyReply(
    engine="mariadb",
    check_tool="CHECK TABLE",
    recorded=STATS,
    observed=STATS,
    checks=[TableCheck(table="shop.items", ok=True)],
)


@pytest.fixture
def agent(agents: FakeAgents) -> FakeAgents:
    agents.verify_reply = REPLY
    return agents


@pytest.fixture
def vdeps(deps: Deps, agent: FakeAgents) -> Deps:
    return dataclasses.replace(deps, agent_url=lambda ns, name, ip, tls=None: f"http://{name}:8432")


def requests(agent: FakeAgents) -> list[tuple[str, VerifyRequest]]:
    """Every POST /v1/verify asked, answered or not: (base URL, request)."""
    assert set(agent.tokens) <= {"throwaway-token"}
    return [(url, args) for url, method, args in agent.attempts if method == "verify"]


def owner_body(**backup_policy: Any) -> dict[str, Any]:
    body = source(name=OWNER)
    body["spec"]["backup"].update({"verify": True, **backup_policy})
    return body


def completed(name: str = "bk", at: str = "2026-01-02T02:00:00Z") -> dict[str, Any]:
    return {**backup(name), "status": {"phase": "Completed", "completedAt": at, "engine": "mariadb"}}


def token_secret(instance: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{instance}-agent-token", "namespace": NS},
        "data": {"token": b64("throwaway-token")},
    }


async def run(kube: FakeKube, deps: Deps, minutes: float = 0) -> None:
    """One timer pass over the live owner, ``minutes`` after NOW."""
    live = kube.find(CUSTOM[INSTANCE.kind], NS, OWNER)
    assert live is not None
    later = dataclasses.replace(deps, clock=lambda: NOW + datetime.timedelta(minutes=minutes))
    owner = parse_body(INSTANCE, live, InstanceSpec)
    await verify_pass(owner, later, LOG, datetime.timedelta(minutes=30))


def verification(kube: FakeKube, name: str = "bk") -> dict[str, Any]:
    return ((kube.find(BACKUPS, NS, name) or {}).get("status") or {}).get("verification") or {}


def condition(obj: dict[str, Any] | None) -> dict[str, Any]:
    found = [
        c for c in ((obj or {}).get("status") or {}).get("conditions", []) if c["type"] == "BackupVerified"
    ]
    assert len(found) <= 1
    return found[0] if found else {}


def events(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [
        (e["regarding"]["name"], e["type"], e["reason"])
        for (_, kind, _, _), e in kube.objects.items()
        if kind == EVENT.kind
    ]


def make_ready(kube: FakeKube, name: str = "bk-verify") -> None:
    """The throwaway instance restored and became Ready (what its own reconcile would write)."""
    obj = kube.find(INSTANCES, NS, name)
    assert obj is not None
    obj["status"] = {
        "phase": "Ready",
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllMembersReady", "message": "1/1"}],
    }
    kube.put(pod(f"{name}-0", owner=name))
    kube.put(token_secret(name))


async def started_and_ready(kube: FakeKube, deps: Deps) -> None:
    """A source with one Completed backup; the first pass starts its verification; the restore is Ready."""
    seed(kube, owner_body(), completed())
    await run(kube, deps)
    make_ready(kube)


def sample(deps: Deps, name: str, **labels: str) -> float | None:
    """A sample of the metrics injected into ``deps`` (each test has its own registry)."""
    return deps.metrics.registry.get_sample_value(
        name, {"namespace": NS, "kind": "DatabaseInstance", "owner": OWNER, **labels}
    )


async def test_newest_backup_restored_checked_reported_and_cleaned_up(
    kube: FakeKube, vdeps: Deps, agent: FakeAgents
) -> None:
    seed(kube, owner_body(), completed("old", "2026-01-01T00:00:00Z"), completed("bk"))
    before = sample(vdeps, "kubetrove_backup_verifications_total", result="success") or 0.0
    await run(kube, vdeps)
    assert verification(kube) == {
        "phase": "Restoring",
        "instance": "bk-verify",
        "startedAt": "2026-01-02T03:04:05Z",
    }
    assert verification(kube, "old") == {}  # only the newest is verified
    throwaway = kube.find(INSTANCES, NS, "bk-verify")
    assert throwaway is not None and throwaway["spec"]["restoreFrom"] == {"backup": "bk"}
    assert throwaway["metadata"]["ownerReferences"][0]["uid"] == "uid-bk"
    assert ("bk", "Normal", "BackupVerificationStarted") in events(kube)

    await run(kube, vdeps, minutes=5)  # not Ready yet: nothing happens, nothing is created twice
    assert verification(kube)["phase"] == "Restoring" and requests(agent) == []
    assert [c for c in kube.writes() if c[0] == "create" and c[1] == "DatabaseInstance"] == [
        ("create", "DatabaseInstance", "bk-verify")
    ]

    make_ready(kube)
    await run(kube, vdeps, minutes=10)
    ((url, request),) = requests(agent)
    assert url == "http://bk-verify-0:8432"  # the THROWAWAY's agent, never the owner's
    assert request.backup_id == "uid-bk" and request.source.s3 is not None
    assert request.source.s3.secret_access_key == "SK"
    v = verification(kube)
    assert (v["phase"], v["completedAt"], v["tables"]) == ("Verified", "2026-01-02T03:14:05Z", 1)
    assert v["message"] == "1 tables match the backup's row counts (1 also by checksum); CHECK TABLE OK"
    # Timed: started 03:04:05, seen Ready (no transition time recorded) at 03:14:05; backup done 02:00:00.
    assert (v["restoreSeconds"], v["backupAgeSeconds"]) == (600.0, 4445.0) and "maxRestoreSeconds" not in v
    for obj in (kube.find(BACKUPS, NS, "bk"), kube.find(INSTANCES, NS, OWNER)):
        c = condition(obj)
        assert (c["status"], c["reason"]) == ("True", "Verified") and c["message"].startswith(
            "DatabaseBackup bk:"
        )
    assert kube.find(INSTANCES, NS, "bk-verify") is None  # cleaned up
    assert {("bk", "Normal", "BackupVerified"), (OWNER, "Normal", "BackupVerified")} <= set(events(kube))
    assert sample(vdeps, "kubetrove_backup_verifications_total", result="success") == before + 1
    assert sample(vdeps, "kubetrove_backup_verification_ok") == 1
    stamp = datetime.datetime(2026, 1, 2, 3, 14, 5, tzinfo=datetime.UTC).timestamp()
    assert sample(vdeps, "kubetrove_backup_verification_last_success_timestamp_seconds") == stamp
    assert sample(vdeps, "kubetrove_backup_restore_seconds") == 600.0
    assert sample(vdeps, "kubetrove_backup_verified_backup_age_seconds") == 4445.0
    assert sample(vdeps, "kubetrove_backup_restore_target_seconds") is None  # no target set
    live = kube.find(INSTANCES, NS, OWNER)
    assert live is not None and live["status"]["recovery"] == {
        "backup": "bk",
        "verified": True,
        "completedAt": "2026-01-02T03:14:05Z",
        "restoreSeconds": 600.0,
        "backupAgeSeconds": 4445.0,
    }

    writes = len(kube.writes())
    await run(kube, vdeps, minutes=15)  # verified: nothing more to do, nothing rewritten
    assert len(kube.writes()) == writes and len(requests(agent)) == 1


async def test_counts_that_differ_fail_naming_the_table(
    kube: FakeKube, vdeps: Deps, agent: FakeAgents
) -> None:
    await started_and_ready(kube, vdeps)
    agent.verify_reply = REPLY.model_copy(
        update={"observed": {"shop.items": TableStats(rows=499, checksum="111")}}
    )
    await run(kube, vdeps, minutes=1)
    v = verification(kube)
    assert (v["phase"], v["reason"]) == ("Failed", "CountsDiffer")
    assert v["message"] == "shop.items: 500 rows at backup time, 499 restored"
    c = condition(kube.find(INSTANCES, NS, OWNER))
    assert (c["status"], c["reason"]) == ("False", "CountsDiffer") and "shop.items" in c["message"]
    assert (OWNER, "Warning", "BackupVerificationFailed") in events(kube)
    assert sample(vdeps, "kubetrove_backup_verification_ok") == 0
    assert kube.find(INSTANCES, NS, "bk-verify") is None


async def test_a_restore_that_never_becomes_ready_times_out_and_is_cleaned_up(
    kube: FakeKube, vdeps: Deps
) -> None:
    seed(kube, owner_body(), completed())
    await run(kube, vdeps)
    await run(kube, vdeps, minutes=29)
    assert verification(kube)["phase"] == "Restoring"
    await run(kube, vdeps, minutes=31)
    v = verification(kube)
    assert (v["phase"], v["reason"]) == ("Failed", "RestoreTimeout")
    assert v["message"].startswith("bk-verify not Ready after 1800s")
    assert kube.find(INSTANCES, NS, "bk-verify") is None


async def test_a_refused_restore_fails_at_once(kube: FakeKube, vdeps: Deps) -> None:
    seed(kube, owner_body(), completed())
    await run(kube, vdeps)
    obj = kube.find(INSTANCES, NS, "bk-verify")
    assert obj is not None
    message = "spec.restoreFrom.backup: DatabaseBackup bk is a logical backup"
    obj["status"] = {
        "phase": "Failed",
        "conditions": [{"type": "Failed", "status": "True", "reason": "Invalid", "message": message}],
    }
    await run(kube, vdeps, minutes=1)
    v = verification(kube)
    assert (v["phase"], v["reason"], v["message"]) == ("Failed", "RestoreFailed", message)


async def test_operator_restart_mid_check_asks_again_and_agent_refusal_fails(
    kube: FakeKube, vdeps: Deps, agent: FakeAgents
) -> None:
    await started_and_ready(kube, vdeps)
    agent.refuse("verify", 503, "engine_unavailable", "starting")
    await run(kube, vdeps, minutes=1)  # transient: the state says Checking, the next pass asks again
    assert verification(kube)["phase"] == "Checking"
    agent.refuse("verify", 404, "not_found", "no complete backup 'uid-bk'")
    await run(kube, vdeps, minutes=2)
    v = verification(kube)
    assert (v["phase"], v["reason"]) == ("Failed", "AgentError") and "no complete backup" in v["message"]
    assert len(requests(agent)) == 2


async def test_a_next_backup_is_verified_after_the_first(kube: FakeKube, vdeps: Deps) -> None:
    await started_and_ready(kube, vdeps)
    await run(kube, vdeps, minutes=1)
    kube.put(completed("bk2", "2026-01-02T04:00:00Z"))
    await run(kube, vdeps, minutes=2)
    assert verification(kube, "bk2")["phase"] == "Restoring"
    assert kube.find(INSTANCES, NS, "bk2-verify") is not None
    assert condition(kube.find(INSTANCES, NS, OWNER))["message"].startswith(
        "DatabaseBackup bk:"
    )  # until bk2 ends


async def test_owner_condition_is_reasserted_when_the_owners_reconcile_dropped_it(
    kube: FakeKube, vdeps: Deps
) -> None:
    await started_and_ready(kube, vdeps)
    await run(kube, vdeps, minutes=1)
    owner = kube.find(INSTANCES, NS, OWNER)
    assert owner is not None
    kept = condition(owner)
    owner["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "AllMembersReady"}]
    await run(kube, vdeps, minutes=2)
    owner = kube.find(INSTANCES, NS, OWNER)
    assert owner is not None
    assert condition(owner) == {**kept, "lastTransitionTime": "2026-01-02T03:06:05Z"}
    assert [c["type"] for c in owner["status"]["conditions"]] == ["Ready", "BackupVerified"]  # others kept


async def test_leftover_throwaway_of_an_ended_verification_is_deleted(kube: FakeKube, vdeps: Deps) -> None:
    seed(kube, owner_body(), completed())
    await run(kube, vdeps)
    live = kube.find(BACKUPS, NS, "bk")
    assert live is not None  # the operator died after writing the verdict, before deleting the instance
    live["status"]["verification"].update(
        {"phase": "Failed", "completedAt": "2026-01-02T03:05:00Z", "message": "x"}
    )
    await run(kube, vdeps, minutes=1)
    assert kube.find(INSTANCES, NS, "bk-verify") is None


async def test_without_verify_nothing_happens(kube: FakeKube, vdeps: Deps) -> None:
    seed(kube, owner_body(verify=False), completed())
    await run(kube, vdeps)
    assert verification(kube) == {} and kube.find(INSTANCES, NS, "bk-verify") is None


async def test_a_restore_over_the_target_time_fails_though_the_data_matched(
    kube: FakeKube, vdeps: Deps, agent: FakeAgents
) -> None:
    seed(kube, owner_body(verifyMaxRestoreSeconds=300), completed())
    await run(kube, vdeps)
    assert verification(kube)["maxRestoreSeconds"] == 300
    make_ready(kube)
    throwaway = kube.find(INSTANCES, NS, "bk-verify")
    assert throwaway is not None  # became Ready 4 min after the start: the pass at 4.5 min measures 240 s
    throwaway["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-02T03:08:05Z"
    await run(kube, vdeps, minutes=4.5)
    v = verification(kube)
    assert (v["phase"], v["restoreSeconds"]) == ("Verified", 240.0)
    assert sample(vdeps, "kubetrove_backup_restore_target_seconds") == 300

    # The next backup restores in 420 s: the data matches, the time does not.
    kube.put(completed("bk2", "2026-01-02T03:10:00Z"))
    await run(kube, vdeps, minutes=10)
    make_ready(kube, "bk2-verify")
    await run(kube, vdeps, minutes=17)
    v = verification(kube, "bk2")
    assert (v["phase"], v["reason"], v["restoreSeconds"]) == ("Failed", "RestoreTooSlow", 420.0)
    assert v["message"].startswith(
        "the restore took 420s, over the target of 300s (spec.backup.verifyMaxRestoreSeconds); the data"
        " matched: 1 tables match"
    )
    c = condition(kube.find(INSTANCES, NS, OWNER))
    assert (c["status"], c["reason"]) == ("False", "RestoreTooSlow")
    assert c["message"].startswith("DatabaseBackup bk2: the restore took 420s")
    assert (OWNER, "Warning", "BackupVerificationFailed") in events(kube)
    assert sample(vdeps, "kubetrove_backup_verification_ok") == 0
    assert sample(vdeps, "kubetrove_backup_restore_seconds") == 420.0
    owner = kube.find(INSTANCES, NS, OWNER)
    assert owner is not None
    recovery = owner["status"]["recovery"]
    assert (recovery["backup"], recovery["verified"], recovery["restoreSeconds"]) == ("bk2", False, 420.0)
    assert recovery["maxRestoreSeconds"] == 300 and kube.find(INSTANCES, NS, "bk2-verify") is None


async def test_a_restore_still_not_ready_past_the_target_fails_without_waiting_for_the_timeout(
    kube: FakeKube, vdeps: Deps
) -> None:
    seed(kube, owner_body(verifyMaxRestoreSeconds=600), completed())
    await run(kube, vdeps)
    await run(kube, vdeps, minutes=9)
    assert verification(kube)["phase"] == "Restoring"
    await run(kube, vdeps, minutes=11)
    v = verification(kube)
    assert (v["phase"], v["reason"]) == ("Failed", "RestoreTooSlow") and "restoreSeconds" not in v
    assert v["message"].startswith("bk-verify not Ready after 660s, over the target restore time of 600s")
    owner = kube.find(INSTANCES, NS, OWNER)
    assert owner is not None and "restoreSeconds" not in owner["status"]["recovery"]
    assert sample(vdeps, "kubetrove_backup_restore_seconds") is None
    assert kube.find(INSTANCES, NS, "bk-verify") is None
