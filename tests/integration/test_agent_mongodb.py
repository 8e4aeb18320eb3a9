"""The agent's HTTP API against a real standalone mongod 6.0.5 with authorization, checked with pymongo.

Users get real built-in roles and real authorization: a ``read`` user is refused a write by the server,
a ``readWrite`` user is not. Replica-set routes are in test_agent_mongodb_replset.py.
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
from tests.integration.servers.mongod import VERSION, Mongod

HOSTILE = ["x'; db.dropDatabase(); //", "a.b", "a$b", "a/b", "sp ace", "a" * 64]
UNAUTHORIZED, AUTHENTICATION_FAILED = 13, 18  # https://www.mongodb.com/docs/manual/reference/error-codes/


@pytest.fixture
def mongo(mongod_server: Mongod) -> Iterator[MongoClient[Any]]:
    """pymongo as the server's root."""
    with mongod_server.client() as client:
        yield client


def can_log_in(server: Mongod, user: str, password: str) -> bool:
    with server.client(user, password) as client:
        try:
            client.admin.command("ping")
            return True
        except OperationFailure as exc:
            if exc.code == AUTHENTICATION_FAILED:  # anything else is a real error
                return False
            raise


def can_write(server: Mongod, user: str, password: str, database: str) -> bool:
    """Insert one document as ``user``; False when the server refuses it as unauthorized."""
    with server.client(user, password) as client:
        try:
            client[database]["orders"].insert_one({"by": user})
            return True
        except OperationFailure as exc:
            if exc.code == UNAUTHORIZED:
                return False
            raise


def can_read(server: Mongod, user: str, password: str, database: str) -> bool:
    with server.client(user, password) as client:
        try:
            client[database]["orders"].find_one()
            return True
        except OperationFailure as exc:
            if exc.code == UNAUTHORIZED:
                return False
            raise


def roles_of(mongo: MongoClient[Any], user: str) -> list[tuple[str, str]]:
    users = mongo.admin.command({"usersInfo": {"user": user, "db": "admin"}})["users"]
    return sorted((r["db"], r["role"]) for r in users[0]["roles"]) if users else []


async def test_status_of_a_standalone(mongodb_agent: ClientSession) -> None:
    resp = await mongodb_agent.get("/v1/status")
    body = await resp.json()
    assert resp.status == 200
    assert body["role"] == "standalone" and body["read_only"] is False and body["healthy"] is True
    assert body["version"] == VERSION
    assert body["position"] is None and body["lag_seconds"] is None
    assert body["connections"] >= 1  # serverStatus answered (FerretDB did not)


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


async def test_user_password_lifecycle(mongodb_agent: ClientSession, mongod_server: Mongod) -> None:
    assert await put(mongodb_agent, "/v1/users/app", {"password": "pw-1"}) == (
        200,
        {"ok": True, "detail": "created"},
    )
    assert can_log_in(mongod_server, "app", "pw-1")
    assert not can_log_in(mongod_server, "app", "wrong")
    assert await put(mongodb_agent, "/v1/users/app", {"password": "pw-1"}) == (
        200,
        {"ok": True, "detail": "updated"},
    )
    assert (await put(mongodb_agent, "/v1/users/app", {"password": "pw-2"}))[0] == 200
    assert not can_log_in(mongod_server, "app", "pw-1")
    assert can_log_in(mongod_server, "app", "pw-2")

    assert (await mongodb_agent.delete("/v1/users/app")).status == 200
    assert not can_log_in(mongod_server, "app", "pw-2")
    assert (await mongodb_agent.delete("/v1/users/app")).status == 404


async def test_a_read_user_is_refused_a_write_and_readwrite_is_not(
    mongodb_agent: ClientSession, mongod_server: Mongod, mongo: MongoClient[Any]
) -> None:
    await put(mongodb_agent, "/v1/databases/shop", {})
    await put(mongodb_agent, "/v1/databases/ledger", {})
    read = {"password": "pw", "grants": [{"database": "shop", "privileges": ["read"]}]}
    assert (await put(mongodb_agent, "/v1/users/reader", read))[0] == 200
    assert roles_of(mongo, "reader") == [("shop", "read")]
    assert can_read(mongod_server, "reader", "pw", "shop")
    assert not can_write(mongod_server, "reader", "pw", "shop")  # the server's authorization, not ours
    assert not can_read(mongod_server, "reader", "pw", "ledger")  # no grant there at all

    # A PUT replaces the grants: the same user now may write to shop, and still nothing on ledger.
    read_write = {"password": "pw", "grants": [{"database": "shop", "privileges": ["read", "readWrite"]}]}
    assert await put(mongodb_agent, "/v1/users/reader", read_write) == (
        200,
        {"ok": True, "detail": "updated"},
    )
    assert roles_of(mongo, "reader") == [("shop", "read"), ("shop", "readWrite")]
    assert can_write(mongod_server, "reader", "pw", "shop")
    assert not can_write(mongod_server, "reader", "pw", "ledger")

    # Back to read only: the write privilege is gone at once (updateUser replaces the role list).
    assert (await put(mongodb_agent, "/v1/users/reader", read))[0] == 200
    assert not can_write(mongod_server, "reader", "pw", "shop")
    assert (await mongodb_agent.delete("/v1/users/reader")).status == 200


