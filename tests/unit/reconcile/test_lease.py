"""Single active operator: the Lease algorithm against the fake API server, with a fake clock."""

from __future__ import annotations

from kubetrove.k8s.kinds import LEASE
from kubetrove.k8s.lease import LeaseLock
from tests.unit.reconcile.fake_kube import FakeKube


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_second_instance_waits_until_release() -> None:
    kube, clock = FakeKube(), Clock()
    a = LeaseLock(kube, "ns", "op", "a", duration=15, clock=clock)
    b = LeaseLock(kube, "ns", "op", "b", duration=15, clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.t = 10
    assert await a.try_acquire_or_renew()  # renewal
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert await b.try_acquire_or_renew()
    assert kube.find(LEASE, "ns", "op")["spec"]["holderIdentity"] == "b"
    assert not await a.try_acquire_or_renew()


async def test_expiry_is_judged_on_the_observers_clock() -> None:
    kube, clock = FakeKube(), Clock()
    a = LeaseLock(kube, "ns", "op", "a", duration=15, clock=clock)
    b = LeaseLock(kube, "ns", "op", "b", duration=15, clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # b first sees a's record at t=0
    clock.t = 14
    assert not await b.try_acquire_or_renew()
    clock.t = 15  # a stopped renewing 15 s ago (on b's clock): expired
    assert await b.try_acquire_or_renew()
    spec = kube.find(LEASE, "ns", "op")["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1


async def test_release_by_a_non_holder_changes_nothing() -> None:
    kube = FakeKube()
    a = LeaseLock(kube, "ns", "op", "a")
    b = LeaseLock(kube, "ns", "op", "b")
    assert await a.try_acquire_or_renew()
    await b.release()
    assert kube.find(LEASE, "ns", "op")["spec"]["holderIdentity"] == "a"
