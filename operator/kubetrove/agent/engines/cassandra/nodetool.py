"""nodetool, the agent's way to the node's JMX for the rare operations CQL cannot do: snapshot,
decommission, repair, verify. It is a JVM (~75 MiB, ~1.5 s of CPU a call), so nothing periodic runs it:
the ring view (liveness) is read from the engine's Jolokia agent instead (ring.py).

JMX listens on 127.0.0.1 only (cassandra-env.sh's LOCAL_JMX=yes, the image default), so the host is
``options["jmx_host"]`` or 127.0.0.1, never the CQL address; the port is ``options["jmx_port"]`` or 7199.
https://cassandra.apache.org/doc/5.0/cassandra/managing/tools/nodetool/nodetool.html
"""

from __future__ import annotations

import subprocess

from kubetrove.agent.engines.base import EngineUnavailable
from kubetrove.agent.engines.config import EngineConfig

DEFAULT_JMX_PORT = "7199"


def argv(config: EngineConfig, *args: str) -> tuple[str, ...]:
    """``nodetool -h <jmx host> -p <jmx port> args...`` for this node."""
    host = config.options.get("jmx_host", "127.0.0.1")
    return ("nodetool", "-h", host, "-p", config.options.get("jmx_port", DEFAULT_JMX_PORT), *args)


def run(config: EngineConfig, *args: str, timeout: float = 600.0) -> str:
    """Run nodetool and return its stdout; EngineUnavailable with its stderr if it fails."""
    try:
        done = subprocess.run(  # noqa: S603 (fixed argv: our literals and validated names)
            argv(config, *args), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"nodetool {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-500:]
        raise EngineUnavailable(f"nodetool {' '.join(args)} failed ({done.returncode}): {detail}")
    return done.stdout
