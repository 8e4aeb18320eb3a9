"""``kubetrove-operator``: the composition root. The environment is read here, once, into the
configuration; the metrics are registered here, once; both are passed in (kopf's memo), the handlers are
registered with the configuration, and kopf runs them standalone on all namespaces or a listed few."""

from __future__ import annotations

import sys

import kopf
import prometheus_client

from kubetrove import handlers
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores.registry import REGISTRY
from kubetrove.metrics import OperatorMetrics
from kubetrove.runtime.config import OperatorConfig
from kubetrove.version import VERSION


def main() -> None:
    """Entry point (pyproject ``kubetrove-operator``); KUBECONFIG or the in-cluster account authenticates."""
    config = OperatorConfig.from_env()
    # The default registry: /metrics keeps prometheus-client's process and platform collectors.
    metrics = OperatorMetrics(prometheus_client.REGISTRY, VERSION)
    # Each engine's methods, and "auto": a backup that fails before its method is resolved counts under it.
    metrics.start_backup_counters(
        {
            s.engine.value: [BackupMethod.AUTO.value, *(m.value for m in s.backup_methods)]
            for s in REGISTRY.values()
        }
    )
    registry = kopf.OperatorRegistry()
    handlers.register(registry, config)
    kopf.configure(verbose="-v" in sys.argv[1:])
    kopf.run(
        registry=registry,
        memo=kopf.Memo(config=config, metrics=metrics),
        standalone=True,
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        # Served by kopf once the Lease is held; runtime/health.py answers it while a standby waits.
        liveness_endpoint=config.liveness_endpoint,
    )


if __name__ == "__main__":
    main()
