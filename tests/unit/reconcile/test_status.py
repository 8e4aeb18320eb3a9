"""Status transitions computed from observed StatefulSets (pure)."""

from __future__ import annotations

import dataclasses
import datetime

from kubetrove.api.status import Phase, ResourceStatus
from kubetrove.reconcile import status as st
from kubetrove.reconcile.applied import APPLIED_GENERATION
from kubetrove.reconcile.causes import MembersReport, Reason
from tests.unit.reconcile.conftest import NOW

LATER = NOW + datetime.timedelta(minutes=5)


def sts(ready: int, updated: int = 3, replicas: int = 3, gen: int = 1, seen: int = 1, applied: int = 1,
        current: str = "r1", update: str = "r1", strategy: str = "RollingUpdate") -> dict:  # fmt: skip
    return {
        "metadata": {"name": "db", "generation": gen, "annotations": {APPLIED_GENERATION: str(applied)}},
        "spec": {"replicas": replicas, "updateStrategy": {"type": strategy}},
        "status": {
            "observedGeneration": seen,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "currentRevision": current,
            "updateRevision": update,
        },
    }


def observed(statefulset: dict | None, generation: int = 1, replicas: int = 3) -> st.Observed:
    svc = {"metadata": {"name": "db-rw"}, "spec": {"ports": [{"port": 3306}]}}
    return st.Observed(generation, replicas, "10.11", "db-credentials", statefulset, svc, None, "ns")


def cond(status: ResourceStatus, kind: str) -> tuple[str, str]:
    c = next(c for c in status.conditions if c.type == kind)
    return c.status.value, c.reason


def test_no_statefulset_is_provisioning() -> None:
    s = st.compute(observed(None), None, NOW)
    assert s.phase is Phase.PROVISIONING
    assert cond(s, "Progressing")[0] == "True" and cond(s, "Ready")[0] == "False"


def test_all_members_ready_is_ready() -> None:
    s = st.compute(observed(sts(ready=3)), None, NOW)
    assert s.phase is Phase.READY and cond(s, "Ready") == ("True", "AllMembersReady")
    assert s.observed_generation == 1 and s.version == "10.11"
    assert s.endpoints is not None and s.endpoints.read_write == "db-rw.ns.svc:3306"


def test_ready_needs_the_current_generation_applied() -> None:
    s = st.compute(observed(sts(ready=3, applied=1), generation=2), None, NOW)
    assert s.phase is Phase.PROVISIONING and cond(s, "Ready")[0] == "False"


def test_not_ready_before_first_ready_is_provisioning_not_degraded() -> None:
    s = st.compute(observed(sts(ready=1)), None, NOW)
    assert s.phase is Phase.PROVISIONING and cond(s, "Degraded")[0] == "False"


def test_member_lost_after_ready_is_degraded() -> None:
    ready = st.compute(observed(sts(ready=3)), None, NOW)
    s = st.compute(observed(sts(ready=2)), ready, LATER)
    assert s.phase is Phase.DEGRADED and cond(s, "Degraded") == ("True", "MembersNotReady")
    assert "2/3" in next(c.message for c in s.conditions if c.type == "Degraded")


def test_rolling_update_is_progressing_not_degraded() -> None:
    ready = st.compute(observed(sts(ready=3)), None, NOW)
    s = st.compute(observed(sts(ready=2, updated=1, gen=2, seen=2, update="r2")), ready, LATER)
    assert s.phase is Phase.UPDATING
    assert cond(s, "Progressing")[0] == "True" and cond(s, "Degraded")[0] == "False"
    assert s.version == ready.version


def test_controller_lagging_behind_is_progressing() -> None:
    s = st.compute(observed(sts(ready=3, gen=2, seen=1)), None, NOW)
    assert cond(s, "Progressing")[0] == "True" and s.phase is not Phase.READY


def test_on_delete_roll_finished_with_revisions_apart_is_ready() -> None:
    s = st.compute(observed(sts(ready=3, current="r1", update="r2", strategy="OnDelete")), None, NOW)
    assert s.phase is Phase.READY


def test_transition_times_change_only_on_transitions() -> None:
    first = st.compute(observed(sts(ready=3)), None, NOW)
    same = st.compute(observed(sts(ready=3)), first, LATER)
    assert same == first
    degraded = st.compute(observed(sts(ready=2)), first, LATER)
    stamps = {c.type: c.last_transition_time for c in degraded.conditions}
    assert stamps["Ready"] == "2026-01-02T03:09:05Z" and stamps["Failed"] == "2026-01-02T03:04:05Z"


