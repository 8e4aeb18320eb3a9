"""POST /v1/verify on a real agent in front of a server restored from a real backup (MariaDB, PostgreSQL).

The flow the operator drives on pods, minus Kubernetes: back up a server with known data to a real MinIO,
restore the physical backup into a NEW server, start an agent on it, and ask it to verify. A faithful
restore verifies; a row deleted or changed afterwards, or a table the engine finds damaged, is named.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.client import AgentError
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupRequest, RestoreRequest, VerifyRequest
from kubetrove.reconcile.backup.verify_plan import Reason, compare
from tests.integration.conftest import RunningAgent, StartAgent
from tests.integration.conftest_backup import CREATED_AT, backup
from tests.integration.servers.mariadb import MariaDBServer
from tests.integration.servers.minio import MinioServer
from tests.integration.servers.postgresql import BIN, PostgreSQLServer
from tests.integration.servers.restored import start_mariadb_on, start_postgresql_on
from tests.integration.test_backup_mariadb import write_known_data as mariadb_data
from tests.integration.test_backup_postgresql import postgres_volume
from tests.integration.test_backup_postgresql import write_known_data as postgresql_data


@pytest.fixture(autouse=True)
def postgres_tools_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_verifybackup and friends are not on Debian's PATH (the images put them there)."""
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")


async def back_up_and_restore(
    engine: str, major: str, source_agent_url: str, token: str, minio: MinioServer, volume: Path
) -> VerifyRequest:
    """A physical backup of the source to MinIO, restored into ``volume/data``; the verify request."""
    target = minio.target(prefix=f"verify-{engine}")
    request = BackupRequest(
        id=f"v-{engine}", method=BackupMethod.PHYSICAL, target=target, created_at=CREATED_AT
    )
    reply = await backup(source_agent_url, token, request)
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    restore_mod.restore(
        RestoreRequest(
            backup_id=request.id, source=target, engine=engine, major=major, data_dir=str(volume / "data")
        )
    )
    return VerifyRequest(backup_id=request.id, source=target)


async def faithful(agent: RunningAgent, verify: VerifyRequest, tool: str, tables: set[str]) -> None:
    """The restore as it came out of the backup: every recorded table checked clean and the same."""
    reply = await agent.client.verify(verify)
    assert reply.check_tool == tool
    assert set(reply.recorded) == tables
    assert reply.observed == reply.recorded
    assert sorted(c.table for c in reply.checks) == sorted(reply.recorded)
    assert all(c.ok for c in reply.checks), reply.checks
    outcome = compare(reply)
    assert outcome.ok and outcome.tables == len(tables), outcome


async def test_mariadb_restore_verifies_and_damage_is_named(
    mariadb_factory: Callable[[], MariaDBServer], minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    source = mariadb_factory()
    mariadb_data(source)
    # A MyISAM table: its data file can be damaged under a running server, and CHECK TABLE notices.
    source.query("CREATE TABLE shop.legacy (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM")
    source.query("INSERT INTO shop.legacy VALUES " + ",".join(f"({i}, 'v{i}')" for i in range(200)))
    src = await start_agent("mariadb", source.engine_config())
    verify = await back_up_and_restore("mariadb", "10.11", src.url, src.token, minio, tmp_path)
    restored = start_mariadb_on(tmp_path, source.password)
    try:
        agent = await start_agent("mariadb", restored.engine_config())
        # The view has no stats: only base tables are counted and checked.
        await faithful(agent, verify, "CHECK TABLE", {"shop.items", "crm.people", "shop.legacy"})

        restored.query("DELETE FROM crm.people WHERE id = 7")
        outcome = compare(await agent.client.verify(verify))
        assert (outcome.reason, outcome.message) == (
            Reason.COUNTS_DIFFER,
            "crm.people: 500 rows at backup time, 499 restored",
        )

        restored.query("INSERT INTO crm.people (id, email) VALUES (7, 'changed@example.org')")
        outcome = compare(await agent.client.verify(verify))
        assert outcome.reason == Reason.CHECKSUM_DIFFERS and outcome.message.startswith(
            "crm.people: checksum "
        )

        restored.query("FLUSH TABLES shop.legacy")
        os.truncate(tmp_path / "data" / "shop" / "legacy.MYD", 100)  # most rows cut away behind its back
        outcome = compare(await agent.client.verify(verify))
        assert outcome.reason == Reason.CHECK_FAILED and outcome.message.startswith(
            "CHECK TABLE reports shop.legacy ("
        ), outcome

        with pytest.raises(AgentError) as refused:
            await agent.client.verify(verify.model_copy(update={"backup_id": "no-such-backup"}))
        assert refused.value.status == 404
    finally:
        restored.stop()


async def test_postgresql_restore_verifies_with_amcheck_and_changes_are_named(
    postgresql_factory: Callable[..., PostgreSQLServer], minio: MinioServer, start_agent: StartAgent
) -> None:
    source = postgresql_factory()
    postgresql_data(source)
    src = await start_agent("postgresql", source.engine_config())
    volume = postgres_volume()
    verify = await back_up_and_restore("postgresql", "15", src.url, src.token, minio, volume)
    restored = start_postgresql_on(volume, source.password)
    try:
        agent = await start_agent("postgresql", restored.engine_config())
        await faithful(agent, verify, "amcheck", {"shop.public.items", "crm.public.people"})

        restored.query("UPDATE items SET name = 'changed' WHERE id = 3", dbname="shop")
        outcome = compare(await agent.client.verify(verify))
        assert outcome.reason == Reason.CHECKSUM_DIFFERS and outcome.message.startswith(
            "shop.public.items: checksum"
        )
        restored.query("DROP TABLE people", dbname="crm")
        outcome = compare(await agent.client.verify(verify))
        assert (outcome.reason, outcome.message) == (
            Reason.TABLE_MISSING,
            "missing after restore: crm.public.people",
        )
    finally:
        restored.stop()
        shutil.rmtree(volume, ignore_errors=True)
