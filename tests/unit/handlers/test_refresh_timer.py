"""The status timers: instances have their own interval, and every run first waits a random jitter."""

from __future__ import annotations

import asyncio
import contextlib
import types
from typing import Any

import kopf
import pytest

from kubetrove.api.resources import CLUSTER, INSTANCE
from kubetrove.handlers import resources
from kubetrove.runtime.config import (
    DEFAULT_AUTOGROW_INTERVAL,
    DEFAULT_INSTANCE_STATUS_INTERVAL,
    OperatorConfig,
)
from kubetrove.runtime.jitter import JITTER_FRACTION, jitter


@pytest.mark.parametrize(
    ("env", "instances", "clusters"),
    [
        ({}, DEFAULT_INSTANCE_STATUS_INTERVAL, 30.0),
        ({"KUBETROVE_STATUS_INTERVAL": "5"}, 5.0, 5.0),  # the e2e tier: it applies to instances too
        ({"KUBETROVE_INSTANCE_STATUS_INTERVAL": "600"}, 600.0, 30.0),
        ({"KUBETROVE_INSTANCE_STATUS_INTERVAL": "120", "KUBETROVE_STATUS_INTERVAL": "5"}, 120.0, 5.0),
    ],
)
def test_instance_status_interval_falls_back_to_the_status_interval(
    env: dict[str, str], instances: float, clusters: float
) -> None:
    config = OperatorConfig.from_env(env)
    assert (config.instance_status_interval, config.status_interval) == (instances, clusters)
    assert resources.refresh_interval(INSTANCE, config) == instances
    assert resources.refresh_interval(CLUSTER, config) == clusters


@pytest.mark.parametrize(
    ("env", "autogrow"),
    [
        ({}, DEFAULT_AUTOGROW_INTERVAL),
        ({"KUBETROVE_STATUS_INTERVAL": "5"}, 5.0),  # the e2e tier's 5 s applies to the autogrow timer too
        ({"KUBETROVE_AUTOGROW_INTERVAL": "20", "KUBETROVE_STATUS_INTERVAL": "5"}, 20.0),
    ],
)
def test_the_autogrow_interval_falls_back_to_the_status_interval(
    env: dict[str, str], autogrow: float
) -> None:
    assert OperatorConfig.from_env(env).autogrow_interval == autogrow
    assert OperatorConfig().autogrow_interval == 60.0 == DEFAULT_AUTOGROW_INTERVAL


async def test_the_autogrow_timer_waits_its_jitter_then_observes_the_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    observed: list[float | None] = []

    async def observe_volume(*_: Any) -> None:
        observed.append(None)

    monkeypatch.setattr(resources, "jitter", lambda interval: interval * JITTER_FRACTION / 2)
    monkeypatch.setattr(resources.run, "observe_volume", observe_volume)
    monkeypatch.setattr(resources, "parse", lambda kind, body: None)
    memo = kopf.Memo(config=OperatorConfig(autogrow_interval=50.0), deps=None)
    stopped: Any = NeverStopped(observed)
    await resources.databaseinstance_autogrow(body=_instance(), memo=memo, logger=None, stopped=stopped)
    assert observed == [5.0, None]


def test_a_bad_instance_interval_is_an_error() -> None:
    with pytest.raises(ValueError, match="soon"):
        OperatorConfig.from_env({"KUBETROVE_INSTANCE_STATUS_INTERVAL": "soon"})


def test_the_default_is_300_seconds() -> None:
    assert OperatorConfig().instance_status_interval == 300.0 == DEFAULT_INSTANCE_STATUS_INTERVAL


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5, 0.999999])
def test_jitter_is_a_random_part_of_a_fifth_of_the_interval(r: float) -> None:
    assert JITTER_FRACTION == 0.2
    delay = jitter(300.0, rand=lambda: r)
    assert 0.0 <= delay < 60.0 and delay == pytest.approx(r * 60.0)
    assert jitter(0.0, rand=lambda: r) == 0.0


def test_jitter_with_the_real_random_stays_in_bounds() -> None:
    delays = [jitter(10.0) for _ in range(1000)]
    assert all(0.0 <= d < 2.0 for d in delays) and len(set(delays)) > 1


class NeverStopped:
    """kopf's ``stopped`` that never is: each wait is recorded in ``waits`` and returns at once."""

    def __init__(self, waits: list[float | None]) -> None:
        self.waits = waits

    async def wait(self, delay: float | None = None) -> None:
        self.waits.append(delay)

    def __bool__(self) -> bool:
        return False


def _instance() -> kopf.Body:
    return kopf.Body({"apiVersion": "kubetrove.io/v1alpha1", "kind": INSTANCE.kind, "metadata": {}})


async def test_each_run_waits_its_jitter_first_then_refreshes(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float | None] = []
    refreshed: list[str] = []

    async def refresh(*_: Any) -> None:
        refreshed.append("refresh")

    monkeypatch.setattr(resources, "jitter", lambda interval: interval * JITTER_FRACTION / 2)
    monkeypatch.setattr(resources.run, "refresh", refresh)
    monkeypatch.setattr(resources, "parse", lambda kind, body: None)
    deps: Any = types.SimpleNamespace(refresh_slots=asyncio.Semaphore(1))
    memo = kopf.Memo(config=OperatorConfig(status_interval=7.0, instance_status_interval=100.0), deps=deps)
    stopped: Any = NeverStopped(waited)
    await resources.database_refresh(body=_instance(), memo=memo, logger=None, stopped=stopped)
    assert waited == [10.0] and refreshed == ["refresh"]  # half of a fifth of the instance interval


async def test_a_refresh_waits_for_a_free_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBETROVE_REFRESH_CONCURRENCY: with every slot taken, the refresh waits; a freed slot lets it run."""
    refreshed: list[str] = []

    async def refresh(*_: Any) -> None:
        refreshed.append("refresh")

    monkeypatch.setattr(resources, "jitter", lambda interval: 0.0)
    monkeypatch.setattr(resources.run, "refresh", refresh)
    monkeypatch.setattr(resources, "parse", lambda kind, body: None)
    slots = asyncio.Semaphore(1)
    memo = kopf.Memo(config=OperatorConfig(), deps=types.SimpleNamespace(refresh_slots=slots))
    await slots.acquire()
    task = asyncio.create_task(resources.database_refresh(body=_instance(), memo=memo, logger=None))
    await asyncio.sleep(0.05)
    assert refreshed == [] and not task.done()
    slots.release()
    await asyncio.wait_for(task, 5)
    assert refreshed == ["refresh"]


class StoppedFlag:
    """kopf's ``stopped`` as a timer sees it: ``await stopped.wait(t)`` ends early once set, truthy then."""

    def __init__(self) -> None:
        self.flag = asyncio.Event()

    async def wait(self, delay: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flag.wait(), delay)

    def __bool__(self) -> bool:
        return self.flag.is_set()


async def test_a_stop_during_the_jitter_skips_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refresh(*_: Any) -> None:
        raise AssertionError("refreshed after the stop")

    monkeypatch.setattr(resources.run, "refresh", refresh)
    monkeypatch.setattr(resources, "jitter", lambda interval: 3600.0)
    memo = kopf.Memo(config=OperatorConfig(), deps=None)
    stopped: Any = StoppedFlag()
    task = asyncio.create_task(
        resources.database_refresh(body=_instance(), memo=memo, logger=None, stopped=stopped)
    )
    await asyncio.sleep(0.01)
    stopped.flag.set()
    await asyncio.wait_for(task, timeout=5)  # not the hour of the jitter
