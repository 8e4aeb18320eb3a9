"""kubetrove_operator_info names the running build: the Helm upgrade e2e test reads it from the pod."""

from __future__ import annotations

from prometheus_client import generate_latest

from kubetrove.metrics import OperatorMetrics


def test_the_info_metric_names_the_version() -> None:
    text = generate_latest(OperatorMetrics(version="0.1.1-next").registry).decode()
    assert 'kubetrove_operator_info{version="0.1.1-next"} 1.0' in text.splitlines()


def test_no_version_no_info_sample() -> None:
    text = generate_latest(OperatorMetrics().registry).decode()
    assert "kubetrove_operator_info{" not in text
