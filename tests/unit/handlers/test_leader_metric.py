"""kubetrove_operator_leader: a standby serves 0, the Lease holder 1, a holder losing it 0 before it stops."""

from __future__ import annotations

import asyncio
import signal
import types
from typing import Any

import kopf
import pytest

from kubetrove.handlers import settings
from kubetrove.k8s.lease import LeaseLock
from kubetrove.metrics import OperatorMetrics
from kubetrove.runtime.config import OperatorConfig
from tests.unit.reconcile.fake_kube import FakeKube

ENV = {
    "KUBETROVE_METRICS_PORT": "0",
    "KUBETROVE_HEALTH_PORT": "0",
    "KUBETROVE_MALLOC_TRIM_INTERVAL": "0",
    "KUBETROVE_LEASE_NAMESPACE": "ns",
}


class ClosingKube(FakeKube):
    def close(self) -> None:
        self.closed = True


class QuickLock(LeaseLock):
    async def acquire(self, retry_period: float = 2.0) -> None:
        await super().acquire(retry_period=0.01)


async def test_a_standby_serves_leader_0_and_the_holder_1(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = ClosingKube()
    monkeypatch.setattr(settings, "load_config", lambda: types.SimpleNamespace())
    monkeypatch.setattr(settings, "KubeClient", lambda *_: kube)
    monkeypatch.setattr(settings, "LeaseLock", QuickLock)
    other = LeaseLock(kube, "ns", "kubetrove-operator", "other")
    assert await other.try_acquire_or_renew()
    metrics = OperatorMetrics(version="1.0")
    served: list[float | None] = []
    leader = lambda: metrics.registry.get_sample_value("kubetrove_operator_leader")  # noqa: E731
    monkeypatch.setattr(metrics, "serve", lambda port: served.append(leader()))
    memo = kopf.Memo(config=OperatorConfig.from_env(ENV), metrics=metrics)
    startup = asyncio.create_task(settings.operator_startup(kopf.OperatorSettings(), memo))
    await asyncio.sleep(0.2)  # twenty retries
    assert not startup.done()  # a standby: the other instance holds the Lease
    assert served == [0.0] and leader() == 0.0  # ...and its metrics are served meanwhile
    await other.release()
    await asyncio.wait_for(startup, 5)
    assert leader() == 1.0
    await settings.operator_cleanup(memo)
    assert leader() == 0.0 and kube.closed


def test_losing_the_lease_says_so_before_stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = OperatorMetrics()
    metrics.leader.set(1)
    killed: list[Any] = []
    monkeypatch.setattr(
        settings.os, "kill", lambda pid, sig: killed.append((sig, metrics.leader._value.get()))
    )
    settings._lost(metrics)
    assert killed == [(signal.SIGTERM, 0.0)]
