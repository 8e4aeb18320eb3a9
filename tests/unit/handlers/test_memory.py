"""The glibc heap trim: it really gives freed pages back, runs on a timer, and stops with the operator."""

from __future__ import annotations

import asyncio
import ctypes
from pathlib import Path

import kopf
import pytest

from kubetrove.handlers.settings import operator_cleanup
from kubetrove.runtime.config import OperatorConfig
from kubetrove.runtime.memory import MALLOC_TRIM, trim_forever, trim_heap


def _rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1])


@pytest.mark.skipif(MALLOC_TRIM is None, reason="not glibc: trim_heap is a documented no-op")
def test_trim_returns_freed_heap_pages_to_the_kernel() -> None:
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 8192, 4096  # 32 MiB of blocks below the mmap threshold: they live in the heap
    blocks = [libc.malloc(size) for _ in range(count)]
    for b in blocks:
        ctypes.memset(b, 1, size)  # touch every page so it is resident
    # Free all but the last: the freed run sits below a live block, so free() cannot shrink the heap
    # top by itself and the pages stay resident until a trim.
    for b in blocks[:-1]:
        libc.free(b)
    before = _rss_kib()
    assert trim_heap()
    assert before - _rss_kib() > 16 * 1024, "expected most of the 32 MiB back"
    libc.free(blocks[-1])


async def test_trims_on_a_timer_until_cancelled() -> None:
    calls: list[bool] = []
    thrice = asyncio.Event()

    def counted() -> bool:
        calls.append(trim_heap())
        if len(calls) == 3:
            thrice.set()
        return calls[-1]

    task = asyncio.create_task(trim_forever(0.001, counted))
    await asyncio.wait_for(thrice.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_operator_cleanup_stops_the_trim_timer() -> None:
    memo = kopf.Memo()
    memo.trim_task = asyncio.create_task(trim_forever(3600))
    await operator_cleanup(memo=memo)  # type: ignore[call-arg,misc]  # kopf passes the rest
    with pytest.raises(asyncio.CancelledError):
        await memo.trim_task


def test_trim_interval_from_env_and_off_switch() -> None:
    assert OperatorConfig.from_env({}).malloc_trim_interval == 30
    assert OperatorConfig.from_env({"KUBETROVE_MALLOC_TRIM_INTERVAL": "0"}).malloc_trim_interval == 0
