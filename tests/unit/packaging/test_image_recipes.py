"""One source of images: hack/images/recipes.py builds every image the operator and the chart name by
default, in the registry the operator defaults to; the catalog entries without a recipe are listed
here, so adding either a recipe or a catalog version has to update this list (and the README's)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kubetrove.datastores.base import qualified_image
from kubetrove.datastores.registry import REGISTRY
from kubetrove.runtime.config import DEFAULT_AGENT_IMAGE, DEFAULT_IMAGE_REGISTRY, OperatorConfig

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "hack"))

from images.layers import app_version, command_script, files_layer, version_module  # noqa: E402
from images.recipes import (  # noqa: E402 (hack/ is not a package root)
    ENGINE_SUITES,
    PythonApp,
    check_versions,
    default_registry,
    engine_agent,
    operator,
    project_version,
    upstream_version,
)
from images.table import RECIPES  # noqa: E402
from realnode import registry  # noqa: E402

from kubetrove.version import VERSION  # noqa: E402

# Catalog versions no recipe builds yet (no test pulls or runs them): docs/getting-started.md, "Images".
CATALOG_ONLY: set[str] = set()


def built_refs() -> set[str]:
    return {RECIPES[name]().ref for name in RECIPES}


def test_the_operator_defaults_to_the_local_registry_the_images_are_pushed_to() -> None:
    assert DEFAULT_IMAGE_REGISTRY == registry.REPOSITORY == default_registry()
    default_agent = qualified_image(registry.REPOSITORY, DEFAULT_AGENT_IMAGE)
    assert OperatorConfig.from_env({}).agent_image == default_agent
    assert DEFAULT_AGENT_IMAGE in built_refs()


def test_every_catalog_image_is_built_or_listed_as_catalog_only() -> None:
    catalog = {info.image for store in REGISTRY.values() for info in store.versions.values()}
    assert catalog - built_refs() == CATALOG_ONLY
    agents = {info.agent_image for store in REGISTRY.values() for info in store.versions.values()}
    assert agents - {""} <= built_refs()


def test_built_engines_are_exactly_the_catalog_versions() -> None:
    """ENGINE_SUITES and the catalog name the same versions, each with its own agent image whose tag is
    the project's version and whose root filesystem is the engine image's (same layer)."""
    for engine, versions in ENGINE_SUITES.items():
        store = REGISTRY[engine]  # type: ignore[index]
        assert list(store.versions) == list(versions), engine
        for version in versions:
            agent, base = engine_agent(engine, version), RECIPES[f"{engine}-{version}"]()
            assert agent.ref == store.versions[version].agent_image
            assert agent.ref.endswith(f":{project_version()}")
            same_rootfs = ("suite", "packages", "users", "customize", "expect")
            assert agent.suite == versions[version]
            assert all(getattr(agent, f) == getattr(base, f) for f in same_rootfs)
            package, tag = base.expect[0]
            assert tag == base.ref.rpartition(":")[2] and package.endswith(("mariadb-server", version))


def test_upstream_versions_of_debian_packages() -> None:
    assert upstream_version("1:11.8.9+ds-0+deb13u1") == "11.8.9"
    assert upstream_version("1:10.11.19-0+deb12u1") == "10.11.19"
    assert upstream_version("15.20-0+deb12u1") == "15.20"
    assert upstream_version("18.6-3") == "18.6"
    assert upstream_version("3.13.5-1") == "3.13.5"
    assert upstream_version("1.2~rc1") == "1.2"


def test_the_build_refuses_an_image_whose_contents_contradict_its_tag() -> None:
    """The old mariadb:10.11.16 image held Debian's 10.11.19: that build now fails, naming the fix."""
    listing = "mariadb-server=1:10.11.19-0+deb12u1\npython3=3.11.2-1+b1\n"
    check_versions("mariadb-10.11", (("mariadb-server", "10.11.19"), ("python3", "3.11")), listing)
    with pytest.raises(ValueError, match=r"mariadb-server is 1:10.11.19-0\+deb12u1 .*tagged for 10.11.16"):
        check_versions("mariadb-10.11", (("mariadb-server", "10.11.16"),), listing)
    with pytest.raises(ValueError, match=r"tagged for 10\.11\.1:"):
        check_versions("mariadb-10.11", (("mariadb-server", "10.11.1"),), listing)
    with pytest.raises(ValueError, match=r"python3 is 3\.11\.2"):
        check_versions("agent", (("python3", "3.13"),), listing)
    with pytest.raises(ValueError, match="mariadb-backup is not installed"):
        check_versions("agent", (("mariadb-backup", "10.11"),), listing)


