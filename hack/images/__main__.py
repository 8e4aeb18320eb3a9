"""CLI: `PYTHONPATH=hack .venv/bin/python -m images [--force] [NAME ...]` builds (or finds cached) images."""

from __future__ import annotations

import argparse
import sys

from . import RECIPES, ensure


def main(argv: list[str] | None = None) -> int:
    """Build the named images (all by default) and print each archive."""
    parser = argparse.ArgumentParser(prog="images", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *RECIPES], default=[], metavar="NAME")
    parser.add_argument("--force", action="store_true", help="rebuild every layer of the named images")
    args = parser.parse_args(argv)
    for name in args.names or list(RECIPES):
        built = ensure(name, force=args.force)
        print(f"{built.name:<12} {built.full_ref:<48} {built.digest[:19]} {built.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
