"""The membership loop (engine-elected sets) against an in-memory replica set.

``FakeSet`` behaves like the agent's route on MongoDB: it initiates only an uninitiated member, only the
primary reconfigures (others refuse: 409), one member changes per call. Elections are the test's to
trigger (``elect``): the loop must follow them and never cause one (the fake has no promote or fence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from kubetrove.agent.protocol import MembershipAction, MembersReply, Role, Status
from kubetrove.clustering.membership import SetState
from kubetrove.clustering.membership_process import INITIATED, PRIMARY_CHANGED, RECONFIGURED, MembershipLoop
from kubetrove.clustering.ops import MembershipRefused, MemberUnreachable
from kubetrove.clustering.snapshot import ClusterView
from tests.unit.clustering.fake import FakeRecord

PODS = ["db-0", "db-1", "db-2"]


@dataclass
class FakeSet:
    pods: list[str]
    config: list[str] = field(default_factory=list)  # the set's members; empty: not initiated
    primary: str | None = None
    down: set[str] = field(default_factory=set)
    version: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)

    def elect(self, pod: str) -> None:
        self.primary = pod

    async def volume(self, pod: str) -> None:
        raise MemberUnreachable(pod)

    async def status(self, pod: str) -> Status:
        if pod in self.down:
            raise MemberUnreachable(pod)
        role = Role.UNKNOWN
        if pod in self.config:
            role = Role.PRIMARY if pod == self.primary else Role.REPLICA
        return Status(
            engine="mongodb", version="6.0", role=role, read_only=role is not Role.PRIMARY, healthy=True
        )

    async def step_up(self, pod: str) -> None:
        """replSetStepUp: the member stands for election; here the set always elects it."""
        self.calls.append(("step_up", pod))
        if pod in self.down:
            raise MemberUnreachable(pod)
        self.primary = pod

    async def set_members(self, pod: str, members: Sequence[str]) -> MembersReply:
        self.calls.append(("set_members", pod))
        if pod in self.down:
            raise MemberUnreachable(pod)
        if not self.config:
            self.config, self.version = list(members), 1
            return MembersReply(
                action=MembershipAction.INITIATED, added=list(members), complete=True, version=1
            )
        if pod != self.primary:
            raise MembershipRefused(f"{pod}: only the primary can reconfigure the set")
        stale = [m for m in self.config if m not in members]
        missing = [m for m in members if m not in self.config]
        if not (stale or missing):
            return MembersReply(action=MembershipAction.UNCHANGED, complete=True, version=self.version)
        self.version += 1
        if stale:
            self.config.remove(stale[-1])
            added, removed = [], [stale[-1]]
        else:
            self.config.append(missing[0])
            added, removed = [missing[0]], []
        complete = len(stale) + len(missing) == 1
        return MembersReply(
            action=MembershipAction.RECONFIGURED,
            added=added,
            removed=removed,
            complete=complete,
            version=self.version,
        )


def make(pods: list[str] = PODS) -> tuple[FakeSet, FakeRecord, MembershipLoop]:
    fake = FakeSet(list(pods))
    record = FakeRecord(list(pods), ClusterView((), None))
    return fake, record, MembershipLoop(fake, record)


def reasons(record: FakeRecord) -> list[str]:
    return [e[0] for e in record.events]


async def formed() -> tuple[FakeSet, FakeRecord, MembershipLoop]:
    fake, record, loop = make()
    assert (await loop.cycle(now=0)).state is SetState.INITIATING
    fake.elect("db-2")  # the set picks whom it likes
    assert (await loop.cycle(now=1)).state is SetState.HEALTHY
    return fake, record, loop


async def test_bootstrap_initiates_through_db0_then_reports_whom_the_set_elected() -> None:
    fake, record, loop = await formed()
    assert fake.config == PODS and fake.calls[0] == ("set_members", "db-0")
    assert record.primary == "db-2"
    assert record.labels == {"db-0": "replica", "db-1": "replica", "db-2": "primary"}
    assert reasons(record) == [INITIATED, PRIMARY_CHANGED]
    assert record.state == "Healthy"
    # Settled: the next cycles do not ask again (M4), until the resync period passes.
    calls = len(fake.calls)
    await loop.cycle(now=2)
    await loop.cycle(now=30)
    assert len(fake.calls) == calls
    await loop.cycle(now=1 + loop.resync_seconds)
    assert fake.calls[-1] == ("set_members", "db-2") and len(fake.calls) == calls + 1


async def test_no_set_is_created_while_a_member_does_not_answer() -> None:
    fake, record, loop = make()
    fake.down.add("db-1")
    for now in range(5):
        assert (await loop.cycle(now=now)).state is SetState.WAITING
    assert fake.calls == [] and fake.config == [] and record.primary is None
    fake.down.clear()
    assert (await loop.cycle(now=6)).state is SetState.INITIATING and fake.config == PODS


async def test_growing_to_five_adds_one_member_per_cycle_on_the_primary() -> None:
    fake, record, loop = await formed()
    record.pods = fake.pods = [f"db-{i}" for i in range(5)]
    await loop.cycle(now=2)
    assert fake.config == [*PODS, "db-3"] and "one member per reconfiguration" in " ".join(record.reasons)
    await loop.cycle(now=3)
    assert fake.config == record.pods
    assert reasons(record)[-2:] == [RECONFIGURED, RECONFIGURED]
    assert record.events[-1][1] == "added db-4 (config version 3)"
    assert all(pod == "db-2" for _, pod in fake.calls[1:])  # only ever the primary after the initiation


async def test_the_loop_follows_an_election_and_never_causes_one() -> None:
    fake, record, loop = await formed()
    fake.elect("db-0")
    await loop.cycle(now=2)
    assert (
        record.primary == "db-0" and record.labels["db-0"] == "primary" and record.labels["db-2"] == "replica"
    )
    assert record.events[-1] == (PRIMARY_CHANGED, "the replica set elected db-0 (was: db-2)", False)
    assert {op for op, _ in fake.calls} == {"set_members"}


async def test_an_election_in_progress_moves_nothing() -> None:
    fake, record, loop = await formed()
    fake.primary = None
    assert (await loop.cycle(now=2)).state is SetState.NO_PRIMARY
    assert record.primary == "db-2" and record.labels["db-2"] == "primary"  # last known, not cleared


async def test_a_refusal_is_reported_and_retried_next_cycle() -> None:
    fake, record, loop = make()
    await loop.cycle(now=0)
    fake.elect("db-1")
    # db-1 steps down between our status read and the call: the fake refuses, the cycle still ends well.
    real = fake.set_members

    async def stepped_down(pod: str, members: Sequence[str]) -> MembersReply:
        fake.primary = None
        return await real(pod, members)

    fake.set_members = stepped_down  # type: ignore[method-assign]
    await loop.cycle(now=1)
    assert any("only the primary" in r for r in record.reasons)
    fake.set_members = real  # type: ignore[method-assign]
    fake.elect("db-1")
    await loop.cycle(now=2)
    assert record.reasons == () and record.state == "Healthy"


async def test_a_new_operator_process_never_initiates_an_existing_set_again() -> None:
    fake, record, _ = await formed()
    fresh = MembershipLoop(fake, record)  # no memory
    await fresh.cycle(now=100)
    assert [pod for _, pod in fake.calls].count("db-0") == 1 and fake.version == 1
    assert reasons(record).count(INITIATED) == 1


async def test_spec_primary_asks_that_member_to_stand_for_election_once_and_then_records_it() -> None:
    fake, record, loop = await formed()  # db-2 elected
    record.base = replace(record.base, wanted_primary="db-0")
    plan = await loop.cycle(now=2)
    assert plan.step_up == "db-0" and ("step_up", "db-0") in fake.calls
    assert reasons(record)[-1] == "SwitchoverRequested"
    assert record.primary == "db-2"  # recorded only once the set reports it
    assert (await loop.cycle(now=3)).step_up is None
    assert record.primary == "db-0" and record.labels["db-0"] == "primary"
    assert fake.calls.count(("step_up", "db-0")) == 1


async def test_no_switchover_while_the_set_is_degraded_or_the_target_is_down() -> None:
    fake, record, loop = await formed()
    record.base = replace(record.base, wanted_primary="db-0")
    fake.down.add("db-0")
    assert (await loop.cycle(now=2)).step_up is None
    assert ("step_up", "db-0") not in fake.calls and record.primary == "db-2"
