"""Opt-in memory profiling: ``KUBETROVE_TRACEMALLOC=<frames>`` traces allocations, SIGUSR1 logs the top;
and, always, SIGUSR2 logs where every asyncio task and thread is waiting (``log_stacks``).

Why the second: a DatabaseCluster once stayed with its finalizer after its namespace was deleted, its
deletion handler never logged, its daemon and timers still running (seen in e2e teardowns, not yet
explained). What kopf's per-object worker was waiting on is the question, and only the live process
can answer it: ``kill -USR2 <pid>``, which the e2e teardown does before it reports such a timeout.

The RSS at N=1000 is not explained yet (docs/operations.md, Scale): allocator retention accounts for
part of it at 300 to 700 CRs, not at 1000. tracemalloc answers "which lines hold the live Python
objects" in the running operator: start it with ``frames`` frames of traceback per allocation (1 is
cheapest; 10 to 25 tell who called), then ``kill -USR1 <pid>`` logs the ``TOP`` sites by size, with
the traced total and peak. Off by default: tracing costs CPU on every allocation and roughly doubles
the memory of each traced block; the snapshot itself blocks the event loop while it is taken
(seconds at hundreds of MiB).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
import threading
import traceback
import tracemalloc

TOP = 25
SIGNAL = signal.SIGUSR1
STACKS_SIGNAL = signal.SIGUSR2
STACK_FRAMES = 12  # innermost frames per task: where it waits, and who asked
log = logging.getLogger(__name__)
# Not what the operator allocates: tracemalloc's own bookkeeping and the import machinery.
_IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


def frames_from_env(value: str | None) -> int:
    """KUBETROVE_TRACEMALLOC: frames per traced allocation; unset, empty or 0 turns tracing off."""
    frames = int(value or "0")
    if frames < 0:
        raise ValueError(f"KUBETROVE_TRACEMALLOC={value!r}: expected a number of frames (0: off)")
    return frames


def top(limit: int = TOP) -> list[str]:
    """The ``limit`` biggest allocation sites now, one line each, biggest first (tracing must be on).

    With more than one frame a site is the whole traceback, most recent frame first."""
    snapshot = tracemalloc.take_snapshot().filter_traces(_IGNORED)
    key = "traceback" if tracemalloc.get_traceback_limit() > 1 else "lineno"
    lines = []
    for rank, stat in enumerate(snapshot.statistics(key)[:limit], 1):
        where = " <- ".join(f"{f.filename}:{f.lineno}" for f in reversed(stat.traceback))
        lines.append(f"#{rank} {stat.size / 1024:.1f} KiB in {stat.count} blocks: {where}")
    return lines


def log_top(limit: int = TOP) -> None:
    """Log the traced total and peak, then the top ``limit`` sites (SIGUSR1's handler)."""
    if not tracemalloc.is_tracing():
        log.warning("tracemalloc is off: set KUBETROVE_TRACEMALLOC=<frames> to trace allocations")
        return
    current, peak = tracemalloc.get_traced_memory()
    log.info(
        "tracemalloc: %.1f MiB traced, %.1f MiB peak; top %d allocation sites:",
        current / 2**20, peak / 2**20, limit,
    )  # fmt: skip
    for line in top(limit):
        log.info("tracemalloc %s", line)


def start(frames: int, loop: asyncio.AbstractEventLoop) -> bool:
    """Trace with ``frames`` frames and log the top sites on SIGUSR1 (handled on ``loop``, so the log
    call never interrupts another one); False, doing nothing, when ``frames`` is 0."""
    if frames <= 0:
        return False
    tracemalloc.start(frames)
    loop.add_signal_handler(SIGNAL, log_top)
    log.info(
        "tracemalloc on (%d frames): kill -USR1 %d logs the top %d allocation sites", frames, os.getpid(), TOP
    )
    return True


def stop(loop: asyncio.AbstractEventLoop) -> None:
    """Stop tracing and forget the signal handler (the operator's cleanup)."""
    loop.remove_signal_handler(SIGNAL)
    tracemalloc.stop()


def stacks(loop: asyncio.AbstractEventLoop) -> list[str]:
    """One block per asyncio task of ``loop`` (its name and innermost frames) and per thread."""
    blocks = []
    for task in sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name()):
        out = io.StringIO()
        task.print_stack(limit=STACK_FRAMES, file=out)
        blocks.append(f"task {task.get_name()}: {out.getvalue().strip()}")
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        where = "".join(traceback.format_stack(frame, limit=STACK_FRAMES)).strip()
        blocks.append(f"thread {names.get(ident, ident)}:\n{where}")
    return blocks


def log_stacks() -> None:
    """Log ``stacks`` of the running loop (SIGUSR2's handler, run on the loop)."""
    blocks = stacks(asyncio.get_running_loop())
    log.warning("stacks: %d asyncio tasks and threads follow (SIGUSR2)", len(blocks))
    for block in blocks:
        log.warning("stack %s", block)


def watch_stacks(loop: asyncio.AbstractEventLoop) -> None:
    """Log every task's and thread's stack on SIGUSR2 (handled on ``loop``)."""
    loop.add_signal_handler(STACKS_SIGNAL, log_stacks)
