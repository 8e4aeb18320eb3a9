"""The per-engine commands are data: check the argv shapes and the secrets' place (never in argv)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import MethodUnsupported
from kubetrove.agent.engines.registry import REGISTRY, methods_for
from kubetrove.agent.protocol import BackupMethod

CONFIG = EngineConfig(host="10.0.0.5", port=3307, user="kubetrove", password='s3cr#t"pw')
WORK = Path("/work/dir")


def argv_text(plan_argvs: list[tuple[str, ...]]) -> str:
    return " ".join(" ".join(a) for a in plan_argvs)


@pytest.mark.parametrize("engine", sorted(REGISTRY))
@pytest.mark.parametrize("method", list(BackupMethod))
def test_password_never_in_argv(engine: str, method: BackupMethod) -> None:
    m = methods_for(engine)
    options = {"data_dir": "/var/lib/cassandra/data", "clone_dir": "/var/lib/mysql-clone"}
    config = EngineConfig(**{**CONFIG.__dict__, "options": options})
    if method not in m.methods:
        with pytest.raises(MethodUnsupported):
            m.backup(method, config, WORK, ["db"], "b1")
        return
    plan = m.backup(method, config, WORK, ["db"], "b1")
    assert CONFIG.password not in argv_text(
        [s.argv for s in plan.steps] + list(plan.before) + list(plan.after)
    )


def test_mariadb_physical() -> None:
    plan = methods_for("mariadb").backup(BackupMethod.PHYSICAL, CONFIG, WORK, [], "b1")
    (step,) = plan.steps
    assert step.argv[:4] == (
        "mariadb-backup",
        "--defaults-file=/work/dir/client.cnf",
        "--backup",
        "--stream=xbstream",
    )
    assert step.artifact == "backup.xbstream"
    cnf = plan.files["client.cnf"]
    assert 'password="s3cr#t\\"pw"' in cnf and "port=3307" in cnf and "host=10.0.0.5" in cnf
    log = "[00] MySQL binlog position: filename 'binlog.000001', position '781',"
    log += " GTID of the last change '0-1-3'"
    assert plan.position is not None and plan.position.search(log)[1] == "0-1-3"  # type: ignore[index]


def test_mariadb_logical_dumps_only_the_named_databases() -> None:
    plan = methods_for("mariadb").backup(BackupMethod.LOGICAL, CONFIG, WORK, ["shop", "crm"], "b1")
    (step,) = plan.steps
    assert step.argv[0] == "mariadb-dump" and step.argv[1].startswith("--defaults-file=")
    assert {"--single-transaction", "--master-data=2", "--gtid"} <= set(step.argv)
    assert step.argv[-3:] == ("--databases", "shop", "crm")
    tail = "-- SET GLOBAL gtid_slave_pos='0-1-42';\n"
    assert plan.position is not None and plan.position.search(tail)[1] == "0-1-42"  # type: ignore[index]
    with pytest.raises(MethodUnsupported, match="no user database"):
        methods_for("mariadb").backup(BackupMethod.LOGICAL, CONFIG, WORK, [], "b1")


def test_mysql_uses_the_clone_plugin_and_mysqldump() -> None:
    m = methods_for("mysql")
    with pytest.raises(MethodUnsupported, match="clone directory"):
        m.backup(BackupMethod.PHYSICAL, CONFIG, WORK, [], "b1")  # no --clone-dir: no physical backup
    config = EngineConfig(**{**CONFIG.__dict__, "options": {"clone_dir": "/var/lib/mysql-clone"}})
    with pytest.raises(MethodUnsupported, match="cannot name"):
        m.backup(BackupMethod.PHYSICAL, config, WORK, [], "../x")
    plan = m.backup(BackupMethod.PHYSICAL, config, WORK, [], "b1")
    target = "/var/lib/mysql-clone/backup-b1"
    assert plan.before == (
        ("rm", "-rf", target),
        ("mysql", "--defaults-file=/work/dir/client.cnf", "-e", f"CLONE LOCAL DATA DIRECTORY = '{target}'"),
    )
    assert plan.after == (("rm", "-rf", target),)
    (step,) = plan.steps
    assert (step.artifact, step.argv) == ("backup.tar", ("tar", "-C", target, "-cf", "-", "."))
    assert plan.tool == "clone" and "password=" in plan.files["client.cnf"]
    assert plan.position is None  # the gtid_executed read when the backup was asked for
    logical = m.backup(BackupMethod.LOGICAL, CONFIG, WORK, ["app"], "b1")
    assert logical.steps[0].argv[0] == "mysqldump" and "--set-gtid-purged=ON" in logical.steps[0].argv
    head = "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5';"
    assert logical.position is not None
    assert logical.position.search(head)[1] == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"  # type: ignore[index]
    restore = m.physical_restore(Path("/stage"))
    assert restore.extract == ("tar", "-x", "-C", "/stage") and restore.prepare == ()
    assert m.major("8.0.36-28") == "8.0"


def test_postgresql() -> None:
    m = methods_for("postgresql")
    plan = m.backup(BackupMethod.PHYSICAL, CONFIG, WORK, [], "b1")
    argv = plan.steps[0].argv
    assert argv[0] == "pg_basebackup" and argv[8:13] == ("-D", "-", "-Ft", "-X", "fetch")
    assert plan.env == {"PGPASSWORD": CONFIG.password}
    assert plan.position is not None
    assert plan.position.search("pg_basebackup: write-ahead log end point: 0/2000138")[1] == "0/2000138"  # type: ignore[index]
    logical = m.backup(BackupMethod.LOGICAL, CONFIG, WORK, ["a", "b"], "b1")
    assert [(s.artifact, s.database) for s in logical.steps] == [("a.pgdump", "a"), ("b.pgdump", "b")]
    assert all("-Fc" in s.argv for s in logical.steps)
    assert m.major("15.14 (Debian 15.14-0+deb12u1)") == "15"
    assert m.physical_restore(Path("/s")).mode == 0o700


def test_mongodb_logical_with_password_in_config_file() -> None:
    m = methods_for("mongodb")
    plan = m.backup(BackupMethod.LOGICAL, CONFIG, WORK, [], "b1")
    assert plan.steps[0].argv[0] == "mongodump" and "--archive" in plan.steps[0].argv
    assert plan.files == {"tools.yaml": 'password: "s3cr#t\\"pw"\n'}
    assert "--config=/work/dir/tools.yaml" in plan.steps[0].argv
    assert m.major("7.0.42") == "7.0"


def test_mongodb_physical_streams_the_files_under_fsync_lock_and_unlocks_after() -> None:
    m = methods_for("mongodb")
    plan = m.backup(BackupMethod.PHYSICAL, CONFIG, WORK, [], "b1")
    helper = (sys.executable, "-m", "kubetrove.agent.engines.mongodb.filecopy")
    assert plan.steps[0].argv == (*helper, "stream", "/work/dir/conn.json")
    assert plan.steps[0].artifact == "backup.tar"
    assert plan.after == ((*helper, "unlock", "/work/dir/conn.json"),)
    assert json.loads(plan.files["conn.json"])["password"] == CONFIG.password  # a 0600 file, not argv
    assert all(CONFIG.password not in arg for arg in plan.steps[0].argv)
    assert plan.position is not None
    assert plan.position.search("kubetrove-position 1796399077:12\n")[1] == "1796399077:12"  # type: ignore[index]
    assert m.physical_restore(Path("/stage")).extract == ("tar", "-x", "-C", "/stage")


def test_mongodb_file_copy_leaves_out_locks_ftdc_and_preallocated_log_files(tmp_path: Path) -> None:
    import io
    import tarfile

    from kubetrove.agent.engines.mongodb.filecopy import write_tar

    kept = ("WiredTiger", "WiredTiger.wt", "collection-1.wt", "journal/WiredTigerLog.0000000002",
            "sub/mongod.lock")  # fmt: skip
    left_out = ("mongod.lock", "WiredTiger.lock", "diagnostic.data/metrics.1",
                "journal/WiredTigerPreplog.0000000003", "journal/WiredTigerTmplog.0000000004")  # fmt: skip
    for name in kept + left_out:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    out = io.BytesIO()
    write_tar(tmp_path, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert files == {n: n.encode() for n in kept}


def test_cassandra_snapshot_then_tar_then_clear() -> None:
    m = methods_for("cassandra")
    config = EngineConfig(host="127.0.0.1", options={"data_dir": "/var/lib/cassandra/data"})
    plan = m.backup(BackupMethod.PHYSICAL, config, WORK, [], "b1")
    assert plan.before == (("nodetool", "-h", "127.0.0.1", "-p", "7199", "snapshot", "-t", "b1"),)
    assert plan.after == (("nodetool", "-h", "127.0.0.1", "-p", "7199", "clearsnapshot", "-t", "b1"),)
    assert plan.steps[0].argv[-2:] == ("/var/lib/cassandra/data", "b1")  # positional args, not shell code
    with pytest.raises(MethodUnsupported, match="data_dir"):
        m.backup(BackupMethod.PHYSICAL, EngineConfig(), WORK, [], "b1")


def test_unknown_engine() -> None:
    with pytest.raises(MethodUnsupported):
        methods_for("oracle")
