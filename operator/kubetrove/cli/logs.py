"""``kubectl trove logs``: a member's engine logs, read from the API server AS THE USER (``pods/log``).

Why not through the agent: agents answer only the operator (its mTLS client certificate), and the logs
are already where Kubernetes keeps logs. The engines write their error log to their container's stderr
(the Kubernetes convention, so ``kubectl logs`` and log collectors get it); what an engine cannot write
there (its slow log is a table or a collection; some engines' error log is a file), the agent publishes
on ITS stdout, one JSON line per entry under the loggers ``kubetrove.engine.slow`` and
``kubetrove.engine.error`` (kubetrove.agent.engine_logs). So ``--slow`` reads the agent container's log
and keeps those lines, printed readably; the error log comes from the container the engine's datastore
names (``EngineContainer.error_log_container``). Either way the user needs RBAC ``get`` on ``pods/log``
in the namespace, nothing more.

``--tail N`` counts entries: for the agent's lines, the agent container's whole log (what the kubelet
keeps, or ``--since``) is read and its last N entries kept. ``--follow`` streams (``follow=true``): the
engine container's log directly; the agent's after its history, from the kubelet time of the last line
read (``sinceTime`` has a precision of one second, so the lines of that second already read are dropped
by their full timestamps).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from kubetrove.agent.protocol import ENGINE_ERROR_LOGGER, ENGINE_SLOW_LOGGER
from kubetrove.cli.commands import CliError, Ctx, duration_seconds, find, store_of
from kubetrove.k8s.errors import NotFound
from kubetrove.render.names import AGENT_CONTAINER, ENGINE_CONTAINER, ChildNames


@dataclass(frozen=True)
class LogSource:
    """Where one log of one member is: a container, and for the agent's the logger of its lines."""

    pod: str
    container: str
    logger: str | None = None  # None: every line of the container is the log


async def log_source(ctx: Ctx, name: str, member: str | None, slow: bool) -> LogSource:
    """The member (``--member``, else the primary, else ordinal 0) and where its slow or error log is."""
    obj = await find(ctx, name)
    status = obj.get("status") or {}
    first = f"{ChildNames(name).statefulset}-0"
    pod = member or status.get("primary") or first
    members = [str(m.get("pod")) for m in status.get("members") or []]
    own = re.fullmatch(rf"{re.escape(ChildNames(name).statefulset)}-\d+", pod) is not None
    if member and not (pod in members or own):
        known = ", ".join(members) or first
        raise CliError(f"{pod} is not a member of {name} (members: {known})")
    if slow:
        return LogSource(pod, AGENT_CONTAINER, ENGINE_SLOW_LOGGER)
    store = store_of(obj)
    version = str(((obj.get("spec") or {}).get("datastore") or {}).get("version", ""))
    container = store.container(version if version in store.versions else next(iter(store.versions)))
    if container.error_log_container == "agent":
        return LogSource(pod, AGENT_CONTAINER, ENGINE_ERROR_LOGGER)
    return LogSource(pod, ENGINE_CONTAINER)


async def engine_logs(
    ctx: Ctx,
    name: str,
    member: str | None,
    tail: int | None,
    since: str | None,
    previous: bool,
    slow: bool = False,
) -> str:
    """A member's error log (or ``slow`` log): its last ``tail`` lines or entries, as text."""
    seconds = duration_seconds(since) if since else None
    source = await log_source(ctx, name, member, slow)
    kube, ns = ctx.kube, ctx.namespace
    try:
        if source.logger is None:
            return await kube.pod_log(ns, source.pod, source.container, tail, seconds, previous)
        text = await kube.pod_log(ns, source.pod, source.container, None, seconds, previous)
    except NotFound as exc:
        raise CliError(f"no log for pod {source.pod} of {name}: the pod does not exist (yet)") from exc
    return "".join(f"{line}\n" for line in _last(entry_lines(text.splitlines(), source.logger), tail))


async def follow_engine_logs(
    ctx: Ctx, name: str, member: str | None, tail: int | None, since: str | None, slow: bool = False
) -> AsyncIterator[str]:
    """A member's error log (or ``slow`` log), its last ``tail`` lines or entries and then each new one,
    for as long as the caller iterates (or the container runs)."""
    seconds = duration_seconds(since) if since else None
    source = await log_source(ctx, name, member, slow)
    kube, ns = ctx.kube, ctx.namespace
    try:
        if source.logger is None:
            async for line in kube.pod_log_stream(ns, source.pod, source.container, tail, seconds):
                yield line
            return
        history = await kube.pod_log(ns, source.pod, source.container, None, seconds, timestamps=True)
        stamped = [split_timestamp(line) for line in history.splitlines()]
        for line in _last(entry_lines((text for _, text in stamped), source.logger), tail):
            yield line
        last = stamped[-1][0] if stamped else None
        stream = kube.pod_log_stream(
            ns,
            source.pod,
            source.container,
            since_seconds=seconds if last is None else None,
            since_time=last[:19] + "Z" if last else None,  # whole seconds: that second's lines come again
            timestamps=True,
        )
        async for raw in stream:
            stamp, text = split_timestamp(raw)
            if last is not None and time_key(stamp) <= time_key(last):
                continue
            for line in entry_lines([text], source.logger):
                yield line
    except NotFound as exc:
        raise CliError(f"no log for pod {source.pod} of {name}: the pod does not exist (yet)") from exc


def _last(lines: list[str], tail: int | None) -> list[str]:
    return lines if tail is None else lines[-tail:] if tail > 0 else []


def entry_lines(lines: Iterable[str], logger: str) -> list[str]:
    """The agent's lines of ``logger`` (other lines, its own log, are left out), each one readable line:
    slow: ``time  duration  user@database  query``; error: ``time  level  message``."""
    out = []
    for line in lines:
        if f'"{logger}"' not in line:  # cheap test first: the agent logs every request too
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("logger") != logger:
            continue
        when = str(entry.get("time") or "-")
        if logger == ENGINE_SLOW_LOGGER:
            who = f"{entry.get('user') or '-'}@{entry.get('database') or '-'}"
            seconds = float(entry.get("duration_seconds") or 0)
            out.append(f"{when}  {seconds:.3f}s  {who}  {entry.get('query', '')}")
        else:
            out.append(f"{when}  {entry.get('level') or '-'}  {entry.get('message', '')}")
    return out


def split_timestamp(line: str) -> tuple[str, str]:
    """A ``timestamps=true`` line: the kubelet's RFC 3339 time, and the line as the container wrote it."""
    stamp, _, text = line.partition(" ")
    return stamp, text


def time_key(stamp: str) -> tuple[str, int]:
    """An RFC 3339 (nano) time, sortable: its whole seconds, then its nanoseconds (the kubelet trims
    trailing zeros of the fraction, so the strings do not sort by themselves)."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole[:19], int((fraction + "000000000")[:9] or 0)
