"""Image builds: every image of hack/images/recipes.py built cold and warm, its size, figures saved.

Run: ``flock /tmp/kubetrove-images.lock .venv/bin/python benchmarks/images.py [NAME ...]``. It builds into
its OWN cache (KUBETROVE_CACHE in a temp dir), never the shared one, so the cold build starts from no
layer at all; the downloaded .deb files are copied in from the shared cache first (``--download`` skips
that, to time the downloads too: they depend on the network, not on this project). Measured per image:

- cold: ``images.ensure`` with an empty layer cache (mmdebstrap, pip, the source layer, the archive);
  an image that shares a layer with one built before it (an agent twin reuses its engine image's root
  filesystem) pays only for its own layers, as in `make images`;
- warm: ``ensure`` again with everything cached (what a `make images` with nothing changed costs);
- source change: a kubetrove source file touched (content changed), then ``ensure``: only the small
  source layer and the archive are rebuilt;
- size: the archive (uncompressed OCI layout), and the bytes of the layers no earlier image had (what
  a registry or node stores extra for it).

Printed and written to benchmarks/results/images.json with the machine and the Debian package versions
(the tags are checked against them by the build). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "images.json"
SHARED_CACHE = Path(os.environ.get("KUBETROVE_CACHE", Path.home() / ".cache" / "kubetrove"))


def main(argv: list[str] | None = None) -> int:
    """Build the named images (all by default) in a private cache; print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="recipe names (default: every one)")
    parser.add_argument("--download", action="store_true", help="download the .debs too (no shared copy)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kt-bench-images-") as tmp:
        os.environ["KUBETROVE_CACHE"] = tmp  # read by images.build.cache_dir() at each call
        debs = SHARED_CACHE / "images" / "apt-archives"
        if not args.download and debs.is_dir():
            shutil.copytree(debs, Path(tmp) / "images" / "apt-archives")
        sys.path.insert(0, str(ROOT / "hack"))
        import images
        from images import build

        names = args.names or list(images.RECIPES)
        load = os.getloadavg()
        rows: list[dict[str, Any]] = []
        seen_layers: set[str] = set()
        for name in names:
            t0 = time.monotonic()
            built = images.ensure(name)
            cold = time.monotonic() - t0
            t0 = time.monotonic()
            images.ensure(name)
            warm = time.monotonic() - t0
            layers = json.loads(built.archive.with_suffix(".json").read_text())["layers"]
            layer_bytes = {k: (build.cache_dir() / "layers" / f"{k}.tar").stat().st_size for k in layers}
            new_bytes = sum(size for k, size in layer_bytes.items() if k not in seen_layers)
            seen_layers.update(layers)
            listing = build.cache_dir() / f"{name}.packages"
            rows.append({
                "name": name,
                "ref": built.ref,
                "suite": images.RECIPES[name]().suite.name,
                "archive_mib": round(built.archive.stat().st_size / 2**20, 1),
                "new_layer_mib": round(new_bytes / 2**20, 1),
                "cold_s": round(cold, 1),
                "warm_s": round(warm, 2),
                "checked": dict(images.RECIPES[name]().expect),
                "packages": _versions(listing, images.RECIPES[name]().expect),
            })  # fmt: skip
            row = rows[-1]
            print(f"{name:<22} {built.ref:<28} {row['archive_mib']:>7} MiB (+{row['new_layer_mib']} MiB new)"
                  f" cold {cold:6.1f}s warm {warm:5.2f}s", flush=True)  # fmt: skip
        source_change = _source_change(images, [n for n in names if images.RECIPES[n]().python])
    result = {
        "parameters": {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}",
            "load_average_at_start": list(load),
            "python": platform.python_version(),
            "debs": "downloaded" if args.download else "copied from the shared cache (no download time)",
            "cold": "empty layer cache; built in RECIPES order, reusing a layer an earlier image built",
        },
        "images": rows,
        "total": {
            "cold_s": round(sum(r["cold_s"] for r in rows), 1),
            "warm_s": round(sum(r["warm_s"] for r in rows), 2),
            "stored_mib": round(sum(r["new_layer_mib"] for r in rows), 1),
            "archives_mib": round(sum(r["archive_mib"] for r in rows), 1),
        },
        "source_change": source_change,
    }
    print(json.dumps(result["total"]), json.dumps(source_change))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


def _versions(listing: Path, expect: Any) -> dict[str, str]:
    """dpkg's versions of the packages the build checks (the engine, python3)."""
    if not listing.is_file():
        return {}
    wanted = {package for package, _ in expect}
    pairs = (line.split("=", 1) for line in listing.read_text().splitlines() if "=" in line)
    return {p: v for p, v in pairs if p in wanted}


def _source_change(images: Any, names: list[str]) -> dict[str, float]:
    """Seconds to rebuild each Python image after a kubetrove source edit (a new comment line in
    kubetrove/version.py, restored afterwards)."""
    path = ROOT / "operator/kubetrove/version.py"
    original = path.read_text()
    out: dict[str, float] = {}
    try:
        path.write_text(original + "# benchmarks/images.py: a source change\n")
        for name in names:
            t0 = time.monotonic()
            images.ensure(name)
            out[name] = round(time.monotonic() - t0, 1)
    finally:
        path.write_text(original)
    return out


if __name__ == "__main__":
    sys.exit(main())
