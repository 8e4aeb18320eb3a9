"""The pure rules of restore verification, on literal inputs: names, choice, steps, verdicts."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from kubetrove.agent.protocol import TableCheck, TableStats, VerifyReply
from kubetrove.api.backup import BackupVerification, VerificationPhase
from kubetrove.api.common import Condition, ConditionStatus
from kubetrove.api.resources import CLUSTER, INSTANCE
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.reconcile.backup import restore
from kubetrove.reconcile.backup import verify_plan as plan
from kubetrove.reconcile.backup.verify_plan import Reason, Step
from tests.unit.reconcile.backup.fakes import backup
from tests.unit.reconcile.conftest import parsed

T0 = datetime.datetime(2026, 1, 2, 3, 0, 0, tzinfo=datetime.UTC)
LIMIT = datetime.timedelta(minutes=30)


def done(
    name: str, completed: str, verification: dict[str, Any] | None = None, **status: Any
) -> dict[str, Any]:
    """A DatabaseBackup of "db" with a status."""
    st = {"phase": "Completed", "completedAt": completed, **status}
    if verification is not None:
        st["verification"] = verification
    return {**backup(name), "status": st}


def restoring(**changes: Any) -> BackupVerification:
    return BackupVerification.model_validate(
        {"phase": "Restoring", "instance": "bk-verify", "startedAt": "2026-01-02T03:00:00Z", **changes}
    )


def instance(phase: str | None = None, **conditions: tuple[str, str]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [
            {"type": k, "status": s, "reason": "R", "message": m} for k, (s, m) in conditions.items()
        ]
    }
    if phase:
        status["phase"] = phase
    return {"metadata": {"name": "bk-verify", "namespace": "ns"}, "status": status}


def restore_pod(restarts: int, message: str = "checksum mismatch in backup.xbstream") -> dict[str, Any]:
    terminated = {"exitCode": 1, "reason": "Error", "message": message}
    return {
        "metadata": {"name": "bk-verify-0"},
        "status": {
            "initContainerStatuses": [
                {"name": "restore", "restartCount": restarts, "lastState": {"terminated": terminated}}
            ]
        },
    }


# -- names ---------------------------------------------------------------------------------------------


def test_throwaway_name_is_the_backup_name_plus_verify() -> None:
    assert plan.throwaway_name("orders-202601020300") == "orders-202601020300-verify"


@pytest.mark.parametrize("name", ["a" * 60, "nightly.orders.2026", "x" * 39])
def test_throwaway_name_is_a_short_dns_label_and_stable(name: str) -> None:
    got = plan.throwaway_name(name)
    assert len(got) <= plan.MAX_NAME and got.endswith("-verify")
    assert all(c.isalnum() or c == "-" for c in got) and got[0].isalnum()
    assert got == plan.throwaway_name(name)  # deterministic: a restarted operator finds it
    assert got != plan.throwaway_name(name + "b")


# -- which backup ------------------------------------------------------------------------------------


def test_the_newest_completed_backup_is_started() -> None:
    old = done("old", "2026-01-01T00:00:00Z")
    new = done("new", "2026-01-02T00:00:00Z")
    running = {**backup("running"), "status": {"phase": "Running"}}
    assert plan.to_start([old, new, running]) is new


def test_nothing_starts_when_the_newest_is_verified_even_if_an_older_one_is_not() -> None:
    old = done("old", "2026-01-01T00:00:00Z")
    new = done("new", "2026-01-02T00:00:00Z", {"phase": "Verified", "instance": "x", "startedAt": "t"})
    assert plan.to_start([old, new]) is None
    assert plan.to_start([]) is None


def test_backups_of_other_sources_are_not_the_owners() -> None:
    mine, theirs = backup("a"), backup("b", source_name="other")
    assert plan.of_owner([mine, theirs], parsed(INSTANCE).ref) == [mine]


def test_in_flight_and_latest_final() -> None:
    a = done(
        "a",
        "1",
        {"phase": "Failed", "instance": "a-verify", "startedAt": "t", "completedAt": "2026-01-01T00:00:00Z"},
    )
    b = done(
        "b",
        "2",
        {
            "phase": "Verified",
            "instance": "b-verify",
            "startedAt": "t",
            "completedAt": "2026-01-02T00:00:00Z",
        },
    )
    c = done("c", "3", {"phase": "Checking", "instance": "c-verify", "startedAt": "t"})
    assert plan.in_flight([a, b, c]) == [c]
    latest = plan.latest_final([a, b, c])
    assert latest is not None and latest[0] == "b" and latest[1].phase is VerificationPhase.VERIFIED
    assert plan.latest_success([a, b, c]) == datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    assert plan.latest_final([c]) is None and plan.latest_success([a]) is None


# -- the throwaway instance --------------------------------------------------------------------------


def test_throwaway_instance_restores_the_backup_owned_by_it() -> None:
    owner = parsed(INSTANCE, parameters={"max_connections": "50"}, storage={"size": "5Gi"})
    obj = plan.throwaway_instance(owner, backup("bk"))
    assert obj["metadata"]["name"] == "bk-verify"
    assert obj["metadata"]["labels"][plan.VERIFIES] == "bk"
    assert obj["metadata"]["labels"][plan.VERIFY_OWNER] == "db"
    (ref,) = obj["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
        "DatabaseBackup",
        "bk",
        "uid-bk",
        True,
    )
    spec = obj["spec"]
    assert spec["restoreFrom"] == {"backup": "bk"}
    assert spec["datastore"] == {"type": "mariadb", "version": "10.11"}
    assert spec["storage"]["size"] == "5Gi" and spec["parameters"] == {"max_connections": "50"}
    assert spec["deletionPolicy"] == {"volumes": "Delete", "backups": "Delete"}
    assert "limits" not in spec["resources"] and "backup" not in spec  # no recursion: it never verifies
    INSTANCE.spec.model_validate(spec)  # what the API server's schema would accept


CASSANDRA = {"type": "cassandra", "version": "5.0"}


def ring_backup(nodes: int = 3) -> dict[str, Any]:
    """A Completed backup of a ring of ``nodes``: one stored snapshot per node (reconcile/backup/ring.py)."""
    listed = [
        {"pod": f"db-{i}", "id": f"uid-bk-{i}", "phase": "Completed", "hostId": f"h{i}", "tokens": 16}
        for i in range(nodes)
    ]
    return done("bk", "2026-01-02T02:00:00Z", engine="cassandra", engineVersion="5.0.9", nodes=listed)


def test_a_rings_backup_is_restored_into_a_ring_of_as_many_nodes_the_restore_accepts() -> None:
    owner = parsed(CLUSTER, datastore=CASSANDRA, replicas=3, parameters={"ring_delay": "5000"})
    bk = ring_backup()
    obj = plan.throwaway_instance(owner, bk)
    assert (obj["kind"], obj["metadata"]["name"]) == ("DatabaseCluster", "bk-verify")
    assert plan.throwaway_kind(bk) is CLUSTER
    assert obj["spec"]["replicas"] == 3 and obj["spec"]["restoreFrom"] == {"backup": "bk"}
    assert obj["spec"]["parameters"] == {"ring_delay": "5000"}
    spec = ClusterSpec.model_validate(obj["spec"])
    assert restore.check_backup("bk", bk, spec) == []  # the shape the ring's restore takes
    # The former throwaway, a DatabaseInstance, is refused: every verification of a ring failed.
    (refused,) = restore.check_backup(
        "bk", bk, InstanceSpec.model_validate({k: v for k, v in obj["spec"].items() if k != "replicas"})
    )
    assert "restore it into a DatabaseCluster with replicas: 3" in refused.message
    # Each member is asked about the snapshot it restored, in member order.
    assert plan.member_backup_ids(bk) == ["uid-bk-0", "uid-bk-1", "uid-bk-2"]


def test_any_other_backup_is_restored_into_an_instance_asked_about_the_backup_itself() -> None:
    bk = done("bk", "2026-01-02T02:00:00Z", engine="mariadb")
    obj = plan.throwaway_instance(parsed(CLUSTER, replicas=3), bk)  # a replicated cluster's backup too
    assert obj["kind"] == "DatabaseInstance" and "replicas" not in obj["spec"]
    assert plan.throwaway_kind(bk) is INSTANCE and plan.member_backup_ids(bk) == ["uid-bk"]


# -- steps -------------------------------------------------------------------------------------------


def test_missing_instance_is_created_and_a_young_one_waited_for() -> None:
    assert plan.next_step(restoring(), None, [], T0, LIMIT) == (Step.CREATE, None)
    young = instance("Provisioning", Ready=("False", "0/1 members ready"))
    assert plan.next_step(restoring(), young, [], T0 + LIMIT, LIMIT) == (Step.WAIT, None)


def test_ready_instance_is_checked() -> None:
    ready = instance("Ready", Ready=("True", "1/1 members ready"))
    assert plan.next_step(restoring(), ready, [], T0, LIMIT) == (Step.CHECK, None)


def test_a_refused_restore_fails_with_the_instances_reason() -> None:
    refused = instance(
        "Failed", Failed=("True", "spec.restoreFrom.backup: DatabaseBackup bk is a logical backup")
    )
    step, outcome = plan.next_step(restoring(), refused, [], T0, LIMIT)
    assert step is Step.FAIL and outcome is not None
    assert outcome.reason == Reason.RESTORE_FAILED and "logical backup" in outcome.message


def test_a_crash_looping_restore_container_fails_after_three_attempts() -> None:
    booting = instance("Provisioning", Ready=("False", "0/1"))
    assert plan.next_step(restoring(), booting, [restore_pod(2)], T0, LIMIT)[0] is Step.WAIT
    step, outcome = plan.next_step(restoring(), booting, [restore_pod(3)], T0, LIMIT)
    assert step is Step.FAIL and outcome is not None and outcome.reason == Reason.RESTORE_FAILED
    assert outcome.message == (
        "the restore init container of pod bk-verify-0 failed 3 times (Error, exit code 1):"
        " checksum mismatch in backup.xbstream"
    )
    silent = plan.restore_failure([restore_pod(4, message="")])
    assert silent == "the restore init container of pod bk-verify-0 failed 4 times (Error, exit code 1)"


def _loaded_pod() -> dict[str, Any]:
    done = {"name": "restore", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}
    return {"metadata": {"name": "bk-verify-0"}, "status": {"initContainerStatuses": [done]}}


def test_a_logical_load_the_agent_failed_fails_at_once() -> None:
    failed = instance("Provisioning", Restored=("False", "bk-verify-0: mariadb exited with 1"))
    failed["status"]["conditions"][0]["reason"] = "RestoreFailed"
    step, outcome = plan.next_step(restoring(), failed, [_loaded_pod()], T0, LIMIT)
    assert step is Step.FAIL and outcome is not None and outcome.reason == Reason.RESTORE_FAILED
    assert outcome.message == "bk-verify-0: mariadb exited with 1"
    # The same condition while the init container has not exited 0 is the kubelet's to retry.
    assert plan.next_step(restoring(), failed, [restore_pod(1)], T0, LIMIT)[0] is Step.WAIT
    loading = instance("Provisioning", Restored=("False", "bk-verify-0 (agent restoring)"))
    loading["status"]["conditions"][0]["reason"] = "Restoring"
    assert plan.next_step(restoring(), loading, [_loaded_pod()], T0, LIMIT)[0] is Step.WAIT


def test_not_ready_in_time_fails_with_the_last_known_state() -> None:
    stuck = instance("Provisioning", Ready=("False", "0/1 members ready"))
    late = T0 + LIMIT + datetime.timedelta(seconds=1)
    step, outcome = plan.next_step(restoring(), stuck, [], late, LIMIT)
    assert step is Step.FAIL and outcome is not None and outcome.reason == Reason.RESTORE_TIMEOUT
    assert outcome.message == "bk-verify not Ready after 1800s (phase Provisioning: 0/1 members ready)"
    assert plan.next_step(restoring(), None, [], late, LIMIT)[1].message.endswith("(never created)")  # type: ignore[union-attr]


def test_restore_time_is_measured_to_the_ready_transition() -> None:
    ready = instance("Ready", Ready=("True", "1/1"))
    seen = T0 + datetime.timedelta(minutes=5)
    assert plan.restore_seconds(restoring(), ready, seen) == 300.0  # no transition time: when seen
    ready["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-02T03:02:10Z"
    assert plan.restore_seconds(restoring(), ready, seen) == 130.0
    ready["status"]["conditions"][0]["lastTransitionTime"] = "2026-01-02T02:59:00Z"  # before the start
    assert plan.restore_seconds(restoring(), ready, seen) == 300.0


def test_a_target_turns_only_a_matching_slow_restore_into_restore_too_slow() -> None:
    good = plan.Outcome(True, "Verified", "2 tables match", 2)
    assert plan.within_target(good, 100.0, None) is good
    assert plan.within_target(good, 100.0, 100) is good
    slow = plan.within_target(good, 100.5, 100)
    assert (slow.ok, slow.reason, slow.tables) == (False, Reason.RESTORE_TOO_SLOW, 2)
    assert slow.message.endswith("the data matched: 2 tables match")
    bad = plan.Outcome(False, Reason.COUNTS_DIFFER, "x")
    assert plan.within_target(bad, 900.0, 100) is bad  # the data's failure is the worse news


def test_not_ready_past_the_target_fails_before_the_timeout() -> None:
    stuck = instance("Provisioning", Ready=("False", "0/1 members ready"))
    at = T0 + datetime.timedelta(seconds=121)
    assert plan.next_step(restoring(), stuck, [], at, LIMIT, target=121)[0] is Step.WAIT
    step, outcome = plan.next_step(restoring(), stuck, [], at, LIMIT, target=120)
    assert step is Step.FAIL and outcome is not None and outcome.reason == Reason.RESTORE_TOO_SLOW
    assert outcome.message == (
        "bk-verify not Ready after 121s, over the target restore time of 120s"
        " (spec.backup.verifyMaxRestoreSeconds) (phase Provisioning: 0/1 members ready)"
    )


def test_backup_age_is_taken_when_the_verification_ends() -> None:
    ended = plan.finished(restoring(), plan.Outcome(True, "Verified", "ok"), T0, "2026-01-01T03:00:00Z")
    assert ended.backup_age_seconds == 86400.0
    assert plan.finished(restoring(), plan.Outcome(True, "Verified", "ok"), T0).backup_age_seconds is None


# -- verdicts ----------------------------------------------------------------------------------------


def reply(
    recorded: dict[str, TableStats], observed: dict[str, TableStats], checks: list[TableCheck] | None = None
) -> VerifyReply:
    return VerifyReply(
        engine="mariadb", check_tool="CHECK TABLE", recorded=recorded, observed=observed, checks=checks or []
    )


ITEMS = {"shop.items": TableStats(rows=500, checksum="111"), "crm.people": TableStats(rows=9, checksum=None)}


def test_identical_stats_and_a_clean_check_verify() -> None:
    checks = [TableCheck(table="shop.items", ok=True), TableCheck(table="crm.people", ok=True)]
    extra = {**ITEMS, "shop.new": TableStats(rows=1)}  # tables the restore has in addition do not matter
    outcome = plan.compare(reply(ITEMS, extra, checks))
    assert outcome.ok and outcome.reason == "Verified" and outcome.tables == 2
    assert outcome.message == "2 tables match the backup's row counts (1 also by checksum); CHECK TABLE OK"


def test_a_table_written_during_the_backup_must_be_restored_but_its_rows_are_not_compared() -> None:
    recorded = {**ITEMS, "shop.orders": TableStats(rows=4275, checksum="9", changed=True)}
    observed = {**ITEMS, "shop.orders": TableStats(rows=4270, checksum="8")}
    outcome = plan.compare(reply(recorded, observed))
    assert outcome.ok and outcome.tables == 3
    assert outcome.message == (
        "2 tables match the backup's row counts (1 also by checksum); CHECK TABLE OK;"
        " 1 written while the backup ran: restored, rows not compared"
    )
    outcome = plan.compare(reply(recorded, ITEMS))
    assert (outcome.reason, outcome.message) == (Reason.TABLE_MISSING, "missing after restore: shop.orders")


def test_a_failed_check_names_the_table() -> None:
    checks = [TableCheck(table="shop.items", ok=False, message="Index for table is corrupt")]
    outcome = plan.compare(reply(ITEMS, ITEMS, checks))
    assert (outcome.ok, outcome.reason) == (False, Reason.CHECK_FAILED)
    assert outcome.message == "CHECK TABLE reports shop.items (Index for table is corrupt)"


def test_counts_that_differ_name_the_table_and_both_counts() -> None:
    observed = {**ITEMS, "shop.items": TableStats(rows=499, checksum="111")}
    outcome = plan.compare(reply(ITEMS, observed))
    assert (outcome.ok, outcome.reason) == (False, Reason.COUNTS_DIFFER)
    assert outcome.message == "shop.items: 500 rows at backup time, 499 restored"


def test_a_missing_table_comes_before_counts() -> None:
    observed = {"shop.items": TableStats(rows=1, checksum="111")}
    outcome = plan.compare(reply(ITEMS, observed))
    assert (outcome.reason, outcome.message) == (Reason.TABLE_MISSING, "missing after restore: crm.people")


def test_checksums_compare_only_where_both_sides_have_one() -> None:
    changed = {**ITEMS, "shop.items": TableStats(rows=500, checksum="222")}
    outcome = plan.compare(reply(ITEMS, changed))
    assert (outcome.reason, outcome.message) == (
        Reason.CHECKSUM_DIFFERS,
        "shop.items: checksum 111 at backup time, 222 restored",
    )
    unsummed = {**ITEMS, "shop.items": TableStats(rows=500, checksum=None)}
    assert plan.compare(reply(ITEMS, unsummed)).ok


def test_many_bad_tables_are_counted_not_all_listed() -> None:
    recorded = {f"db.t{i}": TableStats(rows=1) for i in range(5)}
    outcome = plan.compare(reply(recorded, {}))
    assert outcome.message == "missing after restore: db.t0, db.t1, db.t2 and 2 more"


def test_an_engine_without_stats_or_check_verifies_on_a_successful_restore() -> None:
    outcome = plan.compare(VerifyReply(engine="cassandra", check_tool="none"))
    assert outcome.ok and outcome.message.endswith("no consistency check for this engine")


# -- the condition -----------------------------------------------------------------------------------


def test_condition_keeps_its_transition_time_while_the_status_holds() -> None:
    ok = plan.finished(restoring(), plan.Outcome(True, "Verified", "2 tables match", 2), T0)
    assert (ok.phase, ok.completed_at, ok.reason, ok.tables) == (
        VerificationPhase.VERIFIED,
        "2026-01-02T03:00:00Z",
        None,
        2,
    )
    other = Condition(type="Ready", status=ConditionStatus.TRUE, reason="AllMembersReady")
    first = plan.verified_condition("bk", ok, 1, [other], "2026-01-02T03:00:00Z")
    assert first[0] == other
    assert (first[1].type, first[1].status, first[1].reason) == (
        "BackupVerified",
        ConditionStatus.TRUE,
        "Verified",
    )
    assert first[1].message == "DatabaseBackup bk: 2 tables match"
    again = plan.verified_condition("bk2", ok, 1, first, "2026-01-03T00:00:00Z")
    assert again[1].last_transition_time == "2026-01-02T03:00:00Z" and again[1].message.startswith(
        "DatabaseBackup bk2"
    )
    bad = plan.finished(restoring(), plan.Outcome(False, Reason.COUNTS_DIFFER, "shop.items: ..."), T0)
    flipped = plan.verified_condition("bk3", bad, 1, again, "2026-01-04T00:00:00Z")
    assert (flipped[1].status, flipped[1].reason, flipped[1].last_transition_time) == (
        ConditionStatus.FALSE,
        "CountsDiffer",
        "2026-01-04T00:00:00Z",
    )


# -- a ring: every member's reply -----------------------------------------------------------------------

RING = {"ks.t": TableStats(rows=400), "ks.u": TableStats(rows=30)}


def ring_reply(observed: dict[str, TableStats], checks: list[TableCheck] | None = None) -> VerifyReply:
    ok = [TableCheck(table=t, ok=True) for t in RING]
    return VerifyReply(
        engine="cassandra",
        check_tool="nodetool verify",
        recorded=RING,
        observed=observed,
        checks=checks or ok,
    )


def test_a_ring_verifies_when_every_node_matches_and_says_so() -> None:
    outcome = plan.compare_members([(f"v-{i}", ring_reply(RING)) for i in range(3)])
    assert (outcome.ok, outcome.reason, outcome.tables) == (True, "Verified", 2)
    assert outcome.message == (
        "2 tables match the backup's row counts (0 also by checksum); nodetool verify OK;"
        " on each of the 3 nodes (v-0, v-1, v-2)"
    )


def test_one_member_alone_is_compared_as_before() -> None:
    assert plan.compare_members([("v-0", ring_reply(RING))]) == plan.compare(ring_reply(RING))


def test_a_node_whose_data_is_missing_fails_the_ring_naming_it() -> None:
    # Node 2's snapshot lacked its ranges of ks.t (RF 1): the ring-wide count misses them.
    short = {**RING, "ks.t": TableStats(rows=262)}
    outcome = plan.compare_members(
        [("v-0", ring_reply(RING)), ("v-1", ring_reply(RING)), ("v-2", ring_reply(short))]
    )
    assert (outcome.ok, outcome.reason) == (False, Reason.COUNTS_DIFFER)
    assert outcome.message == "v-2: ks.t: 400 rows at backup time, 262 restored"


def test_a_check_failing_on_one_node_only_fails_the_ring() -> None:
    bad = [TableCheck(table="ks.*", ok=False, message="nodetool verify failed (2): Corrupted SSTable")]
    outcome = plan.compare_members([("v-0", ring_reply(RING)), ("v-1", ring_reply(RING, bad))])
    assert (outcome.ok, outcome.reason) == (False, Reason.CHECK_FAILED)
    assert outcome.message.startswith("v-1: nodetool verify reports ks.* (nodetool verify failed (2)")
