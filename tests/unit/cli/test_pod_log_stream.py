"""``KubeClient.pod_log_stream``: pods/log?follow=true line by line from a real HTTP server, and a stream
the caller leaves while the log is quiet ends at once, its reading thread too."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import kubernetes
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubetrove.k8s.client import KubeClient


@pytest.fixture
async def kubelet_log() -> AsyncIterator[tuple[KubeClient, list[dict[str, str]]]]:
    """An API server stand-in whose pods/log sends two lines, then nothing (a quiet container)."""
    asked: list[dict[str, str]] = []

    async def log(request: web.Request) -> web.StreamResponse:
        asked.append(dict(request.query))
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"2026-12-07T01:00:00.5Z first\n2026-12-07T01:00:01Z sec")
        await resp.write("ond é\n".encode())
        await asyncio.Event().wait()  # quiet until the client goes
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/ns/pods/p/log", log)
    server = TestServer(app)
    await server.start_server()
    config = kubernetes.client.Configuration()
    config.host = str(server.make_url("")).rstrip("/")
    kube = KubeClient(config)
    yield kube, asked
    kube.close()
    await server.close()


async def test_lines_arrive_as_written_and_leaving_a_quiet_stream_ends_it(
    kubelet_log: tuple[KubeClient, list[dict[str, str]]],
) -> None:
    kube, asked = kubelet_log
    stream = kube.pod_log_stream("ns", "p", "agent", since_time="2026-12-07T01:00:00Z", timestamps=True)
    got = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
    assert got == ["2026-12-07T01:00:00.5Z first", "2026-12-07T01:00:01Z second é"]
    assert asked == [
        {"container": "agent", "sinceTime": "2026-12-07T01:00:00Z", "timestamps": "true", "follow": "true"}
    ]
    await asyncio.wait_for(stream.aclose(), 10)  # never blocks on the reading thread...
    for _ in range(1000):  # ...whose blocked read the socket's shutdown ends
        if not any(t.name == "pod-log-p" for t in threading.enumerate()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the thread reading the log is still blocked")
