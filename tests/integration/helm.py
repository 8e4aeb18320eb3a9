"""The Helm binary that `make setup` builds (hack/build-helm.sh), for the chart tests of the slow tiers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubetrove"


def helm_path() -> Path:
    """$KUBETROVE_HELM, else the cached build of hack/build-helm.sh's default version."""
    if os.environ.get("KUBETROVE_HELM"):
        return Path(os.environ["KUBETROVE_HELM"])
    script = (ROOT / "hack" / "build-helm.sh").read_text()
    m = re.search(r'HELM_VERSION="\$\{HELM_VERSION:-(v[\d.]+)\}"', script)
    assert m, "hack/build-helm.sh: HELM_VERSION default not found"
    cache = Path(os.environ.get("KUBETROVE_CACHE", Path.home() / ".cache" / "kubetrove"))
    return cache / f"helm-{m.group(1)}" / "helm"


def helm(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run helm; a missing binary FAILS (the tier was asked for: `make setup` builds it)."""
    binary = helm_path()
    assert binary.is_file(), f"{binary} is missing: run `make setup` (hack/build-helm.sh builds Helm)"
    proc = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    if check:
        assert proc.returncode == 0, (
            f"helm {' '.join(args)}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def template(*values: str, namespace: str = "kubetrove-system") -> list[dict[str, Any]]:
    """`helm template` of the chart with --set values, as a list of objects."""
    sets = [a for v in values for a in ("--set", v)]
    out = helm("template", "kt", str(CHART), "-n", namespace, "--include-crds", *sets).stdout
    return [d for d in yaml.safe_load_all(out) if d]
