"""The data volume's filesystem as the kernel reports it (``statvfs``): used, available and total bytes.

Measured on the data directory the agent is given (``--data-dir``: the data volume, mounted in the agent
container too), so it needs no engine: a member whose engine stopped on a full disk still reports it on
/metrics. Numbers are ``df``'s: used = total - free; available = what an unprivileged writer may still use
(ext4 keeps ~5 % for root, which an engine running as a user cannot write), so used + available can be
less than the total, and the fill level that matters is used / (used + available), df's "Use%".
"""

from __future__ import annotations

import os

from kubetrove.agent.protocol import VolumeUsage


def measure(path: str | None) -> VolumeUsage | None:
    """The filesystem holding ``path``; None when no path is configured or it cannot be read."""
    if not path:
        return None
    try:
        st = os.statvfs(path)
    except OSError:
        return None  # not mounted yet (or gone): nothing to report rather than a wrong figure
    total = st.f_blocks * st.f_frsize
    return VolumeUsage(
        used_bytes=(st.f_blocks - st.f_bfree) * st.f_frsize,
        available_bytes=st.f_bavail * st.f_frsize,
        capacity_bytes=total,
    )
