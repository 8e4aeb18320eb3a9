"""The agent's HTTP API against FerretDB v1.24 (MongoDB wire protocol), checked with pymongo.

FerretDB stands in for mongod, which cannot be obtained here. What it does not implement is asserted
as such (the agent answers 501 ``unsupported``) and covered by tests/unit/agent/test_mongodb_recorded.py:
roles in createUser/updateUser, authorization (any FerretDB v1 user may do anything), replica sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientSession
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from tests.integration.conftest_servers_nosql import put_json as put
from tests.integration.servers.ferretdb import FerretDBServer

HOSTILE = ["x'; db.dropDatabase(); //", "a.b", "a$b", "a/b", "sp ace", "a" * 64]


@pytest.fixture
def mongo(ferretdb_server: FerretDBServer) -> Iterator[MongoClient[Any]]:
    """pymongo as the server's admin."""
    client = login(ferretdb_server, ferretdb_server.user, ferretdb_server.password)
    yield client
    client.close()


def login(server: FerretDBServer, user: str, password: str) -> MongoClient[Any]:
    return MongoClient(
        server.host,
        server.port,
        username=user,
        password=password,
        authSource="admin",
        directConnection=True,
        serverSelectionTimeoutMS=5000,
    )


def can_log_in(server: FerretDBServer, user: str, password: str) -> bool:
    client = login(server, user, password)
    try:
        client.admin.command("ping")
        return True
    except OperationFailure as exc:
        if exc.code == 18:  # AuthenticationFailed; anything else is a real error
            return False
        raise
    finally:
        client.close()


async def test_status_of_a_standalone(mongodb_agent: ClientSession) -> None:
    resp = await mongodb_agent.get("/v1/status")
    body = await resp.json()
    assert resp.status == 200
    assert body["role"] == "standalone" and body["read_only"] is False and body["healthy"] is True
    assert body["version"] == "7.0.42"  # the MongoDB version FerretDB v1.24 reports
    assert body["position"] is None and body["lag_seconds"] is None


async def test_database_create_is_idempotent_and_drop_404s_when_missing(
    mongodb_agent: ClientSession, mongo: MongoClient[Any]
) -> None:
    assert await put(mongodb_agent, "/v1/databases/inventory", {}) == (200, {"ok": True, "detail": "created"})
    assert "inventory" in mongo.list_database_names()
    assert mongo["inventory"].list_collection_names() == ["_kubetrove"]  # the marker keeps it listed
    assert await put(mongodb_agent, "/v1/databases/inventory", {}) == (200, {"ok": True, "detail": "exists"})
    listed = await (await mongodb_agent.get("/v1/databases")).json()
    assert "inventory" in listed["names"] and "admin" not in listed["names"]

    assert (await mongodb_agent.delete("/v1/databases/inventory")).status == 200
    assert "inventory" not in mongo.list_database_names()
    missing = await mongodb_agent.delete("/v1/databases/inventory")
    assert missing.status == 404 and (await missing.json())["error"] == "not_found"


async def test_user_password_lifecycle(mongodb_agent: ClientSession, ferretdb_server: FerretDBServer) -> None:
    assert await put(mongodb_agent, "/v1/users/app", {"password": "pw-1"}) == (
        200,
        {"ok": True, "detail": "created"},
    )
    assert can_log_in(ferretdb_server, "app", "pw-1")
    assert not can_log_in(ferretdb_server, "app", "wrong")
    assert await put(mongodb_agent, "/v1/users/app", {"password": "pw-1"}) == (
        200,
        {"ok": True, "detail": "updated"},
    )
    assert (await put(mongodb_agent, "/v1/users/app", {"password": "pw-2"}))[0] == 200
    assert not can_log_in(ferretdb_server, "app", "pw-1")
    assert can_log_in(ferretdb_server, "app", "pw-2")

    assert (await mongodb_agent.delete("/v1/users/app")).status == 200
    assert not can_log_in(ferretdb_server, "app", "pw-2")
    assert (await mongodb_agent.delete("/v1/users/app")).status == 404


async def test_roles_are_not_implemented_by_ferretdb(
    mongodb_agent: ClientSession, mongo: MongoClient[Any]
) -> None:
    body = {"password": "pw", "grants": [{"database": "shop", "privileges": ["read"]}]}
    status, reply = await put(mongodb_agent, "/v1/users/reader", body)
    assert (status, reply["error"]) == (501, "unsupported")
    assert mongo.admin.command({"usersInfo": "reader"})["users"] == []


async def test_agent_never_manages_its_own_login(
    mongodb_agent: ClientSession, ferretdb_server: FerretDBServer
) -> None:
    status, reply = await put(mongodb_agent, f"/v1/users/{ferretdb_server.user}", {"password": "stolen"})
    assert (status, reply["error"]) == (409, "conflict")
    assert can_log_in(ferretdb_server, ferretdb_server.user, ferretdb_server.password)


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_are_refused_and_nothing_runs(
    mongodb_agent: ClientSession, mongo: MongoClient[Any], name: str
) -> None:
    before = mongo.list_database_names()
    for path, body in [
        (f"/v1/databases/{quote(name, safe='')}", {}),
        (f"/v1/users/{quote(name, safe='')}", {"password": "pw"}),
        ("/v1/users/victim", {"password": "pw", "grants": [{"database": name, "privileges": ["read"]}]}),
    ]:
        status, reply = await put(mongodb_agent, path, body)
        assert (status, reply["error"]) == (400, "bad_name"), path
    assert mongo.list_database_names() == before
    assert mongo.admin.command({"usersInfo": "victim"})["users"] == []


@pytest.mark.parametrize("name", ["admin", "local", "config"])
async def test_system_databases_are_reserved(mongodb_agent: ClientSession, name: str) -> None:
    assert (await mongodb_agent.put(f"/v1/databases/{name}", json={})).status == 400
    assert (await mongodb_agent.delete(f"/v1/databases/{name}")).status == 400


@pytest.mark.parametrize("route", ["promote", "fence", "stop"])
async def test_replica_set_routes_on_a_standalone_are_unsupported(
    mongodb_agent: ClientSession, route: str
) -> None:
    resp = await mongodb_agent.post(f"/v1/replication/{route}")
    assert resp.status == 501 and (await resp.json())["error"] == "unsupported"
