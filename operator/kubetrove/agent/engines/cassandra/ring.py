"""The ring as this node sees it, as ``nodetool status`` shows it: per node Up/Down (the failure
detector's verdict), Normal/Joining/Leaving/Moving, load, token count and host id.

Where it is read: the node's StorageService MBean, the attributes ``nodetool status`` itself reads
(Cassandra 5.0.9's tools/nodetool/Status.java through NodeProbe; the ``*WithPort`` variants, keyed by
``address:storage port``), over HTTP from the Jolokia JVM agent the engine JVM loads on 127.0.0.1
(hack/images/files/cassandra.sh; its policy, hack/images/files/jolokia-access.xml, allows reading these
attributes and nothing else). https://jolokia.org/reference/html/manual/jolokia_protocol.html

Why not CQL: no table says whether a peer is up. 5.0's ``system_views.gossip_info`` has status, load
and host id but no liveness (a killed node stays NORMAL there); the failure detector's verdict is on
JMX only. Why not nodetool: it is a JVM, ~75 MiB and ~1.5 s of CPU per call; run every 5 s it cost a
third of a core per node (benchmarks/cassandra_ring_view.py has the figures). It stays for the rare
operations (snapshot, decommission, repair, verify: nodetool.py).

``ring_nodes`` applies Status.java's rules to the attributes:
- the nodes are the endpoints of TokenToEndpointWithPortMap (normal and bootstrapping tokens); the
  token count is theirs in that map;
- U if in LiveNodesWithPort, else D if in UnreachableNodesWithPort, else "?"; then J (joining), L
  (leaving), M (moving), else N, in that order;
- the load is LoadMapWithPort's ("?" for none: None here); the host id EndpointWithPortToHostId's;
- the address is the endpoint without its port (nodetool status without ``-pp``).
A node with status "?" or without a host id is left out, as the nodetool parser before this one left
out its line. Nodes come in address order (nodetool groups them by datacenter; nothing here needs it).

The read is cheap (one HTTP request, a few milliseconds), but the node may be slow or down: a
background thread refreshes the view at most every ``refresh_seconds`` and ``/v1/status`` serves the
last one. Invariant: what is served is never older than ``max_age_seconds``; past that the view is
dropped (None) rather than shown stale, so a node that stopped answering never reports an old "UN".
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import RingNode

log = logging.getLogger(__name__)

DEFAULT_JOLOKIA_PORT = "8778"  # Jolokia's own default; hack/images/files/cassandra.sh's JOLOKIA_PORT
STORAGE_SERVICE = "org.apache.cassandra.db:type=StorageService"
# What Status.java reads (NodeProbe with withPort=true); jolokia-access.xml allows exactly these.
ATTRIBUTES = (
    "LiveNodesWithPort",
    "UnreachableNodesWithPort",
    "JoiningNodesWithPort",
    "LeavingNodesWithPort",
    "MovingNodesWithPort",
    "LoadMapWithPort",
    "TokenToEndpointWithPortMap",
    "EndpointWithPortToHostId",
)
# No proxy, whatever HTTP_PROXY says: the engine is on this pod's loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RingUnreadable(Exception):
    """The engine's Jolokia agent did not give the ring (not started yet, refused, malformed)."""


def jolokia_url(config: EngineConfig) -> str:
    """The engine's Jolokia endpoint: 127.0.0.1 (it listens there only), ``options["jolokia_port"]``."""
    return f"http://127.0.0.1:{config.options.get('jolokia_port', DEFAULT_JOLOKIA_PORT)}/jolokia/"


def _address(endpoint: str) -> str:
    """``10.0.0.7:7000`` -> ``10.0.0.7``; ``[::1]:7000`` -> ``::1`` (InetAddressAndPort's format)."""
    host = endpoint.rpartition(":")[0] if ":" in endpoint else endpoint
    return host[1:-1] if host.startswith("[") else host


def _order(node: RingNode) -> tuple[int, Any, str]:
    try:
        ip = ipaddress.ip_address(node.address)
    except ValueError:
        return (2, 0, node.address)
    return (ip.version, int(ip), node.address)


