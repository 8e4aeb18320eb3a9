"""The backup routes' HTTP behaviour with the in-memory driver (the real runs are in tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrove.agent.backup.directory import DirectoryStore
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import REGISTRY, make_driver
from kubetrove.agent.protocol import BackupMethod, BackupRequest, BackupTarget, DirectoryTarget, Paths
from tests.unit.agent.conftest import AUTH
from tests.unit.agent.fake_driver import FakeDriver

AUTH_JSON = {**AUTH, "Content-Type": "application/json"}


def body(method: BackupMethod = BackupMethod.LOGICAL) -> str:
    target = BackupTarget(directory=DirectoryTarget(path="/nonexistent"))
    return BackupRequest(
        id="b1", method=method, target=target, created_at="2026-01-01T00:00:00Z"
    ).model_dump_json()


async def test_unknown_backup_is_404(http: Any) -> None:
    reply = await http.get(Paths.BACKUP.format(id="nope"), headers=AUTH_JSON)
    assert reply.status == 404
    assert (await reply.json())["error"] == "not_found"


@pytest.mark.parametrize(
    "driver", [FakeDriver(engine="cassandra")]
)  # the app's bundle is the driver's engine
async def test_method_the_engine_lacks_is_400(http: Any, driver: FakeDriver) -> None:
    reply = await http.post(Paths.BACKUPS, data=body(BackupMethod.LOGICAL), headers=AUTH_JSON)
    assert reply.status == 400
    assert (await reply.json()) == {
        "error": "unsupported_method",
        "detail": "cassandra has no logical backup (it has: physical)",
    }


def test_every_engine_driver_exposes_its_connection_settings() -> None:
    # The backup routes hand these to the dump/backup tools: a driver without them made backups of that
    # engine fail at the agent (Cassandra and MongoDB did, before EngineDriver.config).
    for engine in sorted(REGISTRY):
        config = EngineConfig(host="127.0.0.1", port=1, options={"data_dir": "/data"})
        assert make_driver(engine, config).config is config, engine


async def test_bad_body_is_400_and_needs_the_token(http: Any) -> None:
    reply = await http.post(Paths.BACKUPS, data='{"id": "B A D"}', headers=AUTH_JSON)
    assert reply.status == 400
    assert (await http.post(Paths.BACKUPS, data=body())).status == 401


async def test_delete_removes_the_stored_backup_manifest_first(http: Any, tmp_path: Any) -> None:
    directory = DirectoryTarget(path=str(tmp_path))
    writer = DirectoryStore(directory).writer("b1", "dump.sql")
    writer.write(b"data")
    writer.complete()
    assert (tmp_path / "b1" / "dump.sql").exists()
    target = BackupTarget(directory=directory).model_dump_json()
    reply = await http.delete(Paths.BACKUP.format(id="b1"), data=target, headers=AUTH_JSON)
    assert reply.status == 200, await reply.text()
    assert not (tmp_path / "b1").exists()
    # Deleting what is already gone succeeds (a retried deletion handler).
    reply = await http.delete(Paths.BACKUP.format(id="b1"), data=target, headers=AUTH_JSON)
    assert reply.status == 200
    assert (await http.delete(Paths.BACKUP.format(id="b1"), data=target)).status == 401
