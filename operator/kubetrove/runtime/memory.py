"""Hand freed heap pages back to the kernel on a timer (glibc ``malloc_trim``).

Not done here: PYTHONMALLOC=malloc (docs/operations.md, Scale). pymalloc keeps 1 MiB arenas that a
few long-lived objects pin (at 600 CRs, 272 arenas held 74 MiB of live objects) and the system
allocator cut RSS from 331 MiB (600 CRs) to 213 MiB (700 CRs), but at 1000 CRs it did not (497 MiB)
and the burst was slower; it stays an environment choice.

Why the trim: glibc keeps memory that ``free()`` released inside its arenas (one per API thread,
up to 8 per core), so after a burst of reconciles the process holds many MiB of free but resident
heap. ``benchmarks/scale.py`` measured it: at 300 DatabaseInstances and 32 API threads, mallinfo2
reported 50 MiB free of 86 MiB in the arenas, and ``malloc_trim(0)`` took RSS from 257 to 215 MiB,
which stayed there after the next round of status timers (at 500: 363 to 299 MiB). glibc frees
such pages only on a trim (its automatic trim releases the top of the main heap alone, man 3
malloc_trim, mallopt(3) M_TRIM_THRESHOLD), so the operator calls it on a timer. MALLOC_ARENA_MAX=2
did not help.

Invariants: trimming never changes what is allocated, only which free pages stay resident; on a C
library without ``malloc_trim`` (musl, macOS) it is a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        fn: Any = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn  # type: ignore[no-any-return]


MALLOC_TRIM = _malloc_trim()


def trim_heap() -> bool:
    """Release free heap pages to the kernel; True when glibc gave some back."""
    # pad 0: keep nothing spare at the top of the heap. It walks the free lists of every arena:
    # 86 ms for a 717 MiB fragmented heap here, so trim_forever runs it off the event loop.
    return MALLOC_TRIM is not None and MALLOC_TRIM(0) == 1


async def trim_forever(interval: float, trim: Callable[[], bool] = trim_heap) -> None:
    """Call ``trim`` every ``interval`` seconds until cancelled (the operator's cleanup cancels it)."""
    while True:
        await asyncio.sleep(interval)
        released = await asyncio.to_thread(trim)  # ctypes drops the GIL for the C call
        log.debug("malloc_trim: %s", "released memory" if released else "nothing to release")
