"""The Grafana dashboard: valid JSON whose every metric is documented and defined by the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = json.loads((ROOT / "charts" / "kubetrove" / "dashboards" / "kubetrove.json").read_text())
DOCS = (ROOT / "docs" / "operations.md").read_text()
OPERATOR_METRICS = ROOT / "operator" / "kubetrove" / "metrics.py"
AGENT_METRICS = ROOT / "operator" / "kubetrove" / "agent" / "metrics.py"
SUFFIXES = re.compile(r"_(total|bucket|sum|count|created)$")


def family(name: str) -> str:
    """The metric family: prometheus-client adds _total, _bucket, _sum and _count to the declared name."""
    return SUFFIXES.sub("", name)


def declared(path: Path) -> set[str]:
    """Families declared in a module (the first string argument of Counter/Gauge/Histogram/Summary)."""
    text = path.read_text()
    return {
        family(n) for n in re.findall(r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"(kubetrove_\w+)\"", text)
    }


def dashboard_metrics() -> set[str]:
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    assert exprs
    return {family(n) for e in exprs for n in re.findall(r"\bkubetrove_\w+", e)}


def documented(section_start: str) -> set[str]:
    """Metric names in one list of docs/operations.md: from its heading to the next heading."""
    section = DOCS.split(section_start, 1)[1]
    section = re.split(r"\n(?:Operator|Agent) \(|\nAlerts worth having", section, maxsplit=1)[0]
    return {family(n) for n in re.findall(r"`(kubetrove_\w+)`", section)}


def test_dashboard_shape() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_dashboard_metric_is_documented() -> None:
    docs = documented("Operator (`kubetrove.metrics`)") | documented("Agent (`kubetrove.agent.metrics`")
    assert dashboard_metrics() <= docs, sorted(dashboard_metrics() - docs)


def test_agent_metrics_in_the_docs_exist() -> None:
    assert documented("Agent (`kubetrove.agent.metrics`") <= declared(AGENT_METRICS)


def test_operator_metrics_in_the_docs_exist() -> None:
    want = documented("Operator (`kubetrove.metrics`)")
    assert want and want <= declared(OPERATOR_METRICS), sorted(want - declared(OPERATOR_METRICS))
