"""The Cassandra images: one engine image and its agent twin per catalog version (CASSANDRA_VERSIONS).

Cassandra's tarball is not reachable here, so each image is the Apache jars of that release from Maven
Central (hack/fetch-cassandra.sh, cached per version) on bookworm's headless OpenJDK 17, with the launcher,
nodetool, entrypoint and configuration of hack/images/files/. Every version shares the root filesystem
layer (same suite and packages); only the jars layer differs, so a second version costs one jars layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .oci import ImageConfig
from .recipes import (
    AGENT_PACKAGES,
    BOOKWORM_JAVA,
    ENGINE_UID,
    FILES,
    OTHER_ENGINES_LIBRARIES,
    ROOT,
    PythonApp,
    Recipe,
    _agent_config,
    _cache,
    _catalog,
)

# The catalog keys built here, oldest first (the operator's Cassandra catalog names exactly these):
# "5.0" is the 5.0 line's current patch release, "5.0.8" the previous one, pinned, which upgrades in
# place to "5.0" (a minor upgrade, run on real pods by tests/e2e/realnode/test_cassandra_pods.py).
CASSANDRA_VERSIONS = ("5.0.8", "5.0")
# The recipe names of the current line's images ("cassandra", "agent-cassandra"); a pinned patch's are
# suffixed with its key ("cassandra-5.0.8").
CURRENT = "5.0"

CASSANDRA_HOME = "/opt/cassandra"  # lib/: the jars (files/cassandra.sh, files/nodetool.sh read them)
# The Jolokia JVM agent the engine JVM loads (files/cassandra.sh): the jar (hack/fetch-jolokia.sh) and its
# read-only policy (files/jolokia-conf), where files/cassandra.sh looks for them.
JOLOKIA_HOME = "/opt/jolokia"
JOLOKIA_CONF = "/etc/jolokia"
JOLOKIA_VERSION = "2.6.0"  # hack/fetch-jolokia.sh's default and checksum


def cassandra(key: str = CURRENT) -> Recipe:
    """Cassandra (catalog ``key``; 5.0.9 for "5.0"): the Apache jars from Maven Central
    (hack/fetch-cassandra.sh: no tarball is reachable here) on bookworm's headless OpenJDK 17 (Cassandra
    5.0 runs on Java 11 and 17). The tarball's bin/ and conf/ are not on Maven Central, so the image
    brings its own: ``cassandra`` (the launcher: what bin/cassandra and cassandra-env.sh do for
    ``cassandra -f`` on Java 17), ``nodetool``, an official-image-compatible docker-entrypoint.sh, and
    /etc/cassandra (a default cassandra.yaml, the rack file GossipingPropertyFileSnitch reads, logback
    configurations writing to the console). The launcher loads the Jolokia JVM agent from /opt/jolokia
    with /etc/jolokia's policy (loopback, read-only: the agent's ring view).

    python3 and ca-certificates are for the agent twin (``agent_cassandra``), which shares every layer
    but its two Python ones: nodetool in the agent container is this JVM and these jars."""
    image = _catalog("cassandra", key).image
    version = image.rpartition(":")[2]
    return Recipe(
        _name("cassandra", key),
        image,
        ImageConfig(
            entrypoint=("docker-entrypoint.sh",),
            cmd=("cassandra", "-f"),
            env=(
                *ImageConfig().env,
                "LANG=C.UTF-8",
                f"CASSANDRA_HOME={CASSANDRA_HOME}",
                "CASSANDRA_CONF=/etc/cassandra",
            ),
        ),
        suite=BOOKWORM_JAVA,
        packages=("openjdk-17-jre-headless", "hostname", *AGENT_PACKAGES),
        users=(("cassandra", ENGINE_UID),),
        trees={
            f"{CASSANDRA_HOME}/lib": _cache() / f"cassandra-{version}" / "lib",
            "/etc/cassandra": FILES / "cassandra-conf",
            JOLOKIA_HOME: _cache() / f"jolokia-{JOLOKIA_VERSION}" / "lib",
            JOLOKIA_CONF: FILES / "jolokia-conf",
        },
        files={
            "/usr/local/bin/docker-entrypoint.sh": FILES / "cassandra-entrypoint.sh",
            "/usr/local/bin/cassandra": FILES / "cassandra.sh",
            "/usr/local/bin/nodetool": FILES / "nodetool.sh",
        },
        customize=(
            # The official image's directories, writable by its cassandra user (999): the entrypoint
            # edits the configuration in place when it is run outside kubetrove (which mounts its own).
            'mkdir -p "$1/var/lib/cassandra" "$1/var/log/cassandra" "$1/etc/cassandra"',
            'chown 999:999 "$1/var/lib/cassandra" "$1/var/log/cassandra" "$1/etc/cassandra"',
        ),
        fetch=(
            "env",
            f"CASSANDRA_VERSION={version}",
            f"JOLOKIA_VERSION={JOLOKIA_VERSION}",
            "bash",
            str(ROOT / "hack" / "fetch-cassandra.sh"),
        ),
    )


def agent_cassandra(key: str = CURRENT) -> Recipe:
    """The agent for Cassandra ``key`` (the catalog's ``agent_image``): the engine image's layers (the
    JRE, the same jars, ``nodetool``, which reaches the engine's JMX on the pod's 127.0.0.1: nodetool is a
    JVM of the server's own release) and only the Cassandra client libraries (cassandra-driver, bcrypt)."""
    base = cassandra(key)
    return replace(
        base,
        name=_name("agent-cassandra", key),
        ref=_catalog("cassandra", key).agent_image,
        config=_agent_config(),
        python=PythonApp(
            "agent", "kubetrove-agent", "kubetrove.agent.main", exclude=OTHER_ENGINES_LIBRARIES["cassandra"]
        ),
    )


def _name(base: str, key: str) -> str:
    return base if key == CURRENT else f"{base}-{key}"


def cassandra_images() -> dict[str, Callable[[], Recipe]]:
    """Recipe name -> recipe for every version, oldest first, each engine image before its agent twin
    (which reuses its root filesystem layer)."""
    table: dict[str, Callable[[], Recipe]] = {}
    for key in CASSANDRA_VERSIONS:
        table[_name("cassandra", key)] = lambda k=key: cassandra(k)
        table[_name("agent-cassandra", key)] = lambda k=key: agent_cassandra(k)
    return table
