"""The alert rules (charts/kubetrove/alerts/kubetrove.rules.yaml) through the real promtool and Helm.

`promtool check rules` parses every expression and annotation template; `promtool test rules` runs
tests/integration/alerts/kubetrove.rules.test.yaml (each alert fires in one case and stays silent in
another, on series named and labelled as the operator exports them: tests/unit/packaging/test_monitoring.py
checks that). Here rather than in tests/unit: promtool is a Go binary built by `make setup`
(hack/fetch-promtool.sh). In this tier a missing promtool or helm FAILS, it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.integration.helm import CHART, ROOT, template

RULES = CHART / "alerts" / "kubetrove.rules.yaml"
CASES = ROOT / "tests" / "integration" / "alerts" / "kubetrove.rules.test.yaml"


def promtool_path() -> Path:
    """$KUBETROVE_PROMTOOL, else what hack/fetch-promtool.sh extracted from Debian's prometheus package."""
    if os.environ.get("KUBETROVE_PROMTOOL"):
        return Path(os.environ["KUBETROVE_PROMTOOL"])
    cache = Path(os.environ.get("KUBETROVE_CACHE", Path.home() / ".cache" / "kubetrove"))
    return cache / "promtool" / "promtool"


def promtool(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run promtool; a missing binary FAILS (the tier was asked for: `make setup` builds it)."""
    binary = promtool_path()
    assert binary.is_file(), f"{binary} is missing: run `make setup` (hack/fetch-promtool.sh)"
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, check=False, timeout=300)
    if check:
        assert proc.returncode == 0, (
            f"promtool {' '.join(args)}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def alert_names() -> list[str]:
    return [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_checks_the_rules() -> None:
    out = promtool("check", "rules", str(RULES)).stdout
    assert f"SUCCESS: {len(alert_names())} rules found" in out, out


def test_promtool_unit_tests_pass() -> None:
    out = promtool("test", "rules", str(CASES)).stdout
    assert "SUCCESS" in out, out


def test_a_changed_rule_fails_its_promtool_case(tmp_path: Path) -> None:
    """The cases can fail: a lag threshold moved from 60 s to 600 s no longer fires on a 120 s lag."""
    rules = RULES.read_text()
    assert rules.count("kubetrove_member_lag_seconds > 60\n") == 1
    (tmp_path / "rules.yaml").write_text(
        rules.replace("kubetrove_member_lag_seconds > 60\n", "kubetrove_member_lag_seconds > 600\n")
    )
    cases = yaml.safe_load(CASES.read_text())
    cases["rule_files"] = ["rules.yaml"]
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
    proc = promtool("test", "rules", str(tmp_path / "cases.yaml"), check=False)
    assert proc.returncode != 0
    assert "KubetroveReplicationLagging" in proc.stdout + proc.stderr


def test_the_chart_ships_exactly_the_rule_files_groups(tmp_path: Path) -> None:
    assert not [o for o in template() if o["kind"] == "PrometheusRule"]  # opt-in
    objs = template("alerts.enabled=true", "alerts.labels.release=prometheus")
    (rule,) = [o for o in objs if o["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "kubetrove-system"
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert rule["metadata"]["labels"]["app.kubernetes.io/name"] == "kubetrove"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    # What Helm rendered is itself a valid rule file (the templates in the annotations survived Helm).
    (tmp_path / "rendered.yaml").write_text(yaml.safe_dump(rule["spec"]))
    promtool("check", "rules", str(tmp_path / "rendered.yaml"))


def test_the_service_monitor_keeps_the_operators_namespace_and_pod_labels() -> None:
    objs = template("metrics.serviceMonitor.enabled=true")
    (monitor,) = [o for o in objs if o["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
