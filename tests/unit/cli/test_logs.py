"""kubectl trove logs: which member, which container, what is asked of the API server, refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from kubetrove.cli import commands, logs, main
from kubetrove.cli.commands import CliError, Ctx
from kubetrove.datastores.base import EngineContainer
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
    text = await logs.engine_logs(Ctx(kube, NS), "orders", None, 2, "1h30m", False)
    assert text == "2026-12-05T08:00:08 [Note] orders-2 line 8\n2026-12-05T08:00:09 [Note] orders-2 line 9\n"
    assert kube.log_requests == [
        ("orders-2", "engine", 2, 5400, False)
    ]  # the engine container, not the agent


async def test_a_named_member_and_its_previous_container() -> None:
    kube = cluster({"primary": "orders-2", "members": [{"pod": f"orders-{i}"} for i in range(3)]})
    text = await logs.engine_logs(Ctx(kube, NS), "orders", "orders-1", None, None, True)
    assert text.count("\n") == 10 and "orders-1 line 0" in text
    assert kube.log_requests == [("orders-1", "engine", None, None, True)]


async def test_without_a_primary_ordinal_0_and_a_stranger_pod_is_refused_before_any_call() -> None:
    kube = cluster()
    assert "orders-0 line 9" in await logs.engine_logs(Ctx(kube, NS), "orders", None, 1, None, False)
    with pytest.raises(CliError, match="other-0 is not a member of orders"):
        await logs.engine_logs(Ctx(kube, NS), "orders", "other-0", 1, None, False)
    with pytest.raises(CliError, match='--since: "10 minutes" is not a duration'):
        await logs.engine_logs(Ctx(kube, NS), "orders", None, 1, "10 minutes", False)
    assert len(kube.log_requests) == 1


async def test_a_missing_pod_is_one_clear_line() -> None:
    kube = cluster()
    with pytest.raises(CliError, match="no log for pod orders-7 of orders: the pod does not exist"):
        await logs.engine_logs(Ctx(kube, NS), "orders", "orders-7", 1, None, False)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d2h", 93600)])
def test_durations(text: str, seconds: int) -> None:
    assert commands.duration_seconds(text) == seconds


def agent_line(logger: str, **fields: Any) -> str:
    return json.dumps({"ts": "2026-12-05T08:00:00.000Z", "logger": logger, **fields})


SLOW = {"engine": "mariadb", "duration_seconds": 1.2034, "user": "app", "database": "shop"}


def with_agent_log(kube: FakeKube, pod: str = "orders-2") -> None:
    kube.logs[(NS, pod, "agent")] = "".join(
        line + "\n"
        for line in (
            json.dumps({"ts": "-", "level": "info", "logger": "kubetrove.agent", "msg": "request"}),
            agent_line(
                "kubetrove.engine.slow", time="2026-12-05T08:00:01+00:00", query="SELECT SLEEP(1.2)", **SLOW
            ),
            "not json at all",
            agent_line(
                "kubetrove.engine.error", time="2026-12-05T08:00:02+00:00", level="ERROR", message="e"
            ),
            agent_line("kubetrove.engine.slow", time="2026-12-05T08:00:03+00:00", query="SELECT 2", **SLOW),
            agent_line("kubetrove.engine.slow", time="2026-12-05T08:00:04+00:00", query="SELECT 3", **SLOW),
        )
    )


async def test_slow_reads_the_agent_containers_slow_lines_readably_the_tail_counting_entries() -> None:
    kube = cluster({"primary": "orders-2", "members": [{"pod": f"orders-{i}"} for i in range(3)]})
    with_agent_log(kube)
    text = await logs.engine_logs(Ctx(kube, NS), "orders", None, 2, "10m", False, slow=True)
    assert text == (
        "2026-12-05T08:00:03+00:00  1.203s  app@shop  SELECT 2\n"
        "2026-12-05T08:00:04+00:00  1.203s  app@shop  SELECT 3\n"
    )
    # The whole agent log is read (the tail counts entries, not the agent's lines), as the user.
    assert kube.log_requests == [("orders-2", "agent", None, 600, False)]
    assert (await logs.engine_logs(Ctx(kube, NS), "orders", None, None, None, False, slow=True)).count(
        "\n"
    ) == 3
    assert await logs.engine_logs(Ctx(kube, NS), "orders", None, 0, None, False, slow=True) == ""


async def test_follow_streams_the_engine_container_with_its_tail() -> None:
    kube = cluster({"primary": "orders-2", "members": [{"pod": f"orders-{i}"} for i in range(3)]})
    kube.log_growth[(NS, "orders-2", "engine")] = "2026-12-05T08:01:00 [Note] new\n"
    got = [line async for line in logs.follow_engine_logs(Ctx(kube, NS), "orders", None, 2, "1h", slow=False)]
    assert got == ["2026-12-05T08:00:09 [Note] orders-2 line 9", "2026-12-05T08:01:00 [Note] new"]
    assert kube.stream_requests == [("orders-2", "engine", 2, 3600, None)]


async def test_follow_slow_prints_the_history_then_only_lines_written_after_it() -> None:
    kube = cluster({"primary": "orders-2", "members": [{"pod": f"orders-{i}"} for i in range(3)]})
    with_agent_log(kube)
    new = agent_line("kubetrove.engine.slow", time="2026-12-05T08:09:00+00:00", query="SELECT 'new'", **SLOW)
    kube.log_growth[(NS, "orders-2", "agent")] = new + "\n"
    lines = logs.follow_engine_logs(Ctx(kube, NS), "orders", None, 1, None, slow=True)
    got = [line async for line in lines]
    assert got == [
        "2026-12-05T08:00:04+00:00  1.203s  app@shop  SELECT 3",
        "2026-12-05T08:09:00+00:00  1.203s  app@shop  SELECT 'new'",
    ]
    # The stream starts at the second of the last line read (line 5: LOG_T0 + 5 s); that line comes
    # again and is dropped by its full timestamp.
    assert kube.stream_requests == [("orders-2", "agent", None, None, "2026-12-05T08:00:05Z")]


async def test_the_error_log_comes_from_the_container_the_datastore_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = cluster({"primary": "orders-2", "members": [{"pod": f"orders-{i}"} for i in range(3)]})
    with_agent_log(kube)
    real = commands.store_of(kube.objects[next(iter(kube.objects))])
    assert real.container("10.11").error_log_container == "engine"

    class AgentPublished:
        versions = real.versions

        def container(self, version: str) -> EngineContainer:
            return dataclasses.replace(real.container(version), error_log_container="agent")

    monkeypatch.setattr(logs, "store_of", lambda obj: AgentPublished())
    text = await logs.engine_logs(Ctx(kube, NS), "orders", None, 5, None, False)
    assert text == "2026-12-05T08:00:02+00:00  ERROR  e\n"
    assert kube.log_requests[-1][:2] == ("orders-2", "agent")


def test_kubelet_times_sort_by_value_not_by_their_trimmed_text() -> None:
    assert logs.time_key("2026-12-05T08:00:00.5Z") > logs.time_key("2026-12-05T08:00:00.123456789Z")
    assert logs.time_key("2026-12-05T08:00:01Z") > logs.time_key("2026-12-05T08:00:00.999Z")
    assert logs.split_timestamp("2026-12-05T08:00:00.5Z a b") == ("2026-12-05T08:00:00.5Z", "a b")


def test_follow_and_previous_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    code = main.main(["--kubeconfig", str(config), "logs", "orders", "-f", "--previous"])
    err = capsys.readouterr().err
    assert code == 1 and "--follow and --previous" in err
