"""The generated CRDs: not stale, and structural in the sense the API server enforces.

The structural rules checked here are those of "Specifying a structural schema" in the Kubernetes docs
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema)
plus the v1 restrictions (no $ref, no nullable-with-anyOf tricks, properties XOR additionalProperties).
They are written independently of ``crdgen`` so that a generator bug fails here; the e2e tier applies the same
files to a real kube-apiserver.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrove.api import crdgen
from kubetrove.api.common import GROUP, VERSION
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, KINDS, POLICY, Kind

CRDS = Path(__file__).parents[3] / "crds"

# Fields of apiextensions.k8s.io/v1 JSONSchemaProps that a generated schema may use.
ALLOWED_KEYS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "enum", "pattern",
    "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "minItems", "maxItems", "minProperties", "maxProperties", "default", "anyOf",
    "x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
}  # fmt: skip
TYPES = {"object", "array", "string", "integer", "number", "boolean"}
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def load(kind: Kind) -> dict[str, Any]:
    return yaml.safe_load((CRDS / crdgen.filename(kind)).read_text())  # type: ignore[no-any-return]


def root_schema(kind: Kind) -> dict[str, Any]:
    return load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below (and including) ``node``, with a readable path."""
    yield path or "<root>", node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def conforms(value: Any, node: dict[str, Any]) -> bool:
    """Whether a (default) value satisfies a scalar schema node."""
    kinds: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "number": (int, float)}
    kinds["boolean"] = bool
    if node.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kinds[node["type"]]) and (
            node["type"] == "boolean" or not isinstance(value, bool)
        )
    if isinstance(value, str):
        ok = ok and re.search(node.get("pattern", ""), value) is not None
        ok = ok and node.get("minLength", 0) <= len(value) <= node.get("maxLength", len(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ok = ok and node.get("minimum", value) <= value <= node.get("maximum", value)
    return ok and value in node.get("enum", [value])


def structural_errors(schema: dict[str, Any]) -> list[str]:
    """Every way ``schema`` breaks the structural-schema rules (empty when it is structural)."""
    errors: list[str] = []
    if schema.get("type") != "object":
        errors.append("root: type must be object")
    if set(schema["properties"]["metadata"]) - {"type"}:
        errors.append("metadata: only its type may be given")
    for path, node in walk(schema):
        errors += [f"{path}: key {k!r} not allowed" for k in set(node) - ALLOWED_KEYS]
        if node.get("x-kubernetes-int-or-string"):
            if "type" in node or node.get("anyOf", INT_OR_STRING) != INT_OR_STRING:
                errors.append(f"{path}: int-or-string must have no type and anyOf [integer, string]")
        elif node.get("type") not in TYPES:
            errors.append(f"{path}: missing or bad type {node.get('type')!r}")
        elif "anyOf" in node:
            errors.append(f"{path}: anyOf outside the int-or-string pattern")
        if "properties" in node and "additionalProperties" in node:
            errors.append(f"{path}: properties and additionalProperties are mutually exclusive")
        if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
            errors.append(f"{path}: additionalProperties must be a schema")
        if node.get("type") == "array" and "items" not in node:
            errors.append(f"{path}: array without items")
        shapeless = "properties" not in node and "additionalProperties" not in node
        if node.get("type") == "object" and shapeless and path not in {"<root>", ".metadata"}:
            errors.append(f"{path}: object with neither properties nor additionalProperties")
        missing = set(node.get("required", [])) - set(node.get("properties", {}))
        errors += [f"{path}: required names unknown property {m!r}" for m in sorted(missing)]
        if "default" in node and (
            isinstance(node["default"], (dict, list)) or not conforms(node["default"], node)
        ):
            errors.append(f"{path}: default {node['default']!r} does not satisfy the node")
        if "default" in node and node["default"] is None:
            errors.append(f"{path}: null default")
        for pattern in [node["pattern"]] if "pattern" in node else []:
            if re.search(r"\(\?[=!<]|\\[1-9]", pattern):
                errors.append(f"{path}: pattern uses lookaround/backreference (not RE2)")
        errors += list_type_errors(path, node)
        for rule in node.get("x-kubernetes-validations", []):
            if not rule.get("rule") or not rule.get("message") or set(rule) - {"rule", "message"}:
                errors.append(f"{path}: validation rule needs exactly rule and message: {rule}")
    return errors


def list_type_errors(path: str, node: dict[str, Any]) -> list[str]:
    """List markers: map lists keyed by required scalar item fields, set lists of scalars."""
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        return (
            [f"{path}: list-map-keys without list-type map"] if "x-kubernetes-list-map-keys" in node else []
        )
    items = node.get("items", {})
    if node.get("type") != "array" or list_type not in {"map", "set", "atomic"}:
        return [f"{path}: bad list-type {list_type!r}"]
    if list_type == "set":
        return [] if items.get("type") in TYPES - {"object", "array"} else [f"{path}: set of non-scalars"]
    errors = []
    for key in node.get("x-kubernetes-list-map-keys", []) if list_type == "map" else []:
        if key not in items.get("required", []) or items["properties"][key].get("type") not in {
            "string",
            "integer",
        }:
            errors.append(f"{path}: map key {key!r} must be a required scalar of the items")
    if list_type == "map" and not node.get("x-kubernetes-list-map-keys"):
        errors.append(f"{path}: list-type map without keys")
    return errors


def test_crds_are_not_stale(tmp_path: Path) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    generated = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in CRDS.glob("*.yaml")}
    assert generated.keys() == committed.keys(), "run `make crds`"
    for name, text in generated.items():
        assert committed[name] == text, f"crds/{name} is stale: run `make crds`"


def test_check_mode_reports_stale_missing_and_extra_files(tmp_path: Path) -> None:
    crdgen.main([str(tmp_path)])
    assert crdgen.main([str(tmp_path), "--check"]) == 0
    target = tmp_path / crdgen.filename(CLUSTER)
    target.write_text(target.read_text().replace("minimum: 1", "minimum: 2"))
    assert crdgen.main([str(tmp_path), "--check"]) == 1
    assert crdgen.stale_files(tmp_path) == [crdgen.filename(CLUSTER)]
    crdgen.main([str(tmp_path)])
    (tmp_path / crdgen.filename(BACKUP)).unlink()
    shutil.copy(CRDS / crdgen.filename(INSTANCE), tmp_path / "old.yaml")
    assert crdgen.stale_files(tmp_path) == [crdgen.filename(BACKUP), "old.yaml"]
    assert crdgen.main([str(tmp_path / "absent"), "--check"]) == 1


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind: Kind) -> None:
    assert structural_errors(root_schema(kind)) == []


