"""The agent's view of a Cassandra ring: StorageService's attributes (read over Jolokia) turned into what
``nodetool status`` prints, refreshed in the background."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from kubetrove.agent.engines.cassandra.ring import (
    ATTRIBUTES,
    STORAGE_SERVICE,
    RingUnreadable,
    RingWatcher,
    jolokia_url,
    parse_reply,
    read_ring,
    ring_nodes,
)
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import RingNode

UN, DN, UJ = (
    "1c5c2a6b-659c-4ffd-9d0f-c9612f8bbc39",
    "a87e1605-367b-44f3-a63b-e6f43d569f80",
    "0f6a1c1e-0000-4000-8000-000000000005",
)


def attributes(**changes: Any) -> dict[str, Any]:
    """Three nodes as Cassandra 5.0.9 gives them: .3 up, .10 down, .5 joining (no load yet); two tokens
    each (16 in a real ring), the token map in token order."""
    value: dict[str, Any] = {
        "LiveNodesWithPort": ["127.0.0.3:7000", "127.0.0.5:7000"],
        "UnreachableNodesWithPort": ["127.0.0.10:7000"],
        "JoiningNodesWithPort": ["127.0.0.5:7000"],
        "LeavingNodesWithPort": [],
        "MovingNodesWithPort": [],
        "LoadMapWithPort": {"127.0.0.3:7000": "85.08 KiB", "127.0.0.10:7000": "85.12 KiB"},
        "TokenToEndpointWithPortMap": {
            "-9099426837311476839": "127.0.0.10:7000",
            "-5170447231163339043": "127.0.0.3:7000",
            "-1044006411470281123": "127.0.0.5:7000",
            "2196231187393463311": "127.0.0.3:7000",
            "5533409549468627545": "127.0.0.10:7000",
            "8117318711329880401": "127.0.0.5:7000",
        },
        "EndpointWithPortToHostId": {"127.0.0.3:7000": UN, "127.0.0.10:7000": DN, "127.0.0.5:7000": UJ},
    }
    return {**value, **changes}


def test_each_node_as_nodetool_status_prints_it_in_address_order() -> None:
    assert ring_nodes(attributes()) == [
        RingNode(address="127.0.0.3", host_id=UN, state="UN", load="85.08 KiB", tokens=2),
        RingNode(address="127.0.0.5", host_id=UJ, state="UJ", load=None, tokens=2),
        RingNode(address="127.0.0.10", host_id=DN, state="DN", load="85.12 KiB", tokens=2),
    ]


def test_joining_wins_over_leaving_then_moving_as_in_status_java() -> None:
    both = attributes(
        LeavingNodesWithPort=["127.0.0.5:7000", "127.0.0.3:7000"], MovingNodesWithPort=["127.0.0.10:7000"]
    )
    assert [n.state for n in ring_nodes(both)] == ["UL", "UJ", "DM"]


def test_a_node_neither_live_nor_unreachable_or_without_host_id_is_left_out() -> None:
    # nodetool prints "?N" and "null" for these; the ring view never showed such a line.
    unknown = attributes(UnreachableNodesWithPort=[])
    assert [n.address for n in ring_nodes(unknown)] == ["127.0.0.3", "127.0.0.5"]
    no_id = attributes(EndpointWithPortToHostId={"127.0.0.3:7000": UN, "127.0.0.10:7000": DN})
    assert [n.address for n in ring_nodes(no_id)] == ["127.0.0.3", "127.0.0.10"]


def test_ipv6_endpoints_lose_their_brackets_and_port() -> None:
    v6 = "[fd00:0:0:0:0:0:0:7]:7000"
    one = {
        "LiveNodesWithPort": [v6],
        "UnreachableNodesWithPort": [],
        "JoiningNodesWithPort": [],
        "LeavingNodesWithPort": [],
        "MovingNodesWithPort": [],
        "LoadMapWithPort": {v6: "1.5 MiB"},
        "TokenToEndpointWithPortMap": {"1": v6},
        "EndpointWithPortToHostId": {v6: UN},
    }
    assert [(n.address, n.state) for n in ring_nodes(one)] == [("fd00:0:0:0:0:0:0:7", "UN")]


def test_replies_jolokia_refused_or_mangled_are_unreadable() -> None:
    ok = {"request": {"type": "read"}, "value": attributes(), "status": 200, "timestamp": 1}
    assert len(parse_reply(json.dumps(ok).encode())) == 3
    # Before StorageService is registered (the agent starts with the JVM), and what the policy refuses.
    not_yet = {"error_type": "javax.management.InstanceNotFoundException", "error": "no bean", "status": 404}
    forbidden = {"error": "Reading attribute Foo is forbidden for MBean ...", "status": 403}
    partial = {"value": {"LiveNodesWithPort": []}, "status": 200}
    for body, message in (
        (not_yet, "(404): no bean"),
        (forbidden, "(403): Reading attribute Foo is forbidden"),
        (partial, "attributes missing: UnreachableNodesWithPort"),
    ):
        with pytest.raises(RingUnreadable, match=re.escape(message)):
            parse_reply(json.dumps(body).encode())
    with pytest.raises(RingUnreadable, match="not JSON"):
        parse_reply(b"<html>")


class _Jolokia(BaseHTTPRequestHandler):
    """A stand-in for the agent's HTTP side: records the request, answers ``reply``."""

    reply: ClassVar[bytes] = b""
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).seen.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jolokia() -> Iterator[tuple[str, type[_Jolokia]]]:
    handler = type("Handler", (_Jolokia,), {"seen": [], "reply": b""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jolokia/", handler
    finally:
        server.shutdown()
        server.server_close()


def test_one_post_reads_every_attribute_and_ignores_http_proxy(
    jolokia: tuple[str, type[_Jolokia]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = jolokia
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing there: a proxied request would fail
    handler.reply = json.dumps({"value": attributes(), "status": 200}).encode()
    assert [n.state for n in read_ring(url, timeout=5)] == ["UN", "UJ", "DN"]
    assert handler.seen == [{"type": "read", "mbean": STORAGE_SERVICE, "attribute": list(ATTRIBUTES)}]


def test_nothing_listening_is_unreadable_not_an_error() -> None:
    with pytest.raises(RingUnreadable, match=r"Jolokia at http://127\.0\.0\.1:1/jolokia/"):
        read_ring("http://127.0.0.1:1/jolokia/", timeout=5)


def test_the_endpoint_is_loopback_on_the_configured_port() -> None:
    assert jolokia_url(EngineConfig()) == "http://127.0.0.1:8778/jolokia/"
    assert jolokia_url(EngineConfig(host="10.0.0.7", options={"jolokia_port": "18778"})) == (
        "http://127.0.0.1:18778/jolokia/"
    )


def _wait(watcher: RingWatcher) -> list[RingNode] | None:
    deadline = time.monotonic() + 10
    while (view := watcher.view()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return view


def test_the_view_comes_from_a_background_read_and_is_dropped_when_stale() -> None:
    now = [0.0]
    reads: list[float] = []
    nodes = ring_nodes(attributes())

    def read() -> list[RingNode]:
        reads.append(now[0])
        if now[0] >= 30:
            raise RingUnreadable("the node stopped answering")
        return nodes

    watcher = RingWatcher(read, refresh_seconds=1, max_age_seconds=60, clock=lambda: now[0])
    assert watcher.view() is None  # nothing yet: the first read starts in the background
    assert _wait(watcher) == nodes
    assert len(reads) == 1  # not due again within the second
    now[0] = 30.0  # due: this read fails, the last view is still served (30 s old)
    assert watcher.view() == nodes
    deadline = time.monotonic() + 10
    while len(reads) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    now[0] = 61.0  # no read got through for a minute: say nothing rather than something old
    assert watcher.view() is None


def test_an_unreadable_ring_is_not_reported_and_is_tried_again() -> None:
    calls: list[int] = []

    def read() -> list[RingNode]:
        calls.append(1)
        raise RingUnreadable("connection refused")

    watcher = RingWatcher(read)
    assert watcher.refresh() is None and watcher.refresh() is None
    assert len(calls) == 2  # Cassandra may just be starting: never given up
