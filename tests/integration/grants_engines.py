"""Acting as a database user the same way on every engine (for tests/integration/test_grants_portable.py).

Each adapter opens its own connection per action as the given user, so a revoked privilege is seen
at once (no session keeps what it had). ``Denied`` is raised for the engine's own "not allowed"
answers only (an error of any other kind propagates and fails the test).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
import pymysql

from kubetrove.agent.engines.config import EngineConfig


class Denied(Exception):
    """The server refused the action for lack of privileges (the engine's own error, as text)."""


class UserActions(Protocol):
    """What a portable-grants test does as a user: create a table, write a row, count rows."""

    engine: str
    # Whether a `readWrite` user may create tables (Cassandra's SELECT + MODIFY does not include CREATE).
    read_write_creates: bool

    def config(self) -> EngineConfig: ...
    def create_table(self, user: str, password: str, database: str, table: str) -> None: ...
    def insert(self, user: str, password: str, database: str, table: str) -> None: ...
    def count(self, user: str, password: str, database: str, table: str) -> int: ...
    def close(self) -> None: ...


@dataclass
class PostgreSQLActions:
    """Tables with a ``serial`` key: an INSERT needs USAGE on the table's sequence too."""

    server: Any  # tests.integration.servers.postgresql.PostgreSQLServer
    engine: str = "postgresql"
    read_write_creates: bool = True

    def config(self) -> EngineConfig:
        return self.server.engine_config()  # type: ignore[no-any-return]

    @contextmanager
    def _conn(self, user: str, password: str, database: str) -> Iterator[Any]:
        try:
            with self.server.connect(user, password, dbname=database) as conn:
                yield conn
        except psycopg.errors.InsufficientPrivilege as exc:
            raise Denied(str(exc)) from None
        except psycopg.OperationalError as exc:  # CONNECT revoked: refused at login
            if "permission denied" not in str(exc):
                raise
            raise Denied(str(exc)) from None

    def create_table(self, user: str, password: str, database: str, table: str) -> None:
        with self._conn(user, password, database) as conn:
            conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, v int)")

    def insert(self, user: str, password: str, database: str, table: str) -> None:
        with self._conn(user, password, database) as conn:
            conn.execute(f"INSERT INTO {table} (v) VALUES (1)")

    def count(self, user: str, password: str, database: str, table: str) -> int:
        with self._conn(user, password, database) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def close(self) -> None:
        pass


# ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR.
MYSQL_DENIED = frozenset({1142, 1044, 1143})


@dataclass
class MySQLActions:
    """MariaDB and MySQL (pymysql): tables with an AUTO_INCREMENT key."""

    server: Any  # MariaDBServer or a MySQL server with the same connect()/engine_config()
    engine: str = "mariadb"
    read_write_creates: bool = True

    def config(self) -> EngineConfig:
        return self.server.engine_config()  # type: ignore[no-any-return]

    def _run(self, user: str, password: str, database: str, statement: str) -> list[tuple[Any, ...]]:
        try:
            conn = self.server.connect(user, password, database)
        except pymysql.err.MySQLError as exc:
            if exc.args and exc.args[0] in MYSQL_DENIED:
                raise Denied(str(exc)) from None
            raise
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return list(cur.fetchall())
        except pymysql.err.MySQLError as exc:
            if exc.args and exc.args[0] in MYSQL_DENIED:
                raise Denied(str(exc)) from None
            raise
        finally:
            conn.close()

    def create_table(self, user: str, password: str, database: str, table: str) -> None:
        self._run(
            user, password, database, f"CREATE TABLE {table} (id int AUTO_INCREMENT PRIMARY KEY, v int)"
        )

    def insert(self, user: str, password: str, database: str, table: str) -> None:
        self._run(user, password, database, f"INSERT INTO {table} (v) VALUES (1)")

    def count(self, user: str, password: str, database: str, table: str) -> int:
        return int(self._run(user, password, database, f"SELECT count(*) FROM {table}")[0][0])

    def close(self) -> None:
        pass


@dataclass
class CassandraActions:
    """Keyspace tables keyed by a uuid; one session per user, kept (logins are slow), closed at the end."""

    server: Any  # tests.integration.servers.cassandra.CassandraServer
    engine: str = "cassandra"
    read_write_creates: bool = False
    _sessions: dict[tuple[str, str], Any] = field(default_factory=dict)
    _open: ExitStack = field(default_factory=ExitStack)

    def config(self) -> EngineConfig:
        return EngineConfig(port=self.server.port, user=self.server.user, password=self.server.password)

    def _session(self, user: str, password: str) -> Any:
        if (user, password) not in self._sessions:
            manager = self.server.session(user, password)
            self._sessions[(user, password)] = (
                manager.__enter__(),
                lambda: manager.__exit__(None, None, None),
            )
        return self._sessions[(user, password)][0]

    def _run(self, user: str, password: str, statement: str) -> list[Any]:
        from cassandra import Unauthorized

        try:
            return list(self._session(user, password).execute(statement))
        except Unauthorized as exc:
            raise Denied(str(exc)) from None

    def create_table(self, user: str, password: str, database: str, table: str) -> None:
        self._run(user, password, f"CREATE TABLE {database}.{table} (id uuid PRIMARY KEY, v int)")

    def insert(self, user: str, password: str, database: str, table: str) -> None:
        self._run(user, password, f"INSERT INTO {database}.{table} (id, v) VALUES (uuid(), 1)")

    def count(self, user: str, password: str, database: str, table: str) -> int:
        return int(self._run(user, password, f"SELECT count(*) FROM {database}.{table}")[0][0])

    def close(self) -> None:
        self._open.close()
        self._sessions.clear()


UNAUTHORIZED = (
    13  # MongoDB error code "Unauthorized" (https://www.mongodb.com/docs/manual/reference/error-codes/)
)


@dataclass
class MongoDBActions:
    """Collections (the portable tables): created explicitly, counted with countDocuments."""

    server: Any  # a mongod fixture with host, port, user, password (and engine_config())
    engine: str = "mongodb"
    read_write_creates: bool = True

    def config(self) -> EngineConfig:
        return self.server.engine_config()  # type: ignore[no-any-return]

    @contextmanager
    def _db(self, user: str, password: str, database: str) -> Iterator[Any]:
        import pymongo
        from pymongo.errors import OperationFailure

        client: Any = pymongo.MongoClient(
            host=self.server.host, port=self.server.port, username=user, password=password,
            authSource="admin", directConnection=True, serverSelectionTimeoutMS=5000,
        )  # fmt: skip
        try:
            yield client[database]
        except OperationFailure as exc:
            if exc.code == UNAUTHORIZED:
                raise Denied(str(exc)) from None
            raise
        finally:
            client.close()

    def create_table(self, user: str, password: str, database: str, table: str) -> None:
        with self._db(user, password, database) as db:
            db.create_collection(table)

    def insert(self, user: str, password: str, database: str, table: str) -> None:
        with self._db(user, password, database) as db:
            db[table].insert_one({"v": 1})

    def count(self, user: str, password: str, database: str, table: str) -> int:
        with self._db(user, password, database) as db:
            return int(db[table].count_documents({}))

    def close(self) -> None:
        pass