def test_structural_check_can_fail() -> None:
    bad = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": {
                "type": "object",
                "required": ["gone"],
                "properties": {
                    "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "b": {"$ref": "#/definitions/B"},
                    "c": {"type": "array", "items": {"type": "object", "properties": {}},
                          "x-kubernetes-list-type": "map"},
                    "d": {"type": "string", "default": 3, "pattern": "^(?!x)"},
                    "e": {"type": "object", "properties": {}, "additionalProperties": False},
                },
            },
        },
    }  # fmt: skip
    errors = "\n".join(structural_errors(bad))
    expected = ["metadata:", "unknown property 'gone'", ".spec.a: missing or bad type", "'$ref' not allowed",
                "list-type map without keys", "default 3", "not RE2", "mutually exclusive"]  # fmt: skip
    assert [e for e in expected if e not in errors] == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_identity(kind: Kind) -> None:
    crd = load(kind)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1" and crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{kind.plural}.{GROUP}"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == (GROUP, "Namespaced" if kind.namespaced else "Cluster")
    assert spec["names"] == {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
        "shortNames": list(kind.short_names),
        "categories": ["kubetrove"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)
    # A kind without a status model (DatabasePolicy) has no status subresource and no status field.
    assert version.get("subresources") == ({"status": {}} if kind.status else None)
    assert ("status" in root_schema(kind)["properties"]) == (kind.status is not None)
    assert root_schema(kind)["required"] == ["spec"]


def test_short_names() -> None:
    assert [k.short_names for k in KINDS] == [("dbi",), ("dbc",), ("dbb",), ("dbp",)]


def node_at(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in json_path.strip(".").split("."):
        node = (node or {}).get("properties", {}).get(part.removesuffix("[*]"))
        if part.endswith("[*]"):  # every item of a list
            node = (node or {}).get("items")
    return node


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        (INSTANCE, ["Engine", "Version", "Phase", "Reason", "Age", "Message"]),
        (CLUSTER, ["Engine", "Version", "Replicas", "Phase", "Primary", "Reason", "Age", "Message"]),
        (BACKUP, ["Source", "Phase", "Size", "Age"]),
        (POLICY, ["Engines", "Age"]),
    ],
    ids=lambda v: v.kind if isinstance(v, Kind) else "",
)
def test_printer_columns_point_at_real_fields(kind: Kind, columns: list[str]) -> None:
    printed = load(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in printed] == columns
    schema = root_schema(kind)
    for column in printed:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        path = column["jsonPath"]
        if path.startswith('.status.conditions[?(@.type=="Ready")].'):  # a field of the Ready condition
            conditions = node_at(schema, ".status.conditions")
            assert conditions is not None
            node = conditions["items"]["properties"].get(path.rsplit(".", 1)[1])
            assert node is not None and column["type"] == node["type"], column
            continue
        node = node_at(schema, path)
        assert node is not None, column
        assert column["type"] == node["type"], column


