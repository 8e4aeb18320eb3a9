"""Jitter for periodic work: a random wait before each run, so many timers do not fire in lockstep.

1000 DatabaseInstances resumed together start 1000 status timers together; with a fixed interval they
would fire together forever (kopf's timers have no jitter of their own: ``initial_delay`` is the same
for every object unless computed). Each run first waits a random part of ``JITTER_FRACTION`` times the
interval, so the runs spread out and keep spreading. The randomness lives here, in the runtime: render/
and clustering's decisions stay pure.
"""

from __future__ import annotations

import random
from collections.abc import Callable

JITTER_FRACTION = 0.2


def jitter(interval: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before a run of a timer of ``interval``: in [0, JITTER_FRACTION * interval).

    ``rand`` returns a float in [0, 1) (``random.random``; not for secrets, only to spread load)."""
    return rand() * JITTER_FRACTION * max(interval, 0.0)
