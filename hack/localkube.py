"""The project's local Kubernetes: `up` (reuse or start), `down`, `status`, `kubeconfig`, `rss`.

Usage: .venv/bin/python hack/localkube.py {up,down,status,kubeconfig,rss} [--dir DIR] [--apiserver-port N]
[--real-node] (up: also start the real node of hack/realnode; `down` stops it too)
The state dir defaults to $KUBETROVE_LOCALKUBE_DIR or ~/.cache/kubetrove/localkube; the logic lives in
hack/localcluster/ so tests/e2e/conftest.py can import it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcluster import ClusterError, Layout, default_state_dir, down, peak_rss_kib, status, up


def _realnode_down(lay: Layout) -> None:
    """Stop the real node if one is attached to this cluster (hack/realnode; nothing to do otherwise)."""
    import realnode  # lazily: plain cluster commands never need it

    realnode.down(lay)


def _realnode_status(lay: Layout) -> list[str]:
    import realnode

    return realnode.status(lay)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; the exit status is 1 if the cluster cannot start."""
    parser = argparse.ArgumentParser(prog="localkube", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "kubeconfig", "rss"])
    parser.add_argument("--dir", type=Path, default=default_state_dir(), help="state directory")
    parser.add_argument("--apiserver-port", type=int, default=None, help="fixed port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each component")
    parser.add_argument(
        "--real-node", action="store_true", help="up: also start the real node (hack/realnode)"
    )
    args = parser.parse_args(argv)
    lay = Layout(args.dir.expanduser().resolve())
    if args.command == "up":
        try:
            up(lay, apiserver_port=args.apiserver_port, timeout=args.timeout)
            if args.real_node:
                import realnode

                realnode.up(lay)
        except ClusterError as exc:
            print(f"localkube: FAILED: {exc}", file=sys.stderr)
            return 1
        print(f"export KUBECONFIG={lay.kubeconfig}")
    elif args.command == "down":
        _realnode_down(lay)  # first: its pods and mounts go while the API still answers
        down(lay)
    elif args.command == "status":
        print("\n".join([*status(lay), *_realnode_status(lay)]))
    elif args.command == "kubeconfig":
        print(lay.kubeconfig)
    else:
        state = lay.read_state()
        rss = peak_rss_kib(state) if state else {}
        for name, kib in rss.items():
            print(f"{name:<24} VmHWM {kib / 1024:8.1f} MiB")
        print(f"{'total':<24} VmHWM {sum(rss.values()) / 1024:8.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