def test_invalid_keeps_other_fields() -> None:
    ready = st.compute(observed(sts(ready=3)), None, NOW)
    s = st.invalid("spec.x: bad", 2, ready, LATER)
    assert s.phase is Phase.FAILED and s.observed_generation == 2
    assert cond(s, "Failed") == ("True", "Invalid") and cond(s, "Ready") == ("False", "Invalid")
    assert s.endpoints == ready.endpoints and cond(s, "Degraded")[0] == "False"


def test_patch_leaves_members_to_clustering() -> None:
    patch = st.as_patch(st.compute(observed(sts(ready=3)), None, NOW))
    assert "members" not in patch and "primary" not in patch
    assert patch["phase"] == "Ready"


PULL = (
    Reason.IMAGE_PULL_FAILED,
    "db-0: container engine: image x:1 cannot be pulled (ErrImagePull: refused)",
)


def report(cause: tuple[Reason, str] | None = PULL, stalled: tuple[str, ...] = ()) -> MembersReport:
    return MembersReport(cause, stalled, 600)


def with_members(statefulset: dict, members: MembersReport | None) -> st.Observed:
    return dataclasses.replace(observed(statefulset), members=members)


def test_members_not_ready_before_the_first_ready_are_progressing_not_settled() -> None:
    s = st.compute(with_members(sts(ready=0), report(cause=None)), None, NOW)  # issue 23: it said "Settled"
    assert s.phase is Phase.PROVISIONING and cond(s, "Progressing") == ("True", "MembersStarting")
    assert cond(s, "Ready") == ("False", "MembersNotReady") and cond(s, "Degraded")[0] == "False"


def test_the_cause_is_the_ready_reason_at_once() -> None:
    s = st.compute(with_members(sts(ready=0), report()), None, NOW)
    assert cond(s, "Ready") == ("False", "ImagePullFailed") and cond(s, "Progressing")[0] == "True"
    ready = next(c for c in s.conditions if c.type == "Ready")
    assert ready.message == f"0/3 members ready; {PULL[1]}"
    rolling = st.compute(with_members(sts(ready=0, updated=1), report()), None, NOW)
    assert cond(rolling, "Ready") == ("False", "ImagePullFailed")
    assert cond(rolling, "Progressing") == ("True", "Rolling")


def test_past_the_deadline_it_is_degraded_with_the_cause_and_no_longer_progressing() -> None:
    first = st.compute(with_members(sts(ready=0), report()), None, NOW)
    s = st.compute(with_members(sts(ready=0), report(stalled=("db-0",))), first, LATER)
    assert s.phase is Phase.DEGRADED
    assert cond(s, "Degraded") == ("True", "ImagePullFailed")
    assert next(c.message for c in s.conditions if c.type == "Degraded") == PULL[1]
    assert cond(s, "Progressing") == ("False", "ProgressDeadlineExceeded")
    progressing = next(c for c in s.conditions if c.type == "Progressing")
    assert progressing.message == "db-0 not ready for more than 600 s (spec.progressDeadlineSeconds)"
    # A bad image rolled out to a Ready cluster: the roll never finishes, the deadline stops the wait.
    ready = st.compute(observed(sts(ready=3)), None, NOW)
    stuck = st.compute(
        with_members(sts(ready=2, updated=1, update="r2"), report(stalled=("db-2",))), ready, LATER
    )
    assert stuck.phase is Phase.DEGRADED and cond(stuck, "Progressing") == (
        "False",
        "ProgressDeadlineExceeded",
    )


def test_a_member_lost_after_ready_is_degraded_with_its_cause() -> None:
    ready = st.compute(observed(sts(ready=3)), None, NOW)
    crash = (Reason.CRASH_LOOP, "db-1: container engine exited (exit code 1), restarted 2 times")
    s = st.compute(with_members(sts(ready=2), report(cause=crash)), ready, LATER)
    assert s.phase is Phase.DEGRADED and cond(s, "Degraded") == ("True", "CrashLoop")
    assert cond(s, "Ready") == ("False", "CrashLoop")


def test_a_ready_resource_ignores_a_stale_report() -> None:
    s = st.compute(with_members(sts(ready=3), report(stalled=("db-0",))), None, NOW)
    assert s.phase is Phase.READY and cond(s, "Progressing") == ("False", "Settled")
