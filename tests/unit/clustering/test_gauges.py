"""The clustering loop's per-cluster series: what the alert rules read (charts/kubetrove/alerts/)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kubetrove.agent.protocol import Role, Status
from kubetrove.api.resources import CLUSTER, ObjectRef
from kubetrove.clustering import runner
from kubetrove.clustering.gauges import ClusterGauges
from kubetrove.datastores import registry
from kubetrove.metrics import OperatorMetrics
from kubetrove.observation import member_status
from tests.unit.clustering.test_cluster_record import NAME, NS, StrictKube, record, replica, seed

REF = ObjectRef(namespace=NS, name=NAME, uid="uid-db", generation=1, kind=CLUSTER)


def sampler(metrics: OperatorMetrics) -> Callable[..., float | None]:
    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"namespace": NS, "cluster": NAME, **labels})

    return sample


def test_up_replicating_and_errant_per_member() -> None:
    kube = StrictKube()
    seed(kube)
    metrics = OperatorMetrics()
    rec = record(kube, metrics=metrics)
    sample = sampler(metrics)
    primary = replica("0-1-9").model_copy(update={"role": Role.PRIMARY, "read_only": False})
    stopped = replica("0-1-7").model_copy(update={"replication_running": False})
    observed: dict[str, Status | None] = {"db-0": primary, "db-1": stopped, "db-2": None}
    asyncio.run(rec.write_observation("Degraded", observed, ("db-1",), ("db-1 holds errant transactions",)))
    up = [sample("kubetrove_member_up", pod=p) for p in ("db-0", "db-1", "db-2")]
    assert up == [1.0, 1.0, 0.0]  # db-2's agent did not answer
    # Replicas only: the primary and an unreachable member have no replication to report.
    assert [sample("kubetrove_member_replicating", pod=p) for p in ("db-0", "db-1", "db-2")] == [
        None,
        0.0,
        None,
    ]
    assert [sample("kubetrove_member_errant", pod=p) for p in ("db-0", "db-1", "db-2")] == [0.0, 1.0, 0.0]
    sick = replica("0-1-9").model_copy(update={"healthy": False})
    asyncio.run(
        rec.write_observation("Healthy", {"db-0": primary, "db-1": replica("0-1-9"), "db-2": sick}, (), ())
    )
    assert [sample("kubetrove_member_up", pod=p) for p in ("db-0", "db-1", "db-2")] == [1.0, 1.0, 0.0]
    assert sample("kubetrove_member_replicating", pod="db-1") == 1.0
    assert sample("kubetrove_member_errant", pod="db-1") == 0.0
    # Scaled down to one member: the others' series go.
    asyncio.run(rec.write_observation("Healthy", {"db-0": primary}, (), ()))
    assert sample("kubetrove_member_up", pod="db-1") is None
    assert sample("kubetrove_member_replicating", pod="db-1") is None
    assert sample("kubetrove_member_errant", pod="db-2") is None


def test_a_ring_has_no_primary_series() -> None:
    metrics = OperatorMetrics()
    gauges = ClusterGauges(metrics, REF, registry.get("cassandra"))
    node = Status(engine="cassandra", version="5.0", role=Role.MEMBER, read_only=False, healthy=True)
    gauges.record(
        [member_status("db-0", node), member_status("db-1", None)], {"db-0": node, "db-1": None}, ()
    )
    sample = sampler(metrics)
    assert [sample("kubetrove_members", role=r) for r in ("primary", "replica", "member", "unknown")] == [
        None,
        None,
        1.0,
        1.0,
    ]
    # An engine with a primary reports 0 primaries when it has none: the "no primary" alert's input.
    other = OperatorMetrics()
    ClusterGauges(other, REF, registry.get("mariadb")).record(
        [member_status("db-0", None)], {"db-0": None}, ()
    )
    assert sampler(other)("kubetrove_members", role="primary") == 0.0


def test_start_puts_the_counters_at_zero_and_forget_drops_every_series() -> None:
    metrics = OperatorMetrics()
    sample = sampler(metrics)
    gauges = ClusterGauges(metrics, REF, registry.get("mariadb"))
    gauges.start()
    assert sample("kubetrove_failovers_total", engine="mariadb") == 0.0
    assert sample("kubetrove_switchovers_total", engine="mariadb") == 0.0
    st = replica("0-1-5").model_copy(update={"lag_seconds": 2.0})
    gauges.record([member_status("db-1", st)], {"db-1": st}, ())
    assert sample("kubetrove_member_lag_seconds", pod="db-1") == 2.0
    gauges.forget()
    left = [s.name for f in metrics.registry.collect() for s in f.samples if s.labels.get("cluster") == NAME]
    assert left == []


async def test_the_loop_starts_its_counters_and_forgets_its_cluster_when_it_stops() -> None:
    metrics = OperatorMetrics()
    sample = sampler(metrics)
    store = registry.get("mariadb")
    wiring = runner.Wiring(
        StrictKube(), REF, store, "10.11", lambda *_: "", lambda *_: "", interval=0.01, metrics=metrics
    )
    seen: list[float | None] = []

    def stopped() -> bool:  # one pass (no Secrets yet: nothing to run), then the daemon is stopped
        seen.append(sample("kubetrove_failovers_total", engine="mariadb"))
        return len(seen) > 1

    await runner.run(wiring, stopped)
    assert seen == [0.0, 0.0]
    left = [s.name for f in metrics.registry.collect() for s in f.samples if s.labels.get("cluster") == NAME]
    assert left == []
