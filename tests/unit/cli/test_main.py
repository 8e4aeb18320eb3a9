"""kubectl trove's arguments, errors and completion (no cluster needed for these)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubetrove.cli import commands, main


def _kubeconfig(tmp: Path, namespace: str | None = None) -> Path:
    """A kubeconfig whose server (127.0.0.1:1) nobody answers: a test passing with it made no call."""
    context = {"cluster": "k", "user": "u", **({"namespace": namespace} if namespace else {})}
    path = tmp / "config"
    path.write_text(
        yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "contexts": [{"name": "c", "context": context}],
            "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
        })
    )  # fmt: skip
    return path


def test_catalog_lists_every_engine_with_its_default() -> None:
    rows = commands.catalog()
    engines = {r["engine"] for r in rows}
    assert engines == set(main.ENGINES)
    assert all(sum(r["default"] for r in rows if r["engine"] == e) == 1 for e in engines)
    defaults = {r["engine"]: r["version"] for r in rows if r["default"]}
    # The oldest release line; Cassandra's pinned previous patch release (5.0.8) is never the default.
    assert defaults == {
        "mysql": "9.7",
        "mariadb": "10.11",
        "postgresql": "15",
        "mongodb": "6.0",
        "cassandra": "5.0",
    }


def test_bad_flags_exit_2_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main.main(["create", "x", "--engine", "oracle", "--version", "1"])
    assert exc.value.code == 2
    assert "invalid choice: 'oracle'" in capsys.readouterr().err


def test_a_missing_kubeconfig_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main.main(["--kubeconfig", str(tmp_path / "none"), "list"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: no kubeconfig at")


def test_create_of_a_version_outside_the_catalog_is_refused_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = _kubeconfig(tmp_path)
    code = main.main(
        ["--kubeconfig", str(kubeconfig), "create", "x", "--engine", "mariadb", "--version", "9.9"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "mariadb 9.9 is not in the catalog (versions: " in err


def test_dry_run_prints_yaml_without_touching_the_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = _kubeconfig(tmp_path, namespace="team")
    version = next(r["version"] for r in commands.catalog() if r["engine"] == "postgresql")
    argv = ["--kubeconfig", str(kubeconfig), "create", "pg", "--engine", "postgresql", "--version", version]
    assert main.main([*argv, "--replicas", "3", "--dry-run"]) == 0  # server 127.0.0.1:1 is never called
    out = capsys.readouterr().out
    assert "kind: DatabaseCluster" in out and "namespace: team" in out and "replicas: 3" in out


def test_completion_names_every_command_and_is_valid_bash() -> None:
    script = main.bash_completion(main.parser())
    for command in ("list", "get", "create", "credentials", "connect", "backup", "restore", "switchover"):
        assert command in script
    assert "--engine" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_the_distribution_declares_the_kubectl_plugin() -> None:
    """kubectl finds ``kubectl-trove`` on PATH; pip writes it from [project.scripts]."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["kubectl-trove"] == "kubetrove.cli.main:main"
    assert any(d.startswith("kubernetes==") for d in project["optional-dependencies"]["cli"])


def test_help_runs_as_a_program() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kubetrove.cli.main", "--help"], capture_output=True, text=True, check=True
    )
    assert "credentials" in out.stdout and "switchover" in out.stdout
