"""Generated docs are fresh, and every example is a valid object of our API (parsed by the models)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrove.api.common import API_VERSION
from kubetrove.api.resources import KINDS

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
BY_KIND = {k.kind: k for k in KINDS}
ENGINES = ("mysql", "mariadb", "postgresql", "mongodb", "cassandra")


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_api_reference_is_generated_from_the_models() -> None:
    gen = subprocess.run([sys.executable, str(ROOT / "hack" / "gen-api-docs.py"), "--check"], check=False)
    assert gen.returncode == 0, "docs/api-reference.md is stale: run python hack/gen-api-docs.py"


def test_the_reference_names_every_spec_and_status_field() -> None:
    text = (ROOT / "docs" / "api-reference.md").read_text()
    for kind in KINDS:
        for model in (kind.spec, kind.status) if kind.status is not None else (kind.spec,):
            for name, field in model.model_fields.items():
                assert f"| `{field.alias or name}` |" in text, f"{model.__name__}.{name}"


def test_the_issue_s_example_set_is_complete() -> None:
    names = {p.name for p in EXAMPLES}
    wanted = {f"{e}-{t}.yaml" for e in ENGINES for t in ("instance", "cluster")}
    wanted |= {"backup.yaml", "restore.yaml", "scheduled-backup.yaml"}
    assert wanted <= names, sorted(wanted - names)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_with_the_models(path: Path) -> None:
    for doc in docs(path):
        if doc["apiVersion"] != API_VERSION:
            assert doc["kind"] in {"Secret"}, f"{path.name}: unexpected {doc['kind']}"
            continue
        kind = BY_KIND[doc["kind"]]
        kind.spec.model_validate(doc["spec"])
        assert "namespace" not in doc["metadata"], f"{path.name}: examples apply to the current namespace"


def test_backup_and_restore_examples_refer_to_each_other() -> None:
    (backup,) = docs(ROOT / "examples" / "backup.yaml")
    (restore,) = docs(ROOT / "examples" / "restore.yaml")
    (secret,) = docs(ROOT / "examples" / "backup-storage-secret.yaml")
    source = backup["spec"]["source"]
    sources = {(d["kind"], d["metadata"]["name"]) for p in EXAMPLES for d in docs(p)}
    assert (source["kind"], source["name"]) in sources
    assert restore["spec"]["restoreFrom"]["backup"] == backup["metadata"]["name"]
    assert backup["spec"]["storage"]["s3"]["credentialsSecretRef"] == secret["metadata"]["name"]


def test_argocd_application_points_at_this_repository_s_paths() -> None:
    apps = docs(ROOT / "examples" / "argocd" / "application.yaml")
    paths = {a["spec"]["source"]["path"] for a in apps}
    assert paths == {"charts/kubetrove", "examples"}
    for path in paths:
        assert (ROOT / path).is_dir()


def test_kind_config_has_one_control_plane_and_three_workers() -> None:
    cfg = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    roles = sorted(n["role"] for n in cfg["nodes"])
    assert roles == ["control-plane", "worker", "worker", "worker"]
