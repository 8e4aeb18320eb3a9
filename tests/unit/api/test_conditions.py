"""The condition and timestamp rules, written once in kubetrove/api/conditions.py."""

from __future__ import annotations

import datetime

from kubetrove.api import conditions
from kubetrove.api.common import Condition

THEN, NOW = "2026-01-01T00:00:00Z", "2026-01-02T03:04:05Z"


def test_stamp_is_utc_whole_seconds_and_parses_back() -> None:
    local = datetime.datetime(2026, 1, 2, 4, 4, 5, 999, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert conditions.stamp(local) == NOW
    assert conditions.parse_time(NOW) == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def test_transition_time_changes_only_when_the_status_flips() -> None:
    assert conditions.transition_time("True", THEN, "True", NOW) == THEN
    assert conditions.transition_time("True", THEN, "False", NOW) == NOW
    assert conditions.transition_time(None, None, "True", NOW) == NOW
    assert conditions.transition_time("True", None, "True", NOW) == NOW  # never stamped: stamp it now


def test_put_keeps_other_types_and_the_time_of_an_unchanged_status() -> None:
    old = [
        Condition(type="Replication", status="True", reason="Healthy", last_transition_time=THEN),
        Condition(type="Ready", status="True", reason="AllMembersReady", last_transition_time=THEN),
    ]
    same = conditions.put(old, [conditions.make("Ready", True, "Other", "new message", 2)], NOW)
    assert [(c.type, c.reason, c.last_transition_time) for c in same] == [
        ("Replication", "Healthy", THEN),
        ("Ready", "Other", THEN),
    ]
    flipped = conditions.put(old, [conditions.make("Ready", False, "MembersNotReady", "", 2)], NOW)
    assert flipped[-1].last_transition_time == NOW and flipped[-1].observed_generation == 2


def test_put_wire_replaces_in_place_appends_new_types_and_drops() -> None:
    stored = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "t0"},
        {"type": "StorageLow", "status": "False", "reason": "BelowThreshold", "lastTransitionTime": "t0"},
        {"type": "StorageAutogrow", "status": "True", "lastTransitionTime": "t0"},
    ]
    low = {"type": "StorageLow", "status": "True", "reason": "VolumeAboveThreshold"}
    same = {"type": "Ready", "status": "True", "reason": "AllMembersReady"}
    new = {"type": "Replication", "status": "True"}
    out = conditions.put_wire(stored, [low, same, new], "t1", drop={"StorageAutogrow"})
    assert [(c["type"], c["lastTransitionTime"]) for c in out] == [
        ("Ready", "t0"),  # kept in its place; the status did not flip
        ("StorageLow", "t1"),  # flipped
        ("Replication", "t1"),  # new: appended
    ]
    assert out[0]["reason"] == "AllMembersReady"
