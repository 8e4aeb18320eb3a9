"""One source of images: hack/images/recipes.py builds every image the operator and the chart name by
default, in the registry the operator defaults to; the catalog entries without a recipe are listed
here, so adding either a recipe or a catalog version has to update this list (and the README's)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from kubetrove.datastores.base import qualified_image
from kubetrove.datastores.registry import REGISTRY
from kubetrove.runtime.config import DEFAULT_AGENT_IMAGE, DEFAULT_IMAGE_REGISTRY, OperatorConfig

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "hack"))

from images.recipes import RECIPES, default_registry  # noqa: E402 (hack/ is not a package root)
from realnode import registry  # noqa: E402

# Catalog versions no recipe builds yet (no test pulls or runs them): docs/getting-started.md, "Images".
CATALOG_ONLY = {
    "mariadb:11.4.10",
    "mariadb:11.8.6",
    "postgres:16.14",
    "postgres:17.10",
    "postgres:18.4",
    "mysql:8.4.8",
    "mysql:9.7.0",
    "mongo:7.0.28",
    "mongo:8.0.16",
    "cassandra:4.1.10",
    "cassandra:5.0.6",
}


def built_refs() -> set[str]:
    return {RECIPES[name]().ref for name in RECIPES}


def test_the_operator_defaults_to_the_local_registry_the_images_are_pushed_to() -> None:
    assert DEFAULT_IMAGE_REGISTRY == registry.REPOSITORY == default_registry()
    default_agent = qualified_image(registry.REPOSITORY, DEFAULT_AGENT_IMAGE)
    assert OperatorConfig.from_env({}).agent_image == default_agent
    assert DEFAULT_AGENT_IMAGE in built_refs()


def test_every_catalog_image_is_built_or_listed_as_catalog_only() -> None:
    catalog = {info.image for store in REGISTRY.values() for info in store.versions.values()}
    assert catalog - built_refs() == CATALOG_ONLY


def test_the_chart_s_default_images_are_built() -> None:
    chart = yaml.safe_load((ROOT / "charts/kubetrove/Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts/kubetrove/values.yaml").read_text())
    assert values["imageRegistry"] == registry.REPOSITORY
    assert not values["image"]["repository"] and not values["agent"]["repository"]
    assert not values["agent"]["images"]
    tag = values["image"]["tag"] or chart["appVersion"]
    assert {f"operator:{tag}", f"agent:{values['agent']['tag'] or chart['appVersion']}"} <= built_refs()


def test_examples_name_no_image() -> None:
    named = [p.name for p in (ROOT / "examples").rglob("*.yaml") if "image:" in p.read_text()]
    assert not named, f"examples naming an image directly: {named}"
