"""The environment of a real ``kubetrove-agent`` subprocess in front of a MariaDB server: its secrets as
files (as a pod mounts them), everything else as the ``KUBETROVE_*`` variables its flags default to."""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.servers.mariadb import ADMIN, MariaDBServer


def agent_env(mariadb: MariaDBServer, directory: Path, port: int, token: str) -> dict[str, str]:
    """Write the token and the engine password into ``directory`` and return the agent's environment."""
    (directory / "token").write_text(token + "\n")
    (directory / "password").write_text(mariadb.password)
    return {
        **os.environ,
        "KUBETROVE_ENGINE": "mariadb",
        "KUBETROVE_ENGINE_PORT": str(mariadb.port),
        "KUBETROVE_ENGINE_USER": ADMIN,
        "KUBETROVE_ENGINE_PASSWORD_FILE": str(directory / "password"),
        "KUBETROVE_AGENT_TOKEN_FILE": str(directory / "token"),
        "KUBETROVE_AGENT_LISTEN": "127.0.0.1",
        "KUBETROVE_AGENT_PORT": str(port),
    }
