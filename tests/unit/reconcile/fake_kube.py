"""An in-memory ``Kube`` for unit tests: a dict of objects with just enough API-server behaviour.

What it does like the real server: resourceVersion bumps and optimistic concurrency on replace
and on a patch naming a resourceVersion (409), AlreadyExists on create (409), ``generateName``,
``stringData`` folded into base64 ``data``, merge patches (RFC 7386: None deletes), ``generation``
bumped on spec changes, equality label selectors. What it does not do: controllers, garbage
collection, admission, schema validation; e2e tests cover those against the real control plane.
"""

from __future__ import annotations

import base64
import copy
import itertools
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kubetrove.k8s import kinds
from kubetrove.k8s.errors import Conflict, Invalid, NotFound
from kubetrove.k8s.kinds import ResourceType

LOG_T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)  # the kubelet's time of a seeded log's first line

Obj = dict[str, Any]
Key = tuple[str, str, str | None, str]


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


class FakeKube:
    """The fake API server. ``calls`` records every write as (verb, kind, name)."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._rv = itertools.count(1)
        self._names = itertools.count(1)
        # pods/log: (namespace, pod, container) -> text; every request as (pod, container, tail, since, prev)
        self.logs: dict[tuple[str, str, str], str] = {}
        self.log_requests: list[tuple[str, str, int | None, int | None, bool]] = []
        # pods/log?follow=true: (pod, container, tailLines, sinceSeconds, sinceTime); the lines in
        # ``log_growth`` are appended to the log when a stream opens (written between two reads).
        self.stream_requests: list[tuple[str, str, int | None, int | None, str | None]] = []
        self.log_growth: dict[tuple[str, str, str], str] = {}

    @staticmethod
    def key(rtype: ResourceType, namespace: str | None, name: str) -> Key:
        return (rtype.api_version, rtype.kind, namespace if rtype.namespaced else None, name)

    def _store(self, rtype: ResourceType, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if "stringData" in obj:
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(v.encode()).decode()
        old = self.objects.get(self.key(rtype, meta.get("namespace"), meta["name"]))
        gen = (old or {}).get("metadata", {}).get("generation", 0)
        if old is None or old.get("spec") != obj.get("spec"):
            gen += 1
        meta["generation"] = gen
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.objects[self.key(rtype, meta.get("namespace"), meta["name"])] = obj
        return copy.deepcopy(obj)

    def put(self, obj: Obj) -> Obj:
        """Seed an object directly (as another controller would have created it)."""
        return self._store(kinds.of(obj), copy.deepcopy(obj))

    def find(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """Synchronous read for assertions."""
        return self.objects.get(self.key(rtype, namespace, name))

    def writes(self) -> list[tuple[str, str, str]]:
        """Every write so far."""
        return list(self.calls)

    async def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        obj = self.find(rtype, namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    async def list(
        self, rtype: ResourceType, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        out = []
        for (av, kind, ns, _), obj in sorted(self.objects.items(), key=lambda kv: str(kv[0])):
            if (av, kind) != (rtype.api_version, rtype.kind) or (namespace is not None and ns != namespace):
                continue
            have = obj["metadata"].get("labels") or {}
            if all(have.get(k) == v for k, v in (labels or {}).items()):
                out.append(copy.deepcopy(obj))
        return out

    async def apply(self, manifest: Obj) -> Obj:
        rtype = kinds.of(manifest)
        self.calls.append(("apply", rtype.kind, manifest["metadata"]["name"]))
        meta = manifest["metadata"]
        old = self.find(rtype, meta.get("namespace"), meta["name"])
        merged = merge(old or {}, copy.deepcopy(manifest))
        return self._store(rtype, merged)

    async def create(self, manifest: Obj) -> Obj:
        rtype = kinds.of(manifest)
        obj = copy.deepcopy(manifest)
        meta = obj["metadata"]
        if "name" not in meta:
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?-?", meta["generateName"]):
                raise Invalid(422, "Invalid", f"metadata.generateName {meta['generateName']!r}")
            meta["name"] = f"{meta['generateName']}{next(self._names)}"
        self.calls.append(("create", rtype.kind, meta["name"]))
        if self.find(rtype, meta.get("namespace"), meta["name"]) is not None:
            raise Conflict(409, "AlreadyExists", meta["name"])
        return self._store(rtype, obj)

    async def replace(self, manifest: Obj) -> Obj:
        rtype = kinds.of(manifest)
        meta = manifest["metadata"]
        self.calls.append(("replace", rtype.kind, meta["name"]))
        old = self.find(rtype, meta.get("namespace"), meta["name"])
        if old is None:
            raise NotFound(404, "NotFound", meta["name"])
        if meta.get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        return self._store(rtype, copy.deepcopy(manifest))

    async def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str | None = None,
    ) -> Obj:
        self.calls.append((f"patch{'/' + subresource if subresource else ''}", rtype.kind, name))
        old = self.find(rtype, namespace, name)
        if old is None:
            raise NotFound(404, "NotFound", name)
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != old["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        return self._store(rtype, merge(old, patch))

    async def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> bool:
        self.calls.append(("delete", rtype.kind, name))
        return self.objects.pop(self.key(rtype, namespace, name), None) is not None

    async def pod_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
    ) -> str:
        """The seeded log's last ``tail_lines`` lines (``since_seconds`` is recorded, not applied); with
        ``timestamps`` line i is stamped ``LOG_T0`` + i seconds + 0.5."""
        self.log_requests.append((pod, container, tail_lines, since_seconds, previous))
        lines = self._log_lines(namespace, pod, container, timestamps)
        return "".join(f"{line}\n" for line in (lines[-tail_lines:] if tail_lines else lines))

    async def pod_log_stream(
        self,
        namespace: str,
        pod: str,
        container: str,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[str]:
        """The log (grown by ``log_growth``) from ``since_time`` (whole seconds), then the stream ends."""
        self.stream_requests.append((pod, container, tail_lines, since_seconds, since_time))
        key = (namespace, pod, container)
        if key in self.logs:
            self.logs[key] += self.log_growth.pop(key, "")
        lines = self._log_lines(namespace, pod, container, True)
        if since_time is not None:
            lines = [line for line in lines if line[:19] >= since_time[:19]]
        for line in lines[-tail_lines:] if tail_lines else lines:
            yield line if timestamps else line.partition(" ")[2]

    def _log_lines(self, namespace: str, pod: str, container: str, timestamps: bool) -> list[str]:
        if (namespace, pod, container) not in self.logs:
            raise NotFound(404, "NotFound", f'pods "{pod}" not found')
        lines = self.logs[(namespace, pod, container)].splitlines()
        if not timestamps:
            return lines
        return [
            f"{(LOG_T0 + timedelta(seconds=i)).strftime('%Y-%m-%dT%H:%M:%S')}.5Z {line}"
            for i, line in enumerate(lines)
        ]
