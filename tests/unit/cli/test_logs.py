"""kubectl trove logs: which member, which container, what is asked of the API server, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetrove.cli import commands, main
from kubetrove.cli.commands import CliError, Ctx
from tests.unit.reconcile.fake_kube import FakeKube

NS = "team"
LOG = "".join(f"2026-12-05T08:00:{i:02d} [Note] line {i}\n" for i in range(10))


def cluster(status: dict[str, Any] | None = None) -> FakeKube:
    kube = FakeKube()
    kube.put({
        "apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabaseCluster",
        "metadata": {"name": "orders", "namespace": NS},
        "spec": {"datastore": {"type": "mariadb", "version": "10.11"}, "replicas": 3},
        **({"status": status} if status else {}),
    })  # fmt: skip
    for i in range(3):
        kube.logs[(NS, f"orders-{i}", "engine")] = LOG.replace("line", f"orders-{i} line")
    return kube


async def test_the_primarys_engine_log_by_default_with_tail_and_since() -> None:
    kube = cluster({"primary": "orders-2", "members": [{"pod": f"orders-{i}"} for i in range(3)]})
    text = await commands.engine_logs(Ctx(kube, NS), "orders", None, 2, "1h30m", False)
    assert text == "2026-12-05T08:00:08 [Note] orders-2 line 8\n2026-12-05T08:00:09 [Note] orders-2 line 9\n"
    assert kube.log_requests == [
        ("orders-2", "engine", 2, 5400, False)
    ]  # the engine container, not the agent


async def test_a_named_member_and_its_previous_container() -> None:
    kube = cluster({"primary": "orders-2", "members": [{"pod": f"orders-{i}"} for i in range(3)]})
    text = await commands.engine_logs(Ctx(kube, NS), "orders", "orders-1", None, None, True)
    assert text.count("\n") == 10 and "orders-1 line 0" in text
    assert kube.log_requests == [("orders-1", "engine", None, None, True)]


async def test_without_a_primary_ordinal_0_and_a_stranger_pod_is_refused_before_any_call() -> None:
    kube = cluster()
    assert "orders-0 line 9" in await commands.engine_logs(Ctx(kube, NS), "orders", None, 1, None, False)
    with pytest.raises(CliError, match="other-0 is not a member of orders"):
        await commands.engine_logs(Ctx(kube, NS), "orders", "other-0", 1, None, False)
    with pytest.raises(CliError, match='--since: "10 minutes" is not a duration'):
        await commands.engine_logs(Ctx(kube, NS), "orders", None, 1, "10 minutes", False)
    assert len(kube.log_requests) == 1


async def test_a_missing_pod_is_one_clear_line() -> None:
    kube = cluster()
    with pytest.raises(CliError, match="no log for pod orders-7 of orders: the pod does not exist"):
        await commands.engine_logs(Ctx(kube, NS), "orders", "orders-7", 1, None, False)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d2h", 93600)])
def test_durations(text: str, seconds: int) -> None:
    assert commands.duration_seconds(text) == seconds


def test_the_slow_query_log_says_it_is_not_served(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    code = main.main(["--kubeconfig", str(config), "logs", "orders", "--slow"])
    err = capsys.readouterr().err
    assert code == 1 and "--slow: the slow-query log is not served yet" in err
