"""``KubeClient``: the production ``Kube``, on the official ``kubernetes`` client.

Why this shape: the official client is synchronous; every call runs in a worker thread
(``asyncio.to_thread``) so kopf's event loop never blocks. Requests go through the raw
``ApiClient.call_api`` with dict bodies instead of the generated typed APIs, because the manifests
come from ``kubetrove.render`` as dicts and server-side apply needs the
``application/apply-patch+yaml`` content type the typed APIs do not offer for every kind.
Replies are read as raw JSON (``_preload_content=False``) so objects round-trip unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from kubetrove.k8s import kinds
from kubetrove.k8s.errors import NotFound, from_status
from kubetrove.k8s.kinds import ResourceType
from kubetrove.k8s.port import FIELD_MANAGER, Obj

APPLY = "application/apply-patch+yaml"  # JSON is YAML: the client sends the body as JSON
MERGE = "application/merge-patch+json"
JSON = "application/json"
REQUEST_TIMEOUT = 30.0
# Told of every call: (verb, resource plural, seconds waiting for a thread, seconds in the call). The
# operator counts them (kubetrove_api_*): where a burst waits, for the thread pool or for the API server.
Observer = Callable[[str, str, float, float], None]


def load_config(kubeconfig: str | None = None) -> Any:
    """A client Configuration from ``kubeconfig`` (or $KUBECONFIG / ~/.kube/config), else in-cluster."""
    cfg = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    except (kubernetes.config.ConfigException, FileNotFoundError, TypeError):
        kubernetes.config.load_incluster_config(client_configuration=cfg)
    return cfg


class KubeClient:
    """The Kubernetes API over the official client (see the module docstring)."""

    def __init__(self, configuration: Any = None, observe: Observer | None = None) -> None:
        self._api = kubernetes.client.ApiClient(configuration or load_config())
        self._observe = observe

    def close(self) -> None:
        """Release the connection pool."""
        self._api.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = JSON,
    ) -> Obj:
        try:
            resp = self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": JSON},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            raise _error(exc) from None
        data = resp.data
        return json.loads(data) if data else {}

    async def _acall(
        self, rtype: ResourceType, method: str, *args: Any, verb: str = "", **kwargs: Any
    ) -> Obj:
        """``_call`` in a worker thread; ``verb`` names it for the observer (else ``method``)."""
        observe = self._observe
        if observe is None:
            return await asyncio.to_thread(self._call, method, *args, **kwargs)
        queued = time.monotonic()
        started = queued

        def timed() -> Obj:
            nonlocal started
            started = time.monotonic()
            return self._call(method, *args, **kwargs)

        try:
            return await asyncio.to_thread(timed)
        finally:
            observe(verb or method, rtype.plural, started - queued, time.monotonic() - started)

    async def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """One object, or None when it does not exist."""
        try:
            return await self._acall(rtype, "GET", rtype.path(namespace, name))
        except NotFound:
            return None

    async def list(
        self, rtype: ResourceType, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        """Objects of a type, filtered by equality label selectors."""
        query = [("labelSelector", ",".join(f"{k}={v}" for k, v in labels.items()))] if labels else []
        reply = await self._acall(rtype, "GET", rtype.path(namespace), query=query, verb="LIST")
        items: list[Obj] = reply.get("items", [])
        for item in items:  # list items come without apiVersion/kind; put them back
            item.setdefault("apiVersion", rtype.api_version)
            item.setdefault("kind", rtype.kind)
        return items

    async def apply(self, manifest: Obj) -> Obj:
        """Server-side apply with our field manager, forcing ownership of every field we render."""
        rtype, ns, name = _locate(manifest)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return await self._acall(rtype, "PATCH", rtype.path(ns, name), manifest, query, APPLY, verb="APPLY")

    async def create(self, manifest: Obj) -> Obj:
        """POST; raises Conflict when it exists."""
        rtype, ns, _ = _locate(manifest, need_name=False)
        query = [("fieldManager", FIELD_MANAGER)]
        return await self._acall(rtype, "POST", rtype.path(ns), manifest, query)

    async def replace(self, manifest: Obj) -> Obj:
        """PUT with the manifest's resourceVersion (optimistic concurrency)."""
        rtype, ns, name = _locate(manifest)
        query = [("fieldManager", FIELD_MANAGER)]
        return await self._acall(rtype, "PUT", rtype.path(ns, name), manifest, query)

    async def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str | None = None,
    ) -> Obj:
        """JSON merge patch (optionally of a subresource)."""
        query = [("fieldManager", FIELD_MANAGER)]
        return await self._acall(
            rtype, "PATCH", rtype.path(namespace, name, subresource), patch, query, MERGE
        )

    async def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> bool:
        """DELETE with background propagation; False when already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        try:
            await self._acall(rtype, "DELETE", rtype.path(namespace, name), body)
        except NotFound:
            return False
        return True

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
        """GET .../pods/{pod}/log as text (the caller's credentials: RBAC ``get`` on ``pods/log``)."""
        query = _log_query(container, tail_lines, since_seconds, None, timestamps)
        query += [("previous", "true")] if previous else []
        return await asyncio.to_thread(self._text, _log_path(namespace, pod), query)

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
        """GET .../pods/{pod}/log?follow=true, line by line as the kubelet sends them (as the caller)."""
        query = [
            *_log_query(container, tail_lines, since_seconds, since_time, timestamps),
            ("follow", "true"),
        ]
        # No read timeout: a followed log is quiet for as long as the container writes nothing.
        resp = await asyncio.to_thread(self._open, _log_path(namespace, pod), query, (REQUEST_TIMEOUT, None))
        # The blocking reads run in a daemon thread of their own, not the loop's executor: asyncio.run
        # waits for the executor's threads at exit, so Ctrl-C on a quiet log would hang until a line came.
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | Exception | None] = asyncio.Queue()

        def pump() -> None:
            end: Exception | None = None
            try:
                for line in iter_resp_lines(resp):
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except Exception as exc:  # the connection broke (or was shut down below)
                end = exc
            finally:
                resp.release_conn()
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
                loop.call_soon_threadsafe(lines.put_nowait, end)

        threading.Thread(target=pump, name=f"pod-log-{pod}", daemon=True).start()
        try:
            while (line := await lines.get()) is not None:
                if isinstance(line, Exception):
                    raise line
                yield line
        finally:
            # Never close() here: it waits for the reading thread's lock. shutdown() (urllib3 2.3+) ends
            # its blocked read; without it the daemon thread waits for the next line or the end.
            with contextlib.suppress(Exception):
                getattr(resp, "shutdown", lambda: None)()

    def _text(self, path: str, query: Sequence[tuple[str, str]]) -> str:
        resp = self._open(path, query, REQUEST_TIMEOUT)
        return bytes(resp.data or b"").decode("utf-8", errors="replace")

    def _open(self, path: str, query: Sequence[tuple[str, str]], timeout: Any) -> Any:
        try:
            resp = self._api.call_api(
                path,
                "GET",
                query_params=[*query],
                header_params={"Accept": "text/plain, application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        except ApiException as exc:
            raise _error(exc) from None
        return resp


def _log_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/log"


def _log_query(
    container: str,
    tail_lines: int | None,
    since_seconds: int | None,
    since_time: str | None,
    timestamps: bool,
) -> list[tuple[str, str]]:
    query = [("container", container)]
    query += [("tailLines", str(tail_lines))] if tail_lines is not None else []
    query += [("sinceSeconds", str(since_seconds))] if since_seconds is not None else []
    query += [("sinceTime", since_time)] if since_time is not None else []
    query += [("timestamps", "true")] if timestamps else []
    return query


def _locate(manifest: Obj, need_name: bool = True) -> tuple[ResourceType, str | None, str]:
    rtype = kinds.of(manifest)
    meta = manifest.get("metadata", {})
    name = meta.get("name", "")
    if need_name and not name:
        raise ValueError(f"{rtype.kind} manifest without metadata.name")
    return rtype, (meta.get("namespace") if rtype.namespaced else None), name


def _error(exc: ApiException) -> Exception:
    message = ""
    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = str(exc.body or "")
    return from_status(int(exc.status or 0), str(exc.reason or ""), message)