def test_spec_details_reach_the_schema() -> None:
    spec = root_schema(CLUSTER)["properties"]["spec"]
    assert spec["required"] == ["datastore"]
    assert spec["properties"]["replicas"] | {"description": ""} == {
        "type": "integer", "minimum": 1, "maximum": 15, "default": 3, "description": ""
    }  # fmt: skip
    assert spec["properties"]["datastore"]["properties"]["type"]["enum"] == [
        "mysql", "mariadb", "postgresql", "mongodb", "cassandra"
    ]  # fmt: skip
    assert spec["properties"]["parameters"]["additionalProperties"] == {"type": "string"}
    assert spec["properties"]["users"]["x-kubernetes-list-map-keys"] == ["name"]
    storage = spec["properties"]["backup"]["properties"]["storage"]
    assert storage["x-kubernetes-validations"] == [
        {"rule": "has(self.s3) != has(self.pvc)", "message": "set exactly one of s3 or pvc"}
    ]
    assert spec["properties"]["backup"]["x-kubernetes-validations"] == [
        {
            "rule": "!has(self.verifyMaxRestoreSeconds) || (has(self.verify) && self.verify)",
            "message": "verifyMaxRestoreSeconds needs verify: true",
        }
    ]
    undescribed = [p for k in KINDS for p, n in walk(root_schema(k)) if not n.get("description")]
    # Only what has no name of its own: metadata, map values and scalar list items.
    assert [p for p in undescribed if p != ".metadata" and not p.endswith(("[]", "{}"))] == []


def test_no_status_field_is_required() -> None:
    for kind in (k for k in KINDS if k.status is not None):
        status = root_schema(kind)["properties"]["status"]
        assert "required" not in status
        for path, node in walk(status):
            if "required" in node:
                assert path.endswith("[]"), path  # only inside list items (a condition needs its type)


@pytest.mark.parametrize("kind", [CLUSTER, INSTANCE], ids=lambda k: k.kind)
def test_autogrow_schema_refuses_what_it_can(kind: Kind) -> None:
    """spec.storage.autogrow on the wire: maximum required, threshold an integer 50..95, increment and
    maximum patterned quantities, and no unknown field kept (a typo such as ``treshold`` is pruned, or
    refused by ``kubectl apply``'s default --validate=strict; never stored)."""
    storage = root_schema(kind)["properties"]["spec"]["properties"]["storage"]
    auto = storage["properties"]["autogrow"]
    assert auto["type"] == "object" and auto["required"] == ["maximum"]
    assert "default" not in auto and "nullable" not in auto  # null is pruned: autogrow off
    assert not any("x-kubernetes-preserve-unknown-fields" in node for _, node in walk(storage))
    assert set(auto["properties"]) == {"threshold", "increment", "maximum"}
    threshold = auto["properties"]["threshold"]
    assert (threshold["type"], threshold["minimum"], threshold["maximum"], threshold["default"]) == (
        "integer", 50, 95, 80
    )  # fmt: skip
    for name in ("increment", "maximum"):
        node = auto["properties"][name]
        assert node["anyOf"] == INT_OR_STRING and node["x-kubernetes-int-or-string"] is True
        assert node["pattern"].startswith("^") and node["pattern"].endswith("$")
    assert auto["properties"]["increment"]["default"] == "20%"
    increment = re.compile(auto["properties"]["increment"]["pattern"])
    maximum = re.compile(auto["properties"]["maximum"]["pattern"])
    for good in ("1%", "20%", "100%", "1Gi", "0", "1000000Ti", "1.5Gi", "1e3"):
        assert increment.fullmatch(good), good
    for bad in ("0%", "101%", "1.5%", "-1Gi", "+1Gi", "abc", "", "1Gi ", " 1Gi", "1 Gi", "01%", "20 %"):
        assert not increment.fullmatch(bad), bad
    for bad in ("", "abc", "-1Gi", "10Gi ", "20%"):
        assert not maximum.fullmatch(bad), bad
