"""The Cassandra ring fixture: three real nodes on 127.0.0.2-4 for the session (servers/cassandra_ring.py).

One ring serves every ring test (a ring costs ~1 GB RSS per node and a minute or two to form). Tests
that take a node down bring it back before they end, so the next test starts from 3x UN again. A ring
that cannot form raises: its tests ERROR, the tier fails (never skips).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.integration.ring_harness import RingRig, ring_rig
from tests.integration.servers import cassandra_ring
from tests.integration.servers.cassandra_ring import Ring

__all__ = ["cassandra_ring3", "nodetool_on_path", "rig"]


@pytest.fixture(scope="session")
def cassandra_ring3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cassandra_ring.Ring]:
    """Three Cassandra 5.0 nodes (seed 127.0.0.2), 3x UN; stopped by PID at the end of the session."""
    ring = cassandra_ring.start_ring(tmp_path_factory.mktemp("ring"))
    joins = ", ".join(f"{s:.0f}" for s in ring.join_seconds)
    print(f"\ncassandra ring of 3 up in {ring.startup_seconds:.0f} s (per node: {joins} s)", file=sys.stderr)
    yield ring
    ring.stop()


@pytest.fixture
def nodetool_on_path(cassandra_ring3: Ring, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agents call ``nodetool`` from PATH (the pod image has it; here the ring's wrapper)."""
    monkeypatch.setenv("PATH", f"{cassandra_ring3.nodetool_bin.parent}:{os.environ['PATH']}")


@pytest.fixture
async def rig(cassandra_ring3: Ring, nodetool_on_path: None) -> AsyncIterator[RingRig]:
    """An agent per node and the ring loop running (ring_harness.py), once the loop sees 3x UN."""
    async with ring_rig(cassandra_ring3) as rig:
        await rig.states(dict.fromkeys(rig.pods, "UN"))
        yield rig
