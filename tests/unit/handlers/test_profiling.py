"""Opt-in memory profiling: KUBETROVE_TRACEMALLOC parsed, the top sites named, SIGUSR1 logs them."""

from __future__ import annotations

import asyncio
import logging
import os
import tracemalloc
from collections.abc import Iterator

import pytest

from kubetrove.runtime import profiling
from kubetrove.runtime.config import OperatorConfig

KEPT: list[bytes] = []


@pytest.fixture(autouse=True)
def _no_tracing_left() -> Iterator[None]:
    yield
    tracemalloc.stop()
    KEPT.clear()


def allocate_a_lot() -> None:
    KEPT.extend(bytes(1024) for _ in range(4096))  # 4 MiB from this line


def test_tracemalloc_is_off_unless_frames_are_set() -> None:
    assert OperatorConfig.from_env({}).tracemalloc_frames == 0
    assert OperatorConfig.from_env({"KUBETROVE_TRACEMALLOC": ""}).tracemalloc_frames == 0
    assert OperatorConfig.from_env({"KUBETROVE_TRACEMALLOC": "10"}).tracemalloc_frames == 10
    with pytest.raises(ValueError, match="KUBETROVE_TRACEMALLOC='-1'"):
        OperatorConfig.from_env({"KUBETROVE_TRACEMALLOC": "-1"})


@pytest.mark.parametrize("frames", [1, 3])
def test_top_names_the_biggest_site_first(frames: int) -> None:
    tracemalloc.start(frames)
    allocate_a_lot()
    lines = profiling.top(5)
    assert 1 <= len(lines) <= 5
    assert lines[0].startswith("#1 ") and f"{__file__}:" in lines[0]
    assert (" <- " in lines[0]) is (frames > 1)  # more frames: the whole traceback, callers after


async def test_zero_frames_start_nothing() -> None:
    assert profiling.start(0, asyncio.get_running_loop()) is False
    assert not tracemalloc.is_tracing()


async def test_sigusr1_logs_the_top_sites(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    caplog.set_level(logging.INFO, logger=profiling.__name__)
    assert profiling.start(2, loop) is True
    try:
        allocate_a_lot()
        os.kill(os.getpid(), profiling.SIGNAL)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if any("#1 " in r.getMessage() for r in caplog.records):
                break
        messages = [r.getMessage() for r in caplog.records]
        assert any("MiB traced" in m for m in messages)
        sites = [m for m in messages if m.startswith("tracemalloc #")]
        assert 1 <= len(sites) <= profiling.TOP and f"{__file__}:" in sites[0]
    finally:
        profiling.stop(loop)
    assert not tracemalloc.is_tracing()


def test_logging_the_top_with_tracing_off_says_how_to_turn_it_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=profiling.__name__)
    profiling.log_top()
    assert "KUBETROVE_TRACEMALLOC" in caplog.text


async def test_sigusr2_logs_where_every_task_and_thread_waits(caplog: pytest.LogCaptureFixture) -> None:
    """The stuck-finalizer diagnosis (runtime/profiling.py): a task parked in an await shows its frame."""
    parked = asyncio.Event()

    async def parked_somewhere_recognisable() -> None:
        await parked.wait()

    task = asyncio.create_task(parked_somewhere_recognisable(), name="the-parked-task")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    profiling.watch_stacks(loop)
    try:
        with caplog.at_level(logging.WARNING, logger=profiling.__name__):
            os.kill(os.getpid(), profiling.STACKS_SIGNAL)
            for _ in range(50):
                await asyncio.sleep(0.01)
                if "the-parked-task" in caplog.text:
                    break
        assert "the-parked-task" in caplog.text
        assert "parked_somewhere_recognisable" in caplog.text
        assert "thread MainThread" in caplog.text
    finally:
        loop.remove_signal_handler(profiling.STACKS_SIGNAL)
        parked.set()
        await task