def ring_nodes(attributes: Mapping[str, Any]) -> list[RingNode]:
    """The nodes ``nodetool status`` would print, from StorageService's ``ATTRIBUTES`` (module docstring)."""
    missing = [a for a in ATTRIBUTES if a not in attributes]
    if missing:
        raise RingUnreadable(f"StorageService attributes missing: {', '.join(missing)}")
    live, unreachable = set(attributes["LiveNodesWithPort"]), set(attributes["UnreachableNodesWithPort"])
    joining, leaving = set(attributes["JoiningNodesWithPort"]), set(attributes["LeavingNodesWithPort"])
    moving = set(attributes["MovingNodesWithPort"])
    loads: Mapping[str, str] = attributes["LoadMapWithPort"]
    host_ids: Mapping[str, str] = attributes["EndpointWithPortToHostId"]
    tokens = Counter(attributes["TokenToEndpointWithPortMap"].values())
    nodes = []
    for endpoint, count in tokens.items():
        status = "U" if endpoint in live else "D" if endpoint in unreachable else None
        host_id = host_ids.get(endpoint)
        if status is None or host_id is None:
            continue
        state = (
            "J" if endpoint in joining else "L" if endpoint in leaving else "M" if endpoint in moving else "N"
        )
        nodes.append(
            RingNode(
                address=_address(endpoint),
                host_id=host_id,
                state=status + state,
                load=loads.get(endpoint),
                tokens=count,
            )
        )
    return sorted(nodes, key=_order)


def parse_reply(body: bytes) -> list[RingNode]:
    """The nodes of a Jolokia read reply (``{"status": 200, "value": {attribute: value}}``)."""
    try:
        reply = json.loads(body)
    except ValueError as exc:
        raise RingUnreadable(f"Jolokia's reply is not JSON: {exc}") from None
    if not isinstance(reply, dict) or reply.get("status") != 200 or not isinstance(reply.get("value"), dict):
        error = reply.get("error") if isinstance(reply, dict) else None
        status = reply.get("status") if isinstance(reply, dict) else None
        raise RingUnreadable(f"Jolokia refused the read ({status}): {error or str(reply)[:200]}")
    return ring_nodes(reply["value"])


def read_ring(url: str, timeout: float) -> list[RingNode]:
    """One Jolokia read of ``ATTRIBUTES`` at ``url``; RingUnreadable if it does not answer them."""
    body = json.dumps({"type": "read", "mbean": STORAGE_SERVICE, "attribute": list(ATTRIBUTES)}).encode()
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1, built by jolokia_url)
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return parse_reply(response.read())
    except urllib.error.HTTPError as exc:  # Jolokia answers errors with 200 and a status; this is not it
        raise RingUnreadable(f"Jolokia at {url}: HTTP {exc.code}") from None
    except (OSError, urllib.error.URLError) as exc:
        raise RingUnreadable(f"Jolokia at {url}: {getattr(exc, 'reason', exc)}") from None


class RingWatcher:
    """The last ring view of this node, refreshed in the background (see the module docstring)."""

    def __init__(
        self,
        read: Callable[[], list[RingNode]],
        refresh_seconds: float = 1.0,
        max_age_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._refresh = refresh_seconds
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._nodes: list[RingNode] | None = None
        self._at: float | None = None
        self._started: float | None = None  # when the last refresh began
        self._running = False
        self._last_error = ""  # logged when it changes, not every second

    @classmethod
    def for_engine(cls, config: EngineConfig, timeout_seconds: float = 10.0) -> RingWatcher:
        """The watcher of the engine ``config`` reaches: its Jolokia agent on 127.0.0.1."""
        url = jolokia_url(config)
        return cls(lambda: read_ring(url, timeout_seconds))

    def view(self) -> list[RingNode] | None:
        """The last view if it is fresh enough (else None); starts a refresh when it is due."""
        with self._lock:
            now = self._clock()
            due = self._started is None or now - self._started >= self._refresh
            if due and not self._running:
                self._running, self._started = True, now
                threading.Thread(target=self._refresh_once, name="ring-view", daemon=True).start()
            if self._at is None or now - self._at > self._max_age:
                return None
            return self._nodes

    def refresh(self) -> list[RingNode] | None:
        """Read the ring now (blocking) and keep it; None if it could not be read."""
        try:
            nodes = self._read()
        except RingUnreadable as exc:
            if str(exc) != self._last_error:
                log.warning("ring view not read: %s", exc)
                self._last_error = str(exc)
            return None
        if self._last_error:
            log.info("ring view read again")
            self._last_error = ""
        with self._lock:
            self._nodes, self._at = nodes, self._clock()
        return nodes

    def _refresh_once(self) -> None:
        try:
            self.refresh()
        finally:
            with self._lock:
                self._running = False