async def test_admin_privilege_is_dbowner_of_that_database_only(
    mongodb_agent: ClientSession, mongod_server: Mongod, mongo: MongoClient[Any]
) -> None:
    body = {"password": "pw", "grants": [{"database": "crm", "privileges": ["admin"]}]}
    assert (await put(mongodb_agent, "/v1/users/owner", body))[0] == 200
    assert roles_of(mongo, "owner") == [("crm", "dbOwner")]
    with mongod_server.client("owner", "pw") as client:
        client["crm"]["leads"].create_index("email", unique=True)  # schema work: dbOwner may
        client["crm"]["leads"].drop()
        with pytest.raises(OperationFailure) as refused:
            client["shop"]["orders"].insert_one({})
        assert refused.value.code == UNAUTHORIZED
        with pytest.raises(OperationFailure) as refused:  # not a cluster administrator
            client.admin.command("createUser", "sneaky", pwd="pw", roles=["root"])
        assert refused.value.code == UNAUTHORIZED
    assert (await mongodb_agent.delete("/v1/users/owner")).status == 200


async def test_agent_never_manages_its_own_login_or_an_admin_user(
    mongodb_agent: ClientSession, mongod_server: Mongod, mongo: MongoClient[Any]
) -> None:
    status, reply = await put(mongodb_agent, f"/v1/users/{mongod_server.user}", {"password": "stolen"})
    assert (status, reply["error"]) == (409, "conflict")
    assert can_log_in(mongod_server, mongod_server.user, mongod_server.password)

    mongo.admin.command(
        "createUser", "dba", pwd="dba-pw", roles=[{"role": "userAdminAnyDatabase", "db": "admin"}]
    )
    try:
        for resp in [
            await mongodb_agent.put("/v1/users/dba", json={"password": "stolen"}),
            await mongodb_agent.delete("/v1/users/dba"),
        ]:
            assert (resp.status, (await resp.json())["error"]) == (409, "conflict")
        assert can_log_in(mongod_server, "dba", "dba-pw")
    finally:
        mongo.admin.command("dropUser", "dba")


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
async def test_system_databases_are_reserved(
    mongodb_agent: ClientSession, mongo: MongoClient[Any], name: str
) -> None:
    assert (await mongodb_agent.put(f"/v1/databases/{name}", json={})).status == 400
    assert (await mongodb_agent.delete(f"/v1/databases/{name}")).status == 400
    body = {"password": "pw", "grants": [{"database": name, "privileges": ["read"]}]}
    assert (await mongodb_agent.put("/v1/users/victim", json=body)).status == 400
    assert mongo.admin.command({"usersInfo": "victim"})["users"] == []


@pytest.mark.parametrize("route", ["promote", "fence", "stop"])
async def test_replica_set_routes_on_a_standalone_are_unsupported(
    mongodb_agent: ClientSession, route: str
) -> None:
    resp = await mongodb_agent.post(f"/v1/replication/{route}")
    assert resp.status == 501 and (await resp.json())["error"] == "unsupported"


async def test_dynamic_parameters_are_applied_live_and_startup_ones_need_a_restart(
    mongodb_agent: ClientSession, mongo: MongoClient[Any]
) -> None:
    # The catalog's names, as the operator sends them (datastores/mongodb/catalog.py).
    body = {
        "parameters": {
            "setParameter.cursorTimeoutMillis": "600001",
            "setParameter.notablescan": "false",
            "operationProfiling.slowOpThresholdMs": "250",
            "operationProfiling.slowOpSampleRate": "0.5",
            "net.maxIncomingConnections": "100",
        }
    }
    status, reply = await put(mongodb_agent, "/v1/parameters", body)
    assert status == 200
    assert reply["applied"] == [
        "operationProfiling.slowOpSampleRate",
        "operationProfiling.slowOpThresholdMs",
        "setParameter.cursorTimeoutMillis",
        "setParameter.notablescan",
    ]
    assert reply["needs_restart"] == ["net.maxIncomingConnections"]
    got = mongo.admin.command({"getParameter": 1, "cursorTimeoutMillis": 1, "notablescan": 1})
    assert (got["cursorTimeoutMillis"], got["notablescan"]) == (600001, False)
    profiler = mongo.admin.command({"profile": -1})
    assert (profiler["slowms"], profiler["sampleRate"]) == (250, 0.5)
    # Put mongod's server-wide defaults back: later tests of the session share this mongod, and a
    # sample rate of 0.5 would drop half of what they profile.
    restored = {"operationProfiling.slowOpThresholdMs": "100", "operationProfiling.slowOpSampleRate": "1"}
    status, _ = await put(mongodb_agent, "/v1/parameters", {"parameters": restored})
    assert status == 200
    # Not in the catalog: refused by the agent's own allow-list (EngineBundle.parameters), never tried.
    off_list = {"parameters": {"setParameter.enableLocalhostAuthBypass": "true"}}
    status, reply = await put(mongodb_agent, "/v1/parameters", off_list)
    assert (status, reply["error"]) == (400, "bad_name")


async def test_a_bad_parameter_value_is_refused_naming_it(mongodb_agent: ClientSession) -> None:
    status, reply = await put(
        mongodb_agent, "/v1/parameters", {"parameters": {"setParameter.logLevel": "loud"}}
    )
    assert (status, reply["error"]) == (400, "bad_request")
    assert "setParameter.logLevel" in reply["detail"] and "BadValue" in reply["detail"]
