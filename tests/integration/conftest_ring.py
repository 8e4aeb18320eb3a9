"""The Cassandra ring fixture: three real nodes on 127.0.0.2-4 for the session (servers/cassandra_ring.py).

One ring serves every ring test (a ring costs ~1 GB RSS per node and a minute or two to form). Tests
that take a node down bring it back before they end, so the next test starts from 3x UN again. A ring
that cannot form raises: its tests ERROR, the tier fails (never skips).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.integration.servers import cassandra_ring

__all__ = ["cassandra_ring3"]


@pytest.fixture(scope="session")
def cassandra_ring3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cassandra_ring.Ring]:
    """Three Cassandra 5.0 nodes (seed 127.0.0.2), 3x UN; stopped by PID at the end of the session."""
    ring = cassandra_ring.start_ring(tmp_path_factory.mktemp("ring"))
    joins = ", ".join(f"{s:.0f}" for s in ring.join_seconds)
    print(f"\ncassandra ring of 3 up in {ring.startup_seconds:.0f} s (per node: {joins} s)", file=sys.stderr)
    yield ring
    ring.stop()
