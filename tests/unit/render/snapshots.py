"""Snapshot files: rendered manifests compared with literal YAML under ``snapshots/``.

The default run COMPARES and fails on any difference. To accept a deliberate change, regenerate and
review the diff: ``KUBETROVE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/render``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_ENV = "KUBETROVE_UPDATE_SNAPSHOTS"


def dump(manifests: list[dict[str, Any]]) -> str:
    """Canonical YAML: sorted keys, block style, one document per manifest."""
    return yaml.safe_dump_all(manifests, sort_keys=True, default_flow_style=False, width=120)


def assert_matches(name: str, manifests: list[dict[str, Any]]) -> None:
    """Compare ``manifests`` with ``snapshots/<name>.yaml`` (or rewrite it when ``UPDATE_ENV=1``)."""
    path = SNAPSHOTS / f"{name}.yaml"
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(dump(manifests))
        return
    assert path.exists(), f"no snapshot {path}: run with {UPDATE_ENV}=1 and review the new file"
    expected = list(yaml.safe_load_all(path.read_text()))
    # Compare data (not text) so the failure shows a structural diff; the text form is canonical anyway.
    assert manifests == expected, f"{path} differs; if intended, regenerate with {UPDATE_ENV}=1"
