"""The ring as this node sees it: ``nodetool status`` (per node: Up/Down, Normal/Joining/Leaving/Moving).

Why nodetool and not CQL: no table says whether a peer is up. Cassandra 5.0's ``system_views`` has
``gossip_info`` (status NORMAL/LEAVING..., load, host id, but no liveness: a killed node stays NORMAL there),
``internode_outbound`` and ``pending_hints``; the failure detector's verdict is only on JMX, which nodetool
reads (checked on 5.0.9). https://cassandra.apache.org/doc/5.0/cassandra/managing/tools/nodetool/status.html

nodetool is a JVM (~1.5 s of CPU per call), so the view is refreshed in a background thread at most every
``refresh_seconds`` and ``/v1/status`` serves the last one it has: the loop polls every second, a ring
does not need a JVM per node per second. Without nodetool (an image without Java) the view is None and
the status says nothing about the ring, as before.

Invariant: what is served is never older than ``max_age_seconds``; past that the view is dropped (None)
rather than shown stale, so a node that stopped being able to ask never reports an old "UN".
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from kubetrove.agent.protocol import RingNode

log = logging.getLogger(__name__)

# "UN  10.0.0.7  104.5 KiB  16  64.7%  1ce5d982-9111-4aaf-9d5b-6aa647f97444  rack1"
# ("?" for load while a node joins, and for ownership without a keyspace argument).
STATUS_LINE = re.compile(
    r"^(?P<state>[UD][NLJM])\s+(?P<address>\S+)\s+(?P<load>\?|[\d.]+ \S+)\s+(?P<tokens>\d+)\s+"
    r"\S+\s+(?P<host_id>[0-9a-f-]{36})\s+\S+$"
)


def parse_status(text: str) -> list[RingNode]:
    """Every node line of ``nodetool status`` output (any datacenter), in output order."""
    nodes = []
    for line in text.splitlines():
        m = STATUS_LINE.match(line.strip())
        if m:
            load = None if m["load"] == "?" else m["load"]
            nodes.append(
                RingNode(
                    address=m["address"],
                    host_id=m["host_id"],
                    state=m["state"],
                    load=load,
                    tokens=int(m["tokens"]),
                )
            )
    return nodes


class RingWatcher:
    """The last ``nodetool status`` of this node, refreshed in the background (see the module docstring)."""

    def __init__(
        self,
        argv: Sequence[str],
        refresh_seconds: float = 5.0,
        max_age_seconds: float = 60.0,
        timeout_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._argv = tuple(argv)
        self._refresh = refresh_seconds
        self._max_age = max_age_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._nodes: list[RingNode] | None = None
        self._at: float | None = None
        self._running = False
        self._unavailable = False  # no nodetool at all: never try again

    def view(self) -> list[RingNode] | None:
        """The last view if it is fresh enough (else None); starts a refresh when it is due."""
        with self._lock:
            now = self._clock()
            due = self._at is None or now - self._at >= self._refresh
            if due and not self._running and not self._unavailable:
                self._running = True
                threading.Thread(target=self._refresh_once, name="nodetool-status", daemon=True).start()
            if self._at is None or now - self._at > self._max_age:
                return None
            return self._nodes

    def refresh(self) -> list[RingNode] | None:
        """Run nodetool now (blocking) and keep its view; None if it failed."""
        try:
            done = subprocess.run(  # noqa: S603 (a fixed argv: nodetool.argv(config, "status"))
                self._argv, capture_output=True, text=True, timeout=self._timeout, check=False
            )
        except FileNotFoundError:
            log.warning("nodetool not found (%s): the ring view is not reported", self._argv[0])
            with self._lock:
                self._unavailable = True
            return None
        except subprocess.TimeoutExpired:
            log.warning("nodetool status took more than %.0f s", self._timeout)
            return None
        if done.returncode != 0:
            log.warning("nodetool status failed (%d): %s", done.returncode, done.stderr.strip()[-300:])
            return None
        nodes = parse_status(done.stdout)
        with self._lock:
            self._nodes, self._at = nodes, self._clock()
        return nodes

    def _refresh_once(self) -> None:
        try:
            self.refresh()
        finally:
            with self._lock:
                self._running = False
