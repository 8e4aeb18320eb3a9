"""The MongoDB half of the failover rig (``cluster_harness.Engine``): a replica set of real mongod 6.0.5.

The members start uninitiated (``--replSet``, a shared key file, a root login each, as the image's
entrypoint leaves them): the membership loop creates the set through the first member's agent, exactly
as it does on pods. The application writes with ``w: "majority"`` (acknowledged only once a majority
of the voting members has the write: those writes survive any election,
https://www.mongodb.com/docs/manual/reference/write-concern/), straight to the member the cluster
records as primary (what the read-write Service's role label selects), never retried by the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from pymongo import MongoClient

from kubetrove.clustering.agent_ops import Replication
from tests.integration.cluster_harness import APP_DB, APP_USER, Server
from tests.integration.servers.mongod import Mongod, start_members

APP_PASSWORD = "app-Secret-1"
COLLECTION = "w"


class MongoDBEngine:
    """Three (or N) members of one replica set."""

    name = "mongodb"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.members: list[Mongod] = []

    def start(self, pods: Sequence[str]) -> dict[str, Server]:
        self.members = start_members(self.tmp / "rs", len(pods))
        return {pod: cast(Server, m) for pod, m in zip(pods, self.members, strict=True)}

    def replication(self) -> Replication:
        # No replication account: the members replicate under the key file's internal user.
        return Replication("", "")

    def create_table(self, primary: Server) -> None:
        with cast(Mongod, primary).client() as c:
            c[APP_DB].create_collection(COLLECTION)

    def connect(self, server: Server) -> Any:
        # One member (directConnection), short selection timeout: the writer notices a dead or demoted
        # member at once and reconnects to whatever the cluster then records as primary.
        return MongoClient(
            "127.0.0.1",
            server.port,
            directConnection=True,
            username=APP_USER,
            password=APP_PASSWORD,
            authSource="admin",
            w="majority",
            retryWrites=False,
            serverSelectionTimeoutMS=1000,
            connectTimeoutMS=1000,
            socketTimeoutMS=20_000,
        )

    def insert(self, conn: Any, write_id: int, pod: str) -> None:
        conn[APP_DB][COLLECTION].insert_one({"_id": write_id, "pod": pod})

    def ids(self, server: Server) -> list[int]:
        with cast(Mongod, server).client() as c:
            return [int(d["_id"]) for d in c[APP_DB][COLLECTION].find({}, {"_id": 1})]

    def restart(self, pod: str, server: Server, primary: Server | None) -> None:
        """A killed member restarts on its files; the set rolls back whatever it never acknowledged."""
        cast(Mongod, server).start()

    def stop(self) -> None:
        for m in self.members:
            m.remove()
