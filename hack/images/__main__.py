"""CLI: `PYTHONPATH=hack .venv/bin/python -m images [--force] [--push] [NAME ...]` builds (or finds cached)
images; --push also pushes them to the local registry (started if needed) or to --repository."""

from __future__ import annotations

import argparse
import sys

from . import RECIPES, ensure, locked


def main(argv: list[str] | None = None) -> int:
    """Build the named images (all by default), print each archive, push them if asked."""
    parser = argparse.ArgumentParser(prog="images", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *RECIPES], default=[], metavar="NAME")
    parser.add_argument("--force", action="store_true", help="rebuild every layer of the named images")
    parser.add_argument("--push", action="store_true", help="push to the local registry (hack/realnode)")
    parser.add_argument(
        "--repository",
        default="",
        help="push here instead (host:port/path, plain HTTP), e.g. a registry of your own on loopback",
    )
    args = parser.parse_args(argv)
    built = [ensure(name, force=args.force) for name in args.names or list(RECIPES)]
    for b in built:
        size = b.archive.stat().st_size >> 20
        print(f"{b.name:<12} {b.ref:<24} {b.digest[:19]} {size:>5} MiB {b.archive}")
    if args.push or args.repository:
        from realnode import registry

        from images.push import push  # the registry side needs localcluster (hack/) on the path

        repository = args.repository or registry.REPOSITORY
        if not args.repository:
            registry.ensure()
        with locked():  # no registry garbage collection meanwhile (realnode/registry.py)
            for b in built:
                push(b, repository)
        print(f"images: every image is in {repository}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
