"""The engine bundles: one complete bundle per engine, refused whole when a part is missing or wrong."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from kubetrove.agent.engines.base import MembershipDriver, RebuildDriver, RingDriver, TableChecker
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle, IncompleteBundle, no_table_stats
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mariadb.backup import MariaDBMethods
from kubetrove.agent.engines.registry import REGISTRY, build_registry, bundle_for, make_driver, table_stats
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine
from kubetrove.api.common import Engine as OperatorEngine

MARIADB = REGISTRY[Engine.MARIADB]


def test_the_agent_and_the_operator_name_the_same_engines() -> None:
    assert [e.value for e in Engine] == [e.value for e in OperatorEngine]


def test_every_engine_has_one_bundle_about_itself() -> None:
    assert set(REGISTRY) == set(Engine)
    for engine, bundle in REGISTRY.items():
        assert bundle.engine is engine
        assert bundle.methods.engine == engine and bundle.names.engine == engine
        assert make_driver(engine, EngineConfig()).engine == engine  # building connects to nothing


@pytest.mark.parametrize("engine", list(Engine))
def test_capabilities_match_the_driver(engine: Engine) -> None:
    bundle = REGISTRY[engine]
    driver = bundle.driver(EngineConfig())
    assert isinstance(driver, TableChecker) is bundle.capabilities.consistency_check
    assert isinstance(driver, MembershipDriver) is bundle.capabilities.elected_membership
    assert (bundle.table_checker(driver) is driver) is bundle.capabilities.consistency_check
    assert (bundle.membership(driver) is driver) is bundle.capabilities.elected_membership
    assert isinstance(driver, RingDriver) is bundle.capabilities.ring
    assert (bundle.ring(driver) is driver) is bundle.capabilities.ring
    assert isinstance(driver, RebuildDriver) is bundle.capabilities.rebuild
    assert (bundle.rebuilder(driver) is driver) is bundle.capabilities.rebuild


@pytest.mark.parametrize(
    "part",
    [
        {"driver": None},
        {"methods": None},
        {"table_stats": None},
        {"names": None},
        {"capabilities": None},
        {"parameters": None},
        {"parameters": ["max_connections"]},  # a mutable list: the allow-list is a frozenset
        {"table_stats": "not callable"},
        {"methods": MARIADB.names},
        {"names": Rule(Engine.MYSQL, 64, 32)},  # another engine's rule
        {"engine": "mariadb"},  # a bare string, not the wire enum
    ],
)
def test_an_incomplete_bundle_is_refused(part: dict[str, object]) -> None:
    with pytest.raises(IncompleteBundle, match="mariadb"):
        dataclasses.replace(MARIADB, **part)  # type: ignore[arg-type]


def test_methods_for_another_engine_are_refused() -> None:
    with pytest.raises(IncompleteBundle, match="methods are for engine"):
        dataclasses.replace(REGISTRY[Engine.MYSQL], methods=MariaDBMethods())


def test_a_bundle_without_a_part_cannot_be_built() -> None:
    with pytest.raises(TypeError):
        EngineBundle(  # type: ignore[call-arg]
            engine=Engine.MONGODB,
            driver=MARIADB.driver,
            methods=MARIADB.methods,
            names=MARIADB.names,
            capabilities=Capabilities(consistency_check=False, elected_membership=False),
            parameters=frozenset(),
        )


def test_the_registry_needs_every_engine_exactly_once() -> None:
    bundles = list(REGISTRY.values())
    with pytest.raises(IncompleteBundle, match="no bundle for engine"):
        build_registry(bundles[1:])
    with pytest.raises(IncompleteBundle, match="two bundles"):
        build_registry([*bundles, bundles[0]])
    with pytest.raises(IncompleteBundle, match="not an EngineBundle"):
        build_registry([*bundles, object()])  # type: ignore[list-item]


def test_no_silent_fallback_for_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unknown engine 'oracle'"):
        table_stats("oracle", EngineConfig(), ["db"])
    with pytest.raises(ValueError, match="unknown engine"):
        bundle_for("oracle")
    # An engine without a cheap exact count says so in its bundle (no_table_stats); nothing is guessed.
    # Every engine has counts now (MongoDB's per collection with dbHash, Cassandra's ring-wide).
    assert {e for e, b in REGISTRY.items() if b.table_stats is no_table_stats} == set()


def test_importing_the_registry_loads_no_engine_client_library() -> None:
    # Each agent image carries only its own engine's library: the bundles must import theirs lazily.
    code = (
        "import sys, kubetrove.agent.engines.registry, kubetrove.agent.server;"
        "print(sorted(m for m in ('pymysql', 'psycopg', 'pymongo', 'cassandra') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_agent_offers_the_backup_methods_the_operator_allows() -> None:
    from kubetrove.datastores.registry import REGISTRY as DATASTORES

    for engine in OperatorEngine:
        allowed = {str(m) for m in DATASTORES[engine].backup_methods}
        assert allowed == {str(m) for m in bundle_for(engine).methods.methods}, engine


# Parameters that run an OS command, load code, run SQL for every login, or move files the engine writes:
# a token holder must never set them (the review set init_connect on MariaDB and archive_command on
# PostgreSQL through PUT /v1/parameters).
NEVER = {
    "init_connect", "init_file", "plugin_load", "plugin_load_add", "plugin_dir", "secure_file_priv",
    "general_log_file", "slow_query_log_file", "log_error", "datadir", "tmpdir",
    "archive_command", "archive_library", "restore_command", "archive_cleanup_command",
    "recovery_end_command",
    "ssl_passphrase_command", "shared_preload_libraries", "local_preload_libraries",
    "session_preload_libraries", "dynamic_library_path", "data_directory", "log_directory", "config_file",
    "setParameter.authenticationMechanisms", "setParameter.enableLocalhostAuthBypass",
    "security.authorization",
    "authenticator", "authorizer", "data_file_directories", "commitlog_directory",
}  # fmt: skip


@pytest.mark.parametrize("engine", list(OperatorEngine))
def test_the_agents_parameter_allow_list_covers_the_catalog_and_nothing_dangerous(
    engine: OperatorEngine,
) -> None:
    """The operator's catalog and role parameters (semi-sync) are what it sends; the agent allows exactly
    those (a catalog entry added without its allow-list entry fails here, not in a pod)."""
    from kubetrove.datastores.registry import REGISTRY as DATASTORES

    store, allowed = DATASTORES[engine], bundle_for(engine).parameters
    sent = set(store.parameters) | set(store.role_parameters(True)) | set(store.role_parameters(False))
    assert sent <= allowed, sorted(sent - allowed)
    assert allowed <= sent, sorted(allowed - sent)  # nothing the operator never sends
    assert not {n.lower() for n in allowed} & {n.lower() for n in NEVER}
