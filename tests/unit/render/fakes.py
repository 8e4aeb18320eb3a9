"""A small in-memory ``Datastore`` and input builders for render tests (no real engine needed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.api.resources import CLUSTER, INSTANCE, ObjectRef
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.base import (
    ConfigFile,
    EngineContainer,
    HAMode,
    Ordering,
    ParameterSpec,
    ParamType,
    Port,
    ServerTLS,
    VersionInfo,
)
from kubetrove.render import RenderInputs

# Recognisable secret values: the leak test looks for them in every non-Secret manifest.
CREDENTIALS = {
    "password": "s3cr3t-pw-XYZ",
    "username": "admin-U5ER-nm",
    "replication-password": "r3pl-pw-QRS",
}
AGENT_TOKEN = "t0ken-ABC-123"
AGENT_IMAGE = "registry.local/kubetrove-agent:0.1.0"


@dataclass(frozen=True)
class FakeDatastore:
    """A ``Datastore`` whose fields a test can set; config rendering is ``key = value`` lines."""

    engine: Engine = Engine.MYSQL
    ha_mode: HAMode = HAMode.OPERATOR_PRIMARY
    read_only_root_filesystem: bool = True
    versions: Mapping[str, VersionInfo] = field(
        default_factory=lambda: {"8.4": VersionInfo("8.4", "registry.local/fake-db:8.4.6", "8")}
    )
    ports: Sequence[Port] = (Port("db", 3306), Port("admin", 33062))
    position_type: str = "fake"
    parameters: Mapping[str, ParameterSpec] = field(
        default_factory=lambda: {
            "max_connections": ParameterSpec("max_connections", ParamType.INT, dynamic=True, minimum=1),
            "buffer_size": ParameterSpec("buffer_size", ParamType.SIZE, dynamic=False),
        }
    )
    config_file: ConfigFile = field(default_factory=lambda: ConfigFile("/etc/fake/conf.d", "kubetrove.cnf"))
    backup_methods: Sequence[BackupMethod] = (BackupMethod.LOGICAL,)

    serves_tls = True

    def container(self, version: str, tls: ServerTLS | None = None) -> EngineContainer:
        return EngineContainer(
            data_dir="/var/lib/fake",
            run_as_user=999,
            run_as_group=999,
            command=("fake-db",),
            args=(f"--defaults-file={self.config_file.mount_dir}/{self.config_file.file_name}",),
            env={"TZ": "UTC", "FAKE_VERSION": version},
            secret_env={"FAKE_ROOT_PASSWORD": "password"},
            read_only_root_filesystem=self.read_only_root_filesystem,
            scratch_dirs=("/var/run/fake", "/tmp"),
            admin_user="fakeadmin",
            admin_password_key="password",
        )

    def render_config(
        self, parameters: Mapping[str, str], clustered: bool = False, tls: ServerTLS | None = None
    ) -> str:
        settings = {"fixed": "1", **({"tls": f"{tls.mode.value} {tls.cert}"} if tls else {}), **parameters}
        return "".join(f"{k} = {v}\n" for k, v in sorted(settings.items()))

    def validate_parameters(self, parameters: Mapping[str, str]) -> list[str]:
        return [f"unknown {k}" for k in parameters if k not in self.parameters]

    def validate_topology(self, replicas: int) -> list[str]:
        return []

    def compare_positions(self, a: str, b: str) -> Ordering:
        return Ordering.EQUAL


def ref(kind_is_cluster: bool, name: str = "orders") -> ObjectRef:
    """The identity of a test resource in namespace ``shop``."""
    kind = CLUSTER if kind_is_cluster else INSTANCE
    return ObjectRef(namespace="shop", name=name, uid="0b5f7a3e-uid", generation=3, kind=kind)


def inputs(spec: InstanceSpec, name: str = "orders", extra_keys: Iterable[str] = ()) -> RenderInputs:
    """RenderInputs for ``spec`` with the fixed test credentials (plus ``extra_keys``) and token."""
    extra = {key: f"pw-{i}-{key}-LMN" for i, key in enumerate(sorted(extra_keys))}
    return RenderInputs(
        owner=ref(isinstance(spec, ClusterSpec), name),
        spec=spec,
        agent_image=AGENT_IMAGE,
        credentials={**CREDENTIALS, **extra},
        agent_token=AGENT_TOKEN,
    )