def test_the_version_an_image_reports_is_its_tag() -> None:
    """kubetrove/version.py is pyproject's version; an image's copy holds the version it is tagged with."""
    assert project_version() == VERSION
    variant = operator("0.1.1-next")
    assert variant.ref == "operator:0.1.1-next" and variant.name != operator().name  # its own cache entry
    assert variant.python is not None and app_version(variant.python) == "0.1.1-next"
    assert operator().python is not None and app_version(operator().python) == VERSION
    namespace: dict[str, str] = {}
    exec(version_module("0.1.1-next"), namespace)
    assert namespace["VERSION"] == "0.1.1-next"


def test_the_chart_s_default_images_are_built() -> None:
    chart = yaml.safe_load((ROOT / "charts/kubetrove/Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts/kubetrove/values.yaml").read_text())
    assert values["imageRegistry"] == registry.REPOSITORY
    assert not values["image"]["repository"] and not values["agent"]["repository"]
    assert not values["agent"]["images"]
    tag = values["image"]["tag"] or chart["appVersion"]
    assert {f"operator:{tag}", f"agent:{values['agent']['tag'] or chart['appVersion']}"} <= built_refs()


def test_examples_name_no_image() -> None:
    named = [p.name for p in (ROOT / "examples").rglob("*.yaml") if "image:" in p.read_text()]
    assert not named, f"examples naming an image directly: {named}"


def test_python_layers_follow_the_recipes_suite() -> None:
    """sid's images get wheels for sid's python3 in its site dir; an engine's agent only its own client."""
    from images.layers import cross_python, requirements
    from images.recipes import SID

    mysql, agent = RECIPES["mysql"](), RECIPES["agent-mysql"]()
    assert mysql.suite == agent.suite == SID and cross_python(SID)
    assert 'Acquire::Check-Valid-Until "false"' in SID.aptopts  # the snapshot's Release file has expired
    assert SID.python_site == f"/usr/local/lib/python{SID.python}/dist-packages"
    assert agent.python is not None
    names = " ".join(requirements(agent.python))
    assert "pymysql" in names and "cryptography" in names and "boto3" in names
    assert not any(lib in names for lib in ("psycopg", "pymongo", "cassandra-driver", "bcrypt"))
    for name in RECIPES:  # an excluded distribution missing from the extra is a recipe error
        app = RECIPES[name]().python
        if app is not None:
            assert requirements(app)


def test_recipe_files_are_executable_whatever_the_checkout_s_mode(tmp_path: Path) -> None:
    """An entrypoint committed without its exec bit still runs (a CI image once exited 126)."""
    import tarfile

    script = tmp_path / "entrypoint.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    layer = tmp_path / "layer.tar"
    files_layer({"/usr/local/bin/docker-entrypoint.sh": script}, layer)
    with tarfile.open(layer) as tar:
        (member,) = tar.getmembers()
    assert member.mode == 0o755
    assert (member.uid, member.gid) == (0, 0)


