"""Kubernetes Events about our custom resources (events.k8s.io/v1), shown by ``kubectl describe``."""

from __future__ import annotations

import datetime
import enum
import logging
import socket
from typing import Any

from kubetrove.api.common import API_VERSION
from kubetrove.api.resources import ObjectRef
from kubetrove.k8s.errors import ApiError
from kubetrove.k8s.kinds import EVENT
from kubetrove.k8s.port import Kube, Obj

REPORTING_CONTROLLER = "kubetrove.io/operator"
MAX_NOTE = 1024  # the API server refuses longer notes


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


def now_micro() -> str:
    """An RFC 3339 timestamp with microseconds (the MicroTime format eventTime requires)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reporting_instance(pod_name: str | None = None) -> str:
    """Who reports: the operator's pod name when known (the chart sets POD_NAME), else the host name.
    It must fit a label value (events.k8s.io validation: <= 128 characters)."""
    return (pod_name or socket.gethostname())[:128]


def build_event(
    ref: ObjectRef, etype: EventType, reason: str, message: str, action: str, instance: str
) -> Obj:
    """The Event manifest (a pure function; ``post_event`` sends it)."""
    return {
        "apiVersion": EVENT.api_version,
        "kind": EVENT.kind,
        # generateName must itself be a valid name prefix: "<name>-", not "<name>." (422 otherwise).
        "metadata": {"generateName": f"{ref.name}-", "namespace": ref.namespace},
        "eventTime": now_micro(),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance,
        "action": action,
        "reason": reason,
        "note": message[:MAX_NOTE],
        "type": etype.value,
        "regarding": {
            "apiVersion": API_VERSION,
            "kind": ref.kind.kind,
            "name": ref.name,
            "namespace": ref.namespace,
            "uid": ref.uid,
        },
    }


async def post_event(
    kube: Kube,
    ref: ObjectRef,
    etype: EventType,
    reason: str,
    message: str,
    action: str = "Reconcile",
    instance: str | None = None,
) -> None:
    """Record an Event regarding ``ref`` (reported by ``instance``, else ``reporting_instance()``)."""
    await kube.create(build_event(ref, etype, reason, message, action, instance or reporting_instance()))


async def post_quietly(
    kube: Kube,
    ref: ObjectRef,
    etype: EventType,
    reason: str,
    message: str,
    action: str,
    log: logging.Logger | logging.LoggerAdapter[Any],
    instance: str | None = None,
) -> None:
    """``post_event``, but a refusal is only logged: the status is the record, an Event is for humans."""
    try:
        await post_event(kube, ref, etype, reason, message, action, instance)
    except ApiError as exc:
        log.warning("Could not post the %s Event: %s", reason, exc)
