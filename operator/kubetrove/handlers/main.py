"""``kubetrove-operator``: run the handlers with kopf, standalone, on all namespaces or a listed few."""

from __future__ import annotations

import sys

import kopf

from kubetrove.handlers.config import OperatorConfig


def main() -> None:
    """Entry point (pyproject ``kubetrove-operator``); KUBECONFIG or the in-cluster account authenticates."""
    config = OperatorConfig.from_env()
    import kubetrove.handlers  # noqa: F401  (registers every handler with kopf's default registry)

    kopf.configure(verbose="-v" in sys.argv[1:])
    kopf.run(
        standalone=True,
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        # Served by kopf once the Lease is held; handlers/health.py answers it while a standby waits.
        liveness_endpoint=config.liveness_endpoint,
    )


if __name__ == "__main__":
    main()
