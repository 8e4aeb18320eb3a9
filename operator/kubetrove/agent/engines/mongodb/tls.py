"""pymongo's TLS options for the agent's own connections to mongod (the driver's and the file copy's).

spec.tls: mongod may refuse plaintext (``requireTLS``), so the agent speaks TLS then, unverified: it
connects to the pod's own loopback, which the certificate does not name. Without TLS NO tls option may
be passed at all: pymongo refuses ``tlsAllowInvalidCertificates`` (even False) when ``tls`` is off
("TLS has not been enabled but the following tls parameters have been set").
"""

from __future__ import annotations

from typing import Any


def tls_options(tls: bool) -> dict[str, Any]:
    """``MongoClient`` keyword arguments: TLS without verification, or none at all."""
    return {"tls": True, "tlsAllowInvalidCertificates": True} if tls else {}