def test_every_recipe_file_is_executable_in_the_checkout() -> None:
    """The checkout's scripts keep the exec bit too, so one can be run by hand the way the image runs it."""
    import os

    for name in RECIPES:
        for src in RECIPES[name]().files.values():
            if src.parent != ROOT / "hack" / "images" / "files":
                continue  # a binary from the cache (mongod): its mode is the layer's business
            assert os.access(src, os.X_OK), f"{src} is not executable (git update-index --chmod=+x)"


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="a PID namespace needs root and unshare"
)
def test_an_image_command_exits_on_sigterm_while_it_is_still_importing_as_pid_1(tmp_path: Path) -> None:
    """The kubelet's SIGTERM (a liveness restart, a pod deletion) reaches the command as PID 1 of its
    container, from the host's namespace: the kernel drops it unless a handler is installed. Without the
    script's early handler this command ignores it and the test times out."""
    (tmp_path / "slowapp.py").write_text(
        "from pathlib import Path\nimport time\n"
        f"Path({str(tmp_path / 'importing')!r}).touch()\ntime.sleep(120)\n\ndef main():\n    return 0\n"
    )
    script = tmp_path / "slowapp-command"
    script.write_text(command_script(PythonApp("agent", "slowapp-command", "slowapp")))
    script.chmod(0o755)
    argv = ["unshare", "--pid", "--fork", "--kill-child", "--", str(script)]
    proc = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "importing").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the command never started importing"
            time.sleep(0.05)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1, children  # the command, PID 1 in its namespace
        assert Path(f"/proc/{children[0]}/status").read_text().count("NSpid:\t") == 1
        os.kill(int(children[0]), signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("key", ["5.0", "5.0.8"])
def test_the_cassandra_agent_is_the_engine_image_plus_the_agent(key: str) -> None:
    """Each catalog version has its engine image and agent twin. nodetool is a JVM on the server's jars:
    the agent image has the engine image's layers (the JRE from bookworm, the jars of the catalog's
    version, the launcher scripts, /etc/cassandra) and only the Cassandra client libraries on top."""
    from images.cassandra import CASSANDRA_VERSIONS
    from images.layers import requirements

    assert list(REGISTRY["cassandra"].versions) == list(CASSANDRA_VERSIONS)  # type: ignore[index]
    suffix = "" if key == "5.0" else f"-{key}"
    engine, agent = RECIPES[f"cassandra{suffix}"](), RECIPES[f"agent-cassandra{suffix}"]()
    info = REGISTRY["cassandra"].versions[key]  # type: ignore[index]
    assert (engine.ref, agent.ref) == (info.image, info.agent_image)
    assert agent.ref.endswith(f":{project_version()}")
    version = info.image.rpartition(":")[2]
    same = ("suite", "packages", "users", "customize", "trees", "files", "fetch")
    assert all(getattr(agent, f) == getattr(engine, f) for f in same)
    assert "openjdk-17-jre-headless" in engine.packages and engine.python is None
    assert engine.trees["/opt/cassandra/lib"].parts[-2:] == (f"cassandra-{version}", "lib")
    assert f"CASSANDRA_VERSION={version}" in engine.fetch
    conf = engine.trees["/etc/cassandra"]
    # GossipingPropertyFileSnitch (the operator's snitch) reads the rack file from the classpath.
    assert {"cassandra.yaml", "cassandra-rackdc.properties", "logback.xml", "logback-tools.xml"} <= {
        p.name for p in conf.iterdir()
    }
    assert {"/usr/local/bin/cassandra", "/usr/local/bin/nodetool"} <= set(engine.files)
    assert agent.python is not None
    names = " ".join(requirements(agent.python))
    assert "cassandra-driver" in names and "bcrypt" in names and "boto3" in names
    assert not any(lib in names for lib in ("psycopg", "pymongo", "pymysql", "cryptography"))


def test_the_cassandra_image_loads_jolokia_read_only_on_loopback_where_the_agent_reads_it() -> None:
    """The engine's launcher loads the Jolokia agent from where the recipe puts it, on 127.0.0.1 and on
    the port the agent's ring view asks; its policy allows reading exactly the attributes the ring view
    reads; the jar's version is the one hack/fetch-jolokia.sh pins and the tests' launcher loads."""
    import re
    import xml.etree.ElementTree as ET

    from images.cassandra import JOLOKIA_CONF, JOLOKIA_HOME, JOLOKIA_VERSION

    from kubetrove.agent.engines.cassandra.ring import ATTRIBUTES, DEFAULT_JOLOKIA_PORT, STORAGE_SERVICE
    from tests.integration.servers import cassandra as host_launcher

    engine = RECIPES["cassandra"]()
    assert engine.trees[JOLOKIA_HOME].parts[-2:] == (f"jolokia-{JOLOKIA_VERSION}", "lib")
    assert f"JOLOKIA_VERSION={JOLOKIA_VERSION}" in engine.fetch
    fetch = (ROOT / "hack" / "fetch-jolokia.sh").read_text()
    assert f'VER="${{JOLOKIA_VERSION:-{JOLOKIA_VERSION}}}"' in fetch and "lib/jolokia-agent.jar" in fetch
    assert host_launcher.JOLOKIA_VERSION == JOLOKIA_VERSION
    launcher = engine.files["/usr/local/bin/cassandra"].read_text()
    assert f"JOLOKIA_HOME={JOLOKIA_HOME}\n" in launcher
    assert '"-javaagent:$JOLOKIA_HOME/jolokia-agent.jar=$jolokia"' in launcher
    assert f'jolokia="host=127.0.0.1,port=${{JOLOKIA_PORT:-{DEFAULT_JOLOKIA_PORT}}},' in launcher
    assert f"policyLocation=file://{JOLOKIA_CONF}/jolokia-access.xml" in launcher
    policy = ET.parse(engine.trees[JOLOKIA_CONF] / "jolokia-access.xml").getroot()
    assert [c.text for c in policy.iter("command")] == []  # no command allowed in general: reads only below
    (bean,) = policy.iter("mbean")
    assert bean.findtext("name") == STORAGE_SERVICE
    attributes = bean.findall("attribute")
    assert tuple(a.text for a in attributes) == ATTRIBUTES
    assert all(a.get("mode") == "read" for a in attributes)
    assert not re.search(r"<(deny|operation)", ET.tostring(policy, encoding="unicode"))
