"""The agent's own CQL connections under ``spec.tls`` (the driver's and the backup's row counts).

With client TLS ``required`` the node refuses plaintext CQL, so the agent speaks TLS whenever the engine
serves it (``EngineConfig.tls``: ``--engine-tls-dir``), under ``optional`` too (one code path). Unverified:
the agent connects to its own pod's loopback, which the certificate does not name (the other engines'
agents do the same: docs/security.md). nodetool is unaffected: it talks JMX on 127.0.0.1, not CQL.
https://docs.datastax.com/en/developer/python-driver/3.29/security/#ssl
"""

from __future__ import annotations

import ssl

from kubetrove.agent.engines.config import EngineConfig


def ssl_context(config: EngineConfig) -> ssl.SSLContext | None:
    """cassandra-driver's ``Cluster(ssl_context=...)``: TLS without verification, or None (plaintext)."""
    if not config.tls:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # loopback: not a name the certificate holds
    context.verify_mode = ssl.CERT_NONE
    return context
