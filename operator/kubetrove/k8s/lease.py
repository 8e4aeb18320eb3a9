"""One active operator: a coordination.k8s.io/v1 Lease, acquired before any handler runs.

kopf's peering is not leader election: operators of equal priority all freeze (kopf docs/peering.rst).
So the operator takes a Lease at start-up and waits while another instance holds it. The algorithm
is client-go's leaderelection, reduced to what we need:

- Expiry is judged on OUR monotonic clock: a holder's lease counts as expired when its record
  (holderIdentity, renewTime) has not changed for ``leaseDurationSeconds`` since we first saw it.
  Comparing the holder's wall-clock renewTime with ours would make clock skew decide leadership.
- Every write is a create (404 before) or a PUT carrying the resourceVersion we read, so two
  candidates racing for an expired lease cannot both win: the loser gets 409 Conflict.
- Release clears holderIdentity, so a waiting instance takes over at its next retry instead of
  waiting out the lease duration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.events import now_micro
from kubetrove.k8s.kinds import LEASE
from kubetrove.k8s.port import Kube, Obj

log = logging.getLogger(__name__)


class LeaseLock:
    """Acquire, renew and release one Lease on behalf of ``identity``."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        duration: int = 15,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration = duration
        self._clock = clock
        self._observed: tuple[Any, Any] | None = None
        self._observed_at = 0.0

    def _spec(self, acquire_time: str, transitions: int) -> Obj:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "acquireTime": acquire_time,
            "renewTime": now_micro(),
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: True when we hold the lease afterwards."""
        lease = await self.kube.get(LEASE, self.namespace, self.name)
        if lease is None:
            body = {
                "apiVersion": LEASE.api_version,
                "kind": LEASE.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now_micro(), 0),
            }
            try:
                await self.kube.create(body)
            except Conflict:
                return False
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"))
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        expired = self._clock() - self._observed_at >= int(spec.get("leaseDurationSeconds") or self.duration)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            lease["spec"] = self._spec(spec.get("acquireTime") or now_micro(), transitions)
        else:
            lease["spec"] = self._spec(now_micro(), transitions + 1)
        try:
            await self.kube.replace(lease)
        except Conflict:
            return False
        return True

    async def acquire(self, retry_period: float = 2.0) -> None:
        """Wait until we hold the lease (logs once while another instance holds it)."""
        waiting_logged = False
        while not await self.try_acquire_or_renew():
            if not waiting_logged:
                holder = (self._observed or (None, None))[0]
                log.info("Lease %s/%s is held by %s; waiting", self.namespace, self.name, holder)
                waiting_logged = True
            await asyncio.sleep(retry_period)
        log.info("Lease %s/%s acquired by %s", self.namespace, self.name, self.identity)

    async def hold(self, on_lost: Callable[[], Awaitable[None] | None], renew_period: float = 5.0) -> None:
        """Renew forever; call ``on_lost`` once when renewals fail for a whole lease duration."""
        last_ok = self._clock()
        while True:
            await asyncio.sleep(renew_period)
            try:
                ok = await self.try_acquire_or_renew()
            except Exception:  # an API hiccup is not a lost lease until the deadline passes
                log.exception("Lease renewal failed")
                ok = False
            if ok:
                last_ok = self._clock()
            elif self._clock() - last_ok >= self.duration:
                log.error("Lease %s/%s lost by %s", self.namespace, self.name, self.identity)
                result = on_lost()
                if result is not None:
                    await result
                return

    async def release(self) -> None:
        """Give the lease up (only if we still hold it), so a waiting instance takes over at once."""
        lease = await self.kube.get(LEASE, self.namespace, self.name)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        lease["spec"] = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
        try:
            await self.kube.replace(lease)
        except Conflict:
            log.warning("Lease %s/%s changed while releasing it", self.namespace, self.name)
