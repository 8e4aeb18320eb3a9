"""The agent's view of a Cassandra ring: ``nodetool status`` parsed, refreshed in the background."""

from __future__ import annotations

import sys
import time

from kubetrove.agent.engines.cassandra.ring import RingWatcher, parse_status

# Cassandra 5.0.9's output (a joining node has no load yet), logging noise above it as nodetool prints it
# without a logback config.
STATUS = """\
15:39:30.125 [main] DEBUG io.netty.util.internal.InternalThreadLocalMap -- -Dio.netty...: 1024
Datacenter: datacenter1
=======================
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address    Load       Tokens  Owns (effective)  Host ID                               Rack
UN  127.0.0.3  85.08 KiB  16      59.3%             1c5c2a6b-659c-4ffd-9d0f-c9612f8bbc39  rack1
DN  127.0.0.4  85.12 KiB  16      76.0%             a87e1605-367b-44f3-a63b-e6f43d569f80  rack1
UJ  127.0.0.5  ?          16      ?                 0f6a1c1e-0000-4000-8000-000000000005  rack1
"""


def test_every_node_line_is_read_and_nothing_else() -> None:
    nodes = parse_status(STATUS)
    assert [(n.state, n.address, n.load, n.tokens) for n in nodes] == [
        ("UN", "127.0.0.3", "85.08 KiB", 16),
        ("DN", "127.0.0.4", "85.12 KiB", 16),
        ("UJ", "127.0.0.5", None, 16),
    ]
    assert nodes[0].host_id == "1c5c2a6b-659c-4ffd-9d0f-c9612f8bbc39"


def _wait(watcher: RingWatcher) -> list[object] | None:
    deadline = time.monotonic() + 10
    while (view := watcher.view()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return view  # type: ignore[return-value]


def test_the_view_comes_from_a_background_run_and_is_dropped_when_stale() -> None:
    now = [0.0]
    script = f"import sys; sys.stdout.write({STATUS!r})"
    watcher = RingWatcher(
        [sys.executable, "-c", script], refresh_seconds=5, max_age_seconds=60, clock=lambda: now[0]
    )
    assert watcher.view() is None  # nothing yet: the first run starts in the background
    view = _wait(watcher)
    assert view is not None and len(view) == 3
    now[0] = 61.0  # no refresh got through for a minute: say nothing rather than something old
    assert watcher.view() is None


def test_without_nodetool_the_ring_is_simply_not_reported() -> None:
    watcher = RingWatcher(["/nonexistent/nodetool", "status"])
    assert watcher.refresh() is None
    assert watcher.view() is None and watcher.view() is None  # and it is not tried again
