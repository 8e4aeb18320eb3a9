"""The agent's HTTP API against a real Cassandra 5.0 node, checked with cassandra-driver as the roles."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientSession
from cassandra import Unauthorized
from cassandra.cluster import NoHostAvailable

from kubetrove.agent.engines.base import EngineUnavailable
from kubetrove.agent.engines.config import EngineConfig
from tests.integration.conftest import read_until
from tests.integration.conftest_servers_nosql import put_json as put
from tests.integration.servers import cassandra
from tests.integration.servers.cassandra import CassandraServer

Agent = ClientSession
HOSTILE = ["x'; DROP KEYSPACE system_auth; --", 'a"b', "has-hyphen", "system_evil", "a" * 49, "sp ace"]


def cql(server: CassandraServer, user: str | None = None, password: str | None = None) -> Any:
    """A session logged in as ``user`` (the superuser by default)."""
    return server.session(user, password)


def replication(server: CassandraServer, keyspace: str) -> dict[str, str] | None:
    with cql(server) as s:
        row = s.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name=%s", (keyspace,)
        ).one()
    return dict(row.replication) if row else None


async def test_status_is_a_member_without_position(cassandra_agent: Agent) -> None:
    resp = await cassandra_agent.get("/v1/status")
    body = await resp.json()
    assert resp.status == 200
    assert body["role"] == "member" and body["healthy"] is True and body["read_only"] is False
    assert body["version"].startswith("5.0.") and body["position"] is None
    assert body["connections"] >= 1


async def test_status_carries_the_ring_as_nodetool_status_prints_it(
    cassandra_agent: Agent, cassandra_server: CassandraServer, tmp_path: Path
) -> None:
    """The ring view is read from the node's Jolokia agent (StorageService), not from nodetool: the
    same node, state, host id, tokens and load as ``nodetool status`` (SimpleSnitch, one token)."""
    nodetool = cassandra.nodetool_wrapper(tmp_path / "bin")
    with cql(cassandra_server) as s:
        host_id = str(s.execute("SELECT host_id FROM system.local").one().host_id)

    async def agent_view() -> list[dict[str, Any]]:
        return (await (await cassandra_agent.get("/v1/status")).json())["ring"] or []

    ring = await read_until(agent_view, bool, "the agent's first ring view")
    argv = [str(nodetool), "-h", "127.0.0.1", "-p", str(cassandra_server.jmx_port), "status"]
    printed = (
        await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=True)
    ).stdout
    (line,) = [x.split() for x in printed.splitlines() if x.startswith(("UN", "DN"))]
    # One token per node: nodetool prints its "Token" layout, "UN  127.0.0.1  104.5 KiB  100.0%  <host id>
    # <token>  rack1" (no token count; the load is two words). The agent still counts the tokens.
    assert ring == [
        {
            "address": line[1],
            "host_id": line[5],
            "state": line[0],
            "load": f"{line[2]} {line[3]}",
            "tokens": 1,
        }
    ]
    assert line[5] == host_id and line[:2] == ["UN", "127.0.0.1"]


def test_the_jolokia_agent_answers_only_the_ring_attributes(cassandra_server: CassandraServer) -> None:
    """On the real node, with the image's policy: the ring's attributes are readable; any other read,
    any write, any operation, list and search are refused (403), and it listens on 127.0.0.1 only."""
    import json
    import urllib.request

    url = f"http://127.0.0.1:{cassandra_server.jolokia_port}/jolokia/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def ask(body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
        with opener.open(request, timeout=10) as reply:
            return dict(json.loads(reply.read()))

    service = "org.apache.cassandra.db:type=StorageService"
    assert ask({"type": "read", "mbean": service, "attribute": "LiveNodesWithPort"})["status"] == 200
    # Harmless if they were let through (the session's node is shared): a write of the value it has, an
    # operation that only reads.
    refused = [
        {"type": "read", "mbean": service, "attribute": "ClusterName"},
        {"type": "read", "mbean": service},
        {"type": "read", "mbean": "java.lang:type=Runtime", "attribute": "InputArguments"},
        {"type": "write", "mbean": service, "attribute": "IncrementalBackupsEnabled", "value": False},
        {"type": "exec", "mbean": service, "operation": "getNaturalEndpoints", "arguments": ["system", "k"]},
        {"type": "exec", "mbean": "java.lang:type=Memory", "operation": "gc"},
        {"type": "list"},
        {"type": "search", "mbean": "*:*"},
    ]
    for body in refused:
        assert ask(body)["status"] == 403, body
    # Bound to 127.0.0.1, not to every address: another loopback address is refused.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", cassandra_server.jolokia_port), timeout=5).close()


async def test_keyspace_gets_the_requested_replication(
    cassandra_agent: Agent, cassandra_server: CassandraServer
) -> None:
    # More replicas than nodes: refused, naming the field, and nothing is created.
    status, refused = await put(cassandra_agent, "/v1/databases/Orders", {"replication_factor": 2})
    assert status == 400 and "replication_factor 2 is above the ring size (1 node)" in refused["detail"]
    assert replication(cassandra_server, "Orders") is None
    assert await put(cassandra_agent, "/v1/databases/Orders", {"replication_factor": 1}) == (
        200,
        {"ok": True, "detail": "created"},
    )
    simple = "org.apache.cassandra.locator.SimpleStrategy"
    assert replication(cassandra_server, "Orders") == {"class": simple, "replication_factor": "1"}
    # Idempotent (a ring converging on a changed factor: test_cassandra_ring_agents.py).
    assert (await put(cassandra_agent, "/v1/databases/Orders", {"replication_factor": 1}))[1][
        "detail"
    ] == "exists"
    listed = await (await cassandra_agent.get("/v1/databases")).json()
    assert "Orders" in listed["names"] and not any(n.startswith("system") for n in listed["names"])

    assert (await cassandra_agent.delete("/v1/databases/Orders")).status == 200
    assert replication(cassandra_server, "Orders") is None
    missing = await cassandra_agent.delete("/v1/databases/Orders")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"


async def test_roles_can_do_exactly_what_their_grant_allows(
    cassandra_agent: Agent, cassandra_server: CassandraServer
) -> None:
    assert (await put(cassandra_agent, "/v1/databases/shop", {}))[0] == 200
    with cql(cassandra_server) as s:
        s.execute("CREATE TABLE IF NOT EXISTS shop.items (id int PRIMARY KEY, name text)")
        s.execute("INSERT INTO shop.items (id, name) VALUES (1, 'one')")
    read = {"password": "r-pw", "grants": [{"database": "shop", "privileges": ["read"]}]}
    write = {"password": "w-pw", "grants": [{"database": "shop", "privileges": ["readWrite"]}]}
    assert await put(cassandra_agent, "/v1/users/reader", read) == (200, {"ok": True, "detail": "created"})
    assert (await put(cassandra_agent, "/v1/users/writer", write))[0] == 200

    insert = "INSERT INTO shop.items (id, name) VALUES (2, 'two')"
    with cql(cassandra_server, "reader", "r-pw") as s:
        assert s.execute("SELECT name FROM shop.items WHERE id = 1").one().name == "one"
        with pytest.raises(Unauthorized):
            s.execute(insert)
    with cql(cassandra_server, "writer", "w-pw") as s:
        s.execute(insert)
        assert s.execute("SELECT name FROM shop.items WHERE id = 2").one().name == "two"
        with pytest.raises(Unauthorized):
            s.execute("DROP TABLE shop.items")

    # PUT twice: same state, no error (the password is unchanged, so no rate-limited ALTER either).
    assert await put(cassandra_agent, "/v1/users/reader", read) == (200, {"ok": True, "detail": "updated"})
    with cql(cassandra_server) as s:
        rows = s.execute("SELECT resource, permissions FROM system_auth.role_permissions WHERE role='reader'")
        assert [(r.resource, set(r.permissions)) for r in rows] == [("data/shop", {"SELECT"})]

    # PUT replaces grants exactly: no grant left means no SELECT either.
    assert (await put(cassandra_agent, "/v1/users/reader", {"password": "r-pw", "grants": []}))[0] == 200
    with cql(cassandra_server, "reader", "r-pw") as s, pytest.raises(Unauthorized):
        s.execute("SELECT name FROM shop.items WHERE id = 1")


async def test_password_change_and_drop(cassandra_agent: Agent, cassandra_server: CassandraServer) -> None:
    assert (await put(cassandra_agent, "/v1/users/rotating", {"password": "old-pw"}))[0] == 200
    assert (await put(cassandra_agent, "/v1/users/rotating", {"password": "new-pw"}))[0] == 200
    with pytest.raises(NoHostAvailable), cql(cassandra_server, "rotating", "old-pw"):
        pass
    with cql(cassandra_server, "rotating", "new-pw") as s:
        assert s.execute("SELECT release_version FROM system.local").one()

    assert (await cassandra_agent.delete("/v1/users/rotating")).status == 200
    with pytest.raises(NoHostAvailable), cql(cassandra_server, "rotating", "new-pw"):
        pass
    assert (await cassandra_agent.delete("/v1/users/rotating")).status == 404


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_are_refused_and_nothing_runs(
    cassandra_agent: Agent, cassandra_server: CassandraServer, name: str
) -> None:
    with cql(cassandra_server) as s:
        before = {r.keyspace_name for r in s.execute("SELECT keyspace_name FROM system_schema.keyspaces")}
    for path, body in [
        (f"/v1/databases/{quote(name, safe='')}", {}),
        (f"/v1/users/{quote(name, safe='')}", {"password": "pw"}),
        ("/v1/users/victim", {"password": "pw", "grants": [{"database": name, "privileges": ["read"]}]}),
    ]:
        status, body_out = await put(cassandra_agent, path, body)
        assert (status, body_out["error"]) == (400, "bad_name"), path
    with cql(cassandra_server) as s:
        after = {r.keyspace_name for r in s.execute("SELECT keyspace_name FROM system_schema.keyspaces")}
        assert s.execute("SELECT role FROM system_auth.roles WHERE role = 'victim'").one() is None
    assert after == before


async def test_superuser_is_not_manageable(cassandra_agent: Agent) -> None:
    status, body = await put(cassandra_agent, "/v1/users/cassandra", {"password": "x"})
    assert status == 400 and "reserved" in body["detail"]


@pytest.mark.parametrize("route", ["promote", "fence", "stop"])
async def test_replication_routes_are_unsupported(cassandra_agent: Agent, route: str) -> None:
    resp = await cassandra_agent.post(f"/v1/replication/{route}")
    assert resp.status == 501 and (await resp.json())["error"] == "unsupported"


async def test_parameters_need_a_restart_unless_already_live(cassandra_agent: Agent) -> None:
    body = {"parameters": {"concurrent_compactors": "2", "compaction_throughput": "1MiB/s"}}
    status, reply = await put(cassandra_agent, "/v1/parameters", body)
    # concurrent_compactors is 2 on a 2-core machine by default (min(cores, disks) bounded to [2, 8]).
    assert status == 200
    assert reply == {"applied": ["concurrent_compactors"], "needs_restart": ["compaction_throughput"]}


async def test_superuser_roles_are_refused(cassandra_agent: Agent, cassandra_server: CassandraServer) -> None:
    with cql(cassandra_server) as s:
        s.execute(
            "CREATE ROLE IF NOT EXISTS ops WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = 'ops-pw'"
        )
    status, body = await put(cassandra_agent, "/v1/users/ops", {"password": "taken-over"})
    assert (status, body["error"]) == (409, "conflict")
    assert (await cassandra_agent.delete("/v1/users/ops")).status == 409
    with cql(cassandra_server, "ops", "ops-pw") as s:  # untouched
        assert s.execute("SELECT release_version FROM system.local").one()


async def test_network_topology_strategy_when_a_datacenter_is_configured(
    start_agent: Any, cassandra_server: CassandraServer
) -> None:
    s = cassandra_server
    # SimpleSnitch puts every node in "datacenter1".
    config = EngineConfig(
        port=s.port, user=s.user, password=s.password, options={"datacenter": "datacenter1"}
    )
    agent = await start_agent("cassandra", config)
    assert (await agent.client.ensure_database("metrics", replication_factor=1)).detail == "created"
    nts = "org.apache.cassandra.locator.NetworkTopologyStrategy"
    assert replication(cassandra_server, "metrics") == {"class": nts, "datacenter1": "1"}


def test_the_agent_gives_a_new_ring_the_secrets_superuser_password(tmp_path: Path) -> None:
    """A ring's first start: the superuser is cassandra/cassandra; the agent, configured with the credentials
    Secret's password, replaces it once and works on; the default password no longer opens the node."""
    from cassandra import AuthenticationFailed

    from kubetrove.agent.engines.cassandra.driver import CassandraDriver

    server = cassandra.start(tmp_path / "fresh", heap="512m")
    try:
        config = EngineConfig(port=server.port, user="cassandra", password="S3cret-from-the-Secret")
        driver = CassandraDriver(config)
        try:
            assert driver.list_databases() == []  # logged in: the password was set on the way
        finally:
            driver.close()
        with pytest.raises(NoHostAvailable) as refused, server.session():  # the default: refused now
            pass
        assert any(isinstance(e, AuthenticationFailed) for e in refused.value.errors.values())
        with server.session("cassandra", "S3cret-from-the-Secret") as s:
            assert s.execute("SELECT role FROM system_auth.roles WHERE role = 'cassandra'").one()
        again = CassandraDriver(config)  # a restarted agent: the Secret's password works at once
        try:
            assert again.list_databases() == []
        finally:
            again.close()
        wrong = CassandraDriver(EngineConfig(port=server.port, user="cassandra", password="not-it"))
        try:  # neither the Secret's nor the default: refused, nothing changed
            with pytest.raises(EngineUnavailable, match=r"AuthenticationFailed|Bad credentials"):
                wrong.list_databases()
        finally:
            wrong.close()
    finally:
        server.stop()
