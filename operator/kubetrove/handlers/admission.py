"""DatabasePolicy at admission: kopf's validating and mutating webhooks, and their start-up.

Thin: the decision is ``kubetrove.admission.review`` (reads) over ``kubetrove.policy`` (pure). Only
registered when admission is enabled (KUBETROVE_ADMISSION_PORT, the chart's ``admission.enabled``).
The chart creates the webhook configurations (``failurePolicy: Fail``: when the webhook cannot be
reached, creates and updates of our kinds are refused, never let through unchecked); ``start`` makes
the serving certificate, writes its CA into those configurations, and hands kopf the server.

Webhook paths (the configurations' ``clientConfig.service.path``): ``/policy`` validates creates and
updates of DatabaseInstances, DatabaseClusters and DatabaseBackups; ``/tier`` labels databases with
their maturity tier (``kubetrove.io/tier``) and the policies that govern them.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import kopf

from kubetrove.admission import report
from kubetrove.admission.review import Admission, Request
from kubetrove.api.common import GROUP, VERSION
from kubetrove.api.database_policy import POLICIES_ANNOTATION, TIER_LABEL
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, POLICY
from kubetrove.handlers.errors import kopf_errors
from kubetrove.k8s.admission import set_ca_bundle, whoami
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import MUTATING_WEBHOOK, VALIDATING_WEBHOOK
from kubetrove.k8s.port import Kube
from kubetrove.runtime import certs
from kubetrove.runtime.config import OperatorConfig

VALIDATE_PATH, MUTATE_PATH = "policy", "tier"  # kopf serves a handler at /<its id>
log = logging.getLogger(__name__)


def _request(body: kopf.Body, userinfo: Any, dryrun: bool, more: dict[str, Any]) -> Request:
    """The request as kubetrove.admission takes it (kopf passes ``old`` and ``operation`` as kwargs)."""
    meta = body.get("metadata") or {}
    old, operation = more.get("old"), str(more.get("operation") or "")
    return Request(
        kind=str(body.get("kind", "")),
        operation=operation,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name") or meta.get("uid") or ""),
        new=dict(body),
        old=dict(old) if old else None,
        username=str((userinfo or {}).get("username", "")),
        dry_run=bool(dryrun),
    )


async def validate(body: kopf.Body, userinfo: Any, dryrun: bool, memo: Any, **more: Any) -> None:
    """Refuse a create or update that a DatabasePolicy forbids (403 with every violation)."""
    admission: Admission = memo.admission
    decision = await admission.review(_request(body, userinfo, dryrun, more))
    if not decision.allowed:
        raise kopf.AdmissionError(decision.message(), code=403)


async def label_tier(
    body: kopf.Body, userinfo: Any, dryrun: bool, patch: kopf.Patch, memo: Any, **more: Any
) -> None:
    """Label the database with its tier and annotate the policies; unlabel it when none governs it."""
    admission: Admission = memo.admission
    decision = await admission.tier(_request(body, userinfo, dryrun, more))
    labels = (body.get("metadata") or {}).get("labels") or {}
    if decision.tier is not None:
        patch.setdefault("metadata", {}).setdefault("labels", {})[TIER_LABEL] = str(decision.tier)
        patch["metadata"].setdefault("annotations", {})[POLICIES_ANNOTATION] = ",".join(decision.policies)
    elif TIER_LABEL in labels:  # nobody may claim a tier no policy gave
        patch.setdefault("metadata", {}).setdefault("labels", {})[TIER_LABEL] = None


async def policy_status(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Report the policy's usage per namespace and its existing violators (kubetrove.admission.report)."""
    with kopf_errors():
        await report.refresh(memo.deps.kube, dict(body), memo.config.namespaces, logger)


async def _set_bundles(kube: Kube, config: OperatorConfig, ca: bytes) -> None:
    for rtype, name in (
        (VALIDATING_WEBHOOK, config.validating_webhook),
        (MUTATING_WEBHOOK, config.mutating_webhook),
    ):
        if not name:
            continue
        for _attempt in range(5):
            try:
                found = await set_ca_bundle(kube, rtype, name, ca)
                break
            except Conflict:
                continue
        else:
            raise RuntimeError(f"{rtype.kind} {name}: caBundle not written after 5 conflicts")
        if not found:
            # Without it the API server never calls us: say so loudly, the operator still reconciles.
            log.error("%s %s does not exist: DatabasePolicy is not enforced", rtype.kind, name)


async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, config: OperatorConfig, kube: Kube) -> None:
    """Make the certificate, publish its CA, and give kopf the webhook server (after the Lease is held:
    only the active instance serves, and it rotates the CA each time it takes over)."""
    hosts = list(config.admission_hosts) or ["127.0.0.1"]
    cert = certs.issue(hosts)
    certfile, keyfile = certs.write(cert, Path(tempfile.mkdtemp(prefix="kubetrove-webhook-")))
    memo.admission = Admission(kube, await whoami(kube), config.policy_required)
    await _set_bundles(kube, config, cert.ca)
    settings.admission.server = kopf.WebhookServer(
        addr="0.0.0.0",  # noqa: S104  (the API server reaches the pod IP)
        port=config.admission_port,
        certfile=str(certfile),
        pkeyfile=str(keyfile),
        cadata=cert.ca,
    )
    settings.admission.managed = None  # the chart owns the configurations; we only set their caBundle
    log.info("Admission webhook on port %d for %s", config.admission_port, ", ".join(hosts))


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """The webhooks and the policies' status report, when admission is enabled (deletes are never
    reviewed)."""
    if not config.admission_port:
        return
    plural = POLICY.plural
    kopf.on.resume(GROUP, VERSION, plural, registry=into)(policy_status)
    kopf.on.create(GROUP, VERSION, plural, registry=into)(policy_status)
    kopf.on.update(GROUP, VERSION, plural, field="spec", registry=into)(policy_status)
    kopf.timer(GROUP, VERSION, plural, interval=config.status_interval, initial_delay=config.status_interval,
               registry=into)(policy_status)  # fmt: skip
    for kind in (INSTANCE, CLUSTER, BACKUP):
        kopf.on.validate(
            GROUP, VERSION, kind.plural, id=VALIDATE_PATH, operations=["CREATE", "UPDATE"], registry=into
        )(validate)
    for kind in (INSTANCE, CLUSTER):
        kopf.on.mutate(
            GROUP, VERSION, kind.plural, id=MUTATE_PATH, operations=["CREATE", "UPDATE"], registry=into
        )(label_tier)
