"""Causes of members that do not run, from pod and claim objects shaped as the API server returns them."""

from __future__ import annotations

import datetime
from typing import Any

from kubetrove.reconcile.causes import (
    Cause,
    Reason,
    claimed_classes,
    members_report,
    not_ready_since,
    pod_cause,
    pod_causes,
    stalled,
    summary,
)

ENGINE_IMAGE = "127.0.0.1:5000/kubetrove/mariadb:10.11-nope"


def pod(name: str = "db-0", *, conditions: list[dict[str, Any]] | None = None,
        containers: list[dict[str, Any]] | None = None, init: list[dict[str, Any]] | None = None,
        phase: str = "Pending", **status: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "initContainers": [{"name": "restore", "image": "kubetrove/agent:0.1.0"}],
            "containers": [{"name": "engine", "image": ENGINE_IMAGE}, {"name": "agent", "image": "a:1"}],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": f"data-{name}"}},
                {"name": "config", "configMap": {"name": "db-config"}},
            ],
        },
        "status": {
            "phase": phase,
            "conditions": conditions or [{"type": "PodScheduled", "status": "True"}],
            **({"initContainerStatuses": init} if init is not None else {}),
            **({"containerStatuses": containers} if containers is not None else {}),
            **status,
        },
    }


def claim(
    name: str = "data-db-0", phase: str = "Bound", storage_class: str | None = "local"
) -> dict[str, Any]:
    spec = {"storageClassName": storage_class} if storage_class else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}


def waiting(
    name: str, reason: str, message: str = "", restarts: int = 0, last: dict[str, Any] | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": name,
        "image": ENGINE_IMAGE if name == "engine" else "a:1",
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason, "message": message}},
    }
    if last:
        status["lastState"] = {"terminated": last}
    return status


def running(name: str, ready: bool = True) -> dict[str, Any]:
    return {"name": name, "image": "a:1", "ready": ready, "restartCount": 0,
            "state": {"running": {"startedAt": "2026-12-04T15:00:00Z"}}}  # fmt: skip


UNSCHEDULED = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod.",
}
UNBOUND = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
}


def cause_of(p: dict[str, Any], claims: list[dict[str, Any]] | None = None,
             classes: list[str] | None = None) -> Cause | None:  # fmt: skip
    by_name = {c["metadata"]["name"]: c for c in (claims if claims is not None else [claim()])}
    return pod_cause(p, by_name, frozenset(classes) if classes is not None else None)


def test_a_running_or_starting_pod_has_no_cause() -> None:
    assert cause_of(pod(phase="Running", containers=[running("engine"), running("agent")])) is None
    assert cause_of(pod(containers=[waiting("engine", "ContainerCreating"), running("agent", False)])) is None
    assert cause_of(pod(conditions=[])) is None  # not looked at by the scheduler yet


def test_image_pull_failure_names_the_image() -> None:
    msg = f'Back-off pulling image "{ENGINE_IMAGE}"'
    c = cause_of(pod(containers=[waiting("engine", "ImagePullBackOff", msg), running("agent", False)]))
    assert c == Cause(
        Reason.IMAGE_PULL_FAILED, "db-0",
        f"container engine: image {ENGINE_IMAGE} cannot be pulled (ImagePullBackOff: {msg})",
    )  # fmt: skip
    err = cause_of(pod(containers=[waiting("engine", "ErrImagePull", "rpc error: not found")]))
    assert err is not None and err.reason is Reason.IMAGE_PULL_FAILED and "rpc error: not found" in err.detail


def test_crash_loop_gives_the_exit_code_and_the_last_log_lines() -> None:
    log = "\n".join(f"line {i}" for i in range(20)) + "\n[ERROR] unknown variable 'innodb_nope=1'\n"
    engine = waiting("engine", "CrashLoopBackOff", "back-off 40s restarting failed container", restarts=3,
                     last={"exitCode": 7, "reason": "Error", "message": log})  # fmt: skip
    c = cause_of(pod(phase="Running", containers=[engine, running("agent")]))
    assert c is not None and c.reason is Reason.CRASH_LOOP
    assert c.detail.startswith("container engine exited (exit code 7; last log lines: line 16 | ")
    assert c.detail.endswith("[ERROR] unknown variable 'innodb_nope=1'), restarted 3 times")


