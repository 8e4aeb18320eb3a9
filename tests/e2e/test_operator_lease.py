"""One active operator: a second instance waits on the Lease, acts on nothing, and takes over on release."""

from __future__ import annotations

from kubernetes import client

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import LEASE_NAMESPACE, Operator, apply_cr, example, poll, settle, wait_phase


def test_second_instance_waits_then_takes_over(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    api = local_cluster.api
    second = Operator(
        local_cluster.kubeconfig, operator.log_path.with_name("second.log"), operator.lease_name
    )
    second.start(wait_for_lease=False)
    try:
        poll(lambda: "is held by" in second.log(), "the second instance to wait on the Lease")
        first = example("mariadb-instance", namespace)
        apply_cr(local_cluster, first)
        wait_phase(api, first, "Ready", op=operator)
        settle(3)
        assert "Handler" not in second.log() and "Created Secret" not in second.log()

        operator.stop()  # releases the Lease
        poll(lambda: "acquired by" in second.log(), "the second instance to take the Lease")
        lease = client.CoordinationV1Api(api).read_namespaced_lease(operator.lease_name, LEASE_NAMESPACE)
        assert lease.spec.holder_identity and lease.spec.holder_identity in second.log()
        takeover = example("cassandra-instance", namespace)
        apply_cr(local_cluster, takeover)
        wait_phase(api, takeover, "Ready", op=second)
        assert "Created Secret cassandra-demo-credentials" in second.log()
    finally:
        second.stop()
        operator.start()
