"""What the chart ships for monitoring: the Grafana dashboard and the alert rules.

Every metric name their PromQL uses is one the project exports: the names come from the real registries
(the operator's ``OperatorMetrics`` and the agent's ``AgentMetrics``), not from a list kept by hand, so a
renamed or removed metric fails here. Every exported metric is documented in docs/operations.md. Every
alert is complete (severity, summary, description, a runbook section of docs/operations.md named after
it), and its promtool cases (tests/integration/alerts/) fire and stay silent on series with exactly the
exported names and labels. promtool itself runs in tests/integration/test_alert_rules.py.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from kubetrove.agent.metrics import AgentMetrics
from kubetrove.metrics import OperatorMetrics

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kubetrove"
DASHBOARD = json.loads((CHART / "dashboards" / "kubetrove.json").read_text())
RULES = yaml.safe_load((CHART / "alerts" / "kubetrove.rules.yaml").read_text())
PROMTOOL_TESTS = ROOT / "tests" / "integration" / "alerts" / "kubetrove.rules.test.yaml"
DOCS = (ROOT / "docs" / "operations.md").read_text()
RUNBOOKS = "https://github.com/kubetrove/kubetrove/blob/main/docs/operations.md#"
# The sample names prometheus-client writes for each family type (docs: "Exposition formats").
SAMPLES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
SUFFIXES = re.compile(r"_(total|bucket|sum|count|created)$")
# PromQL words that are not metric names (operators, modifiers, literals).
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "offset", "atan2", "inf", "nan"}  # fmt: skip


def family(name: str) -> str:
    """The metric family: prometheus-client adds _total, _bucket, _sum and _count to the declared name."""
    return SUFFIXES.sub("", name)


def _families(metrics: OperatorMetrics | AgentMetrics) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Family name -> (type, label names) of every metric in ``metrics``' registry."""
    registered = {f.name: f.type for f in metrics.registry.collect()}
    out = {}
    for wrapper in vars(metrics).values():
        if isinstance(wrapper, MetricWrapperBase):
            (described,) = wrapper.describe()
            # prometheus-client keeps the label names only in this attribute.
            out[described.name] = (registered[described.name], tuple(wrapper._labelnames))
    assert set(out) <= set(registered)
    return out


@functools.cache
def families(side: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The families of the operator's or the agent's registry."""
    return _families(OperatorMetrics(version="0") if side == "operator" else AgentMetrics("mariadb"))


@functools.cache
def exported() -> dict[str, tuple[str, ...]]:
    """Every sample name the operator and the agents export -> its label names."""
    out = {}
    for side in ("operator", "agent"):
        for name, (kind, labels) in families(side).items():
            for suffix in SAMPLES[kind]:
                out[name + suffix] = (*labels, "le") if suffix == "_bucket" else labels
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana target) selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers (and Grafana's ${var})
    e = re.sub(r"\[[^\]]*\]", " ", e)  # range and subquery durations
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    e = re.sub(r"\$\w+", " ", e)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", e):
        if m.group().lower() in KEYWORDS or e[m.end() :].lstrip().startswith("("):  # a function
            continue
        names.add(m.group())
    return names


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    assert exprs
    return exprs


def alerts() -> list[dict[str, Any]]:
    found = [rule for group in RULES["groups"] for rule in group["rules"]]
    assert found and all("alert" in rule for rule in found)  # no recording rules
    return found


def documented(section_start: str) -> set[str]:
    """Metric names in one list of docs/operations.md: from its start to the next list or heading."""
    section = DOCS.split(section_start, 1)[1]
    section = re.split(r"\n(?:Operator|Agent) \(|\n#", section, maxsplit=1)[0]
    return {family(n) for n in re.findall(r"`(kubetrove_\w+)`", section)}


def test_metric_names_of_promql() -> None:
    expr = (
        'sum by (le, kind) (rate(a_seconds_bucket{kind=~"x|y"}[5m])) / on (ns) group_left (pod)'
        ' b_total offset 1h > 1e-9 unless absent(c{x="by(d)"})'
        " or histogram_quantile(0.9, e[$__range]) and bool 2"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "e"}
    assert metric_names("time() - up > 2 * f") == {"up", "f"}  # `up` is Prometheus's: not exported here


def test_the_registries_are_read() -> None:
    assert exported()["kubetrove_failovers_total"] == ("namespace", "cluster", "engine")
    assert exported()["kubetrove_reconcile_duration_seconds_bucket"] == ("kind", "le")
    assert exported()["kubetrove_agent_requests_total"] == ("route", "status")
    assert exported()["kubetrove_operator_leader"] == ()


def test_dashboard_shape() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_used_is_exported(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else [rule["expr"] for rule in alerts()]
    unknown = {e: sorted(metric_names(e) - set(exported())) for e in exprs}
    assert not {e: names for e, names in unknown.items() if names}
    assert all(metric_names(e) for e in exprs)


def test_every_dashboard_metric_is_documented() -> None:
    docs = documented("Operator (`kubetrove.metrics`)") | documented("Agent (`kubetrove.agent.metrics`")
    used = {family(n) for e in dashboard_exprs() for n in metric_names(e)}
    assert used <= docs, sorted(used - docs)


@pytest.mark.parametrize(
    ("side", "start"),
    [("operator", "Operator (`kubetrove.metrics`)"), ("agent", "Agent (`kubetrove.agent.metrics`")],
)
def test_the_documented_metrics_are_the_exported_ones(side: str, start: str) -> None:
    assert documented(start) == {family(n) for n in families(side)}


def runbooks() -> list[str]:
    """The runbook headings of docs/operations.md's "Alerts" section."""
    section = DOCS.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^### (\w+)$", section, re.M)


def test_every_alert_is_complete_and_has_a_runbook() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook_url"] == RUNBOOKS + name.lower(), name  # GitHub's heading anchor
    assert runbooks() == names  # one section per alert, in the rule file's order


def promtool_cases() -> dict[str, Any]:
    cases = yaml.safe_load(PROMTOOL_TESTS.read_text())
    assert isinstance(cases, dict)
    return cases


def test_the_promtool_cases_read_the_charts_rule_file() -> None:
    (rule_file,) = promtool_cases()["rule_files"]
    assert (PROMTOOL_TESTS.parent / rule_file).resolve() == CHART / "alerts" / "kubetrove.rules.yaml"


def test_promtool_input_series_are_exported_series_with_their_exact_labels() -> None:
    for test in promtool_cases()["tests"]:
        for series in test["input_series"]:
            m = re.fullmatch(r"([A-Za-z_:][\w:]*)(?:\{(.*)\})?", series["series"])
            assert m, series["series"]
            name, labels = m.group(1), re.findall(r"(\w+)\s*=", m.group(2) or "")
            assert name in exported(), series["series"]
            assert sorted(labels) == sorted(exported()[name]), series["series"]


def test_every_alert_fires_in_one_promtool_case_and_stays_silent_in_another() -> None:
    fired, silent = set(), set()
    for test in promtool_cases()["tests"]:
        for case in test["alert_rule_test"]:
            (fired if case["exp_alerts"] else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert fired == names and silent == names, (names - fired, names - silent)