def test_a_container_just_terminated_with_an_error_is_a_crash_before_the_back_off() -> None:
    engine = {"name": "engine", "ready": False, "restartCount": 0,
              "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}  # fmt: skip
    c = cause_of(pod(phase="Running", containers=[engine, running("agent")]))
    assert c == Cause(
        Reason.CRASH_LOOP, "db-0", "container engine exited (exit code 137 (OOMKilled)), restarted 0 times"
    )


def test_unschedulable_gives_the_schedulers_message() -> None:
    c = cause_of(pod(conditions=[UNSCHEDULED]))
    assert c == Cause(Reason.UNSCHEDULABLE, "db-0", UNSCHEDULED["message"])


def test_a_storage_class_that_does_not_exist_is_named() -> None:
    claims = [claim(phase="Pending", storage_class="fast-nvme")]
    c = cause_of(pod(conditions=[UNBOUND]), claims, ["local", "standard"])
    assert c == Cause(
        Reason.VOLUME_NOT_BOUND, "db-0", "volume claim data-db-0: storage class 'fast-nvme' does not exist"
    )


def test_an_unbound_claim_of_an_existing_class_or_unknown_classes_says_pending() -> None:
    claims = [claim(phase="Pending", storage_class="local")]
    for classes in (["local"], None):  # None: the classes could not be read, so none is called missing
        c = cause_of(pod(conditions=[UNBOUND]), claims, classes)
        assert c == Cause(
            Reason.VOLUME_NOT_BOUND, "db-0", "volume claim data-db-0 is Pending (storage class 'local')"
        )
    default = cause_of(pod(conditions=[UNBOUND]), [claim(phase="Pending", storage_class=None)], [])
    assert default == Cause(
        Reason.VOLUME_NOT_BOUND, "db-0", "volume claim data-db-0 is Pending (storage class 'default')"
    )
    named = [
        claim("a", "Pending", "x"),
        claim("b", "Bound", "y"),
        claim("c", "Pending", None),
        claim("d", "Lost", "x"),
    ]
    assert claimed_classes(named) == ["x"]


def test_a_failing_restore_init_container_comes_before_the_waiting_engine() -> None:
    reply = '{"error": "bad_request", "detail": "backup orders-1 is incomplete: no manifest"}'
    restore = waiting(
        "restore", "CrashLoopBackOff", "back-off", restarts=2, last={"exitCode": 2, "message": reply}
    )
    engine = waiting("engine", "PodInitializing")
    c = cause_of(pod(init=[restore], containers=[engine]))
    assert c is not None and c.reason is Reason.INIT_CONTAINER_FAILED
    assert (
        c.detail == f"init container restore exited (exit code 2; last log lines: {reply}), restarted 2 times"
    )


def test_a_missing_secret_is_a_config_error_and_a_deleted_pod_has_no_cause() -> None:
    msg = 'secret "db-credentials" not found'
    c = cause_of(pod(containers=[waiting("engine", "CreateContainerConfigError", msg)]))
    assert c == Cause(
        Reason.CONTAINER_CONFIG_ERROR, "db-0", f"container engine: CreateContainerConfigError: {msg}"
    )
    gone = pod(containers=[waiting("engine", "CrashLoopBackOff", last={"exitCode": 1})])
    gone["metadata"]["deletionTimestamp"] = "2026-12-04T15:00:00Z"
    assert cause_of(gone) is None


def test_an_evicted_pod_is_failed() -> None:
    c = cause_of(pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory."))
    assert c == Cause(Reason.POD_FAILED, "db-0", "Evicted: The node was low on resource: memory.")


def test_summary_groups_identical_failures_and_leads_with_the_most_blocking() -> None:
    msg = f'Back-off pulling image "{ENGINE_IMAGE}"'
    pull = [pod(f"db-{i}", containers=[waiting("engine", "ImagePullBackOff", msg)]) for i in (2, 0)]
    stuck = pod("db-1", conditions=[UNSCHEDULED])
    claims = [claim(f"data-db-{i}") for i in range(3)]
    causes = pod_causes([*pull, stuck], claims, None)
    assert [c.pod for c in causes] == ["db-1", "db-0", "db-2"]
    reason, message = summary(causes) or (None, "")
    assert reason is Reason.UNSCHEDULABLE
    assert message == (
        f"db-1: {UNSCHEDULED['message']}; "
        f"db-0, db-2: container engine: image {ENGINE_IMAGE} cannot be pulled (ImagePullBackOff: {msg})"
    )
    assert summary([]) is None


def test_summary_is_cut_to_a_readable_length() -> None:
    long = [Cause(Reason.CRASH_LOOP, f"db-{i}", "x" * 400 + str(i)) for i in range(5)]
    _, message = summary(long) or (None, "")
    assert len(message) == 900 and message.endswith("…")


def aged(name: str, created: str, ready: tuple[str, str] | None = None) -> dict[str, Any]:
    p = pod(name, conditions=[{"type": "PodScheduled", "status": "True"}])
    p["metadata"]["creationTimestamp"] = created
    if ready is not None:
        p["status"]["conditions"].append(
            {"type": "Ready", "status": ready[0], "lastTransitionTime": ready[1]}
        )
    return p


def test_a_member_goes_without_progress_since_it_last_turned_not_ready_or_was_created() -> None:
    at = datetime.datetime(2026, 12, 4, 15, 10, tzinfo=datetime.UTC)
    unscheduled = aged("db-0", "2026-12-04T15:00:00Z")  # no Ready condition: since creation
    crashing = aged("db-1", "2026-12-04T14:00:00Z", ("False", "2026-12-04T15:08:00Z"))
    ready = aged("db-2", "2026-12-04T14:00:00Z", ("True", "2026-12-04T14:01:00Z"))
    assert not_ready_since(unscheduled) == at - datetime.timedelta(minutes=10)
    assert not_ready_since(crashing) == at - datetime.timedelta(minutes=2)
    assert not_ready_since(ready) is None
    assert stalled([ready, crashing, unscheduled], at, 300) == ["db-0"]
    assert stalled([ready, crashing, unscheduled], at, 60) == ["db-0", "db-1"]
    unscheduled["metadata"]["deletionTimestamp"] = "2026-12-04T15:09:00Z"
    assert stalled([unscheduled], at, 60) == []


def test_members_report_gives_the_cause_and_who_is_past_the_deadline() -> None:
    at = datetime.datetime(2026, 12, 4, 15, 10, tzinfo=datetime.UTC)
    stuck = pod(conditions=[UNSCHEDULED])
    stuck["metadata"]["creationTimestamp"] = "2026-12-04T15:00:00Z"
    report = members_report([stuck], [claim()], None, at, 300)
    assert report.cause == (Reason.UNSCHEDULABLE, f"db-0: {UNSCHEDULED['message']}")
    assert report.stalled == ("db-0",)
    assert report.stalled_message == "db-0 not ready for more than 300 s (spec.progressDeadlineSeconds)"
    assert members_report([stuck], [claim()], None, at, 900).stalled == ()
