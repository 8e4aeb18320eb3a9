#!/usr/bin/env bash
# Installs everything kubetrove's tests need on a fresh Debian machine; every step is idempotent and
# cached, so a second run takes seconds. `hack/setup.sh venv` does only the Python part.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

step() { echo "== setup: $* ($(date +%T))"; }

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then step "python venv"; python3 -m venv "$VENV"; fi
  # Reinstall only when pyproject.toml changed since the last install.
  local stamp="$VENV/.kubetrove-installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    step "pip install -e .[dev]"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e '.[dev]'
    touch "$stamp"
  fi
}

setup_apt() {
  local want=(openssl mariadb-server mariadb-client mariadb-backup postgresql postgresql-client)
  # MySQL 8.0.31 from its generic Linux build (hack/build-mysql.sh) links libaio.
  want+=(libaio1 unzip)
  # The real node (hack/realnode, setup.d/70-realnode.sh): runtime, CNI, kube-proxy's tools, image builds.
  want+=(containerd runc containernetworking-plugins iptables conntrack iproute2 mmdebstrap busybox-static gcc libc6-dev)
  # Its expandable StorageClass: XFS images grown online (hack/realnode/imagevolumes.py says why not ext4).
  want+=(xfsprogs)
  # The web console's browser tests (tests/e2e/test_console.py): headless Chromium through selenium.
  want+=(chromium chromium-driver)
  local missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's postinst scripts would start system-wide servers; tests start private ones instead.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
}

setup_venv
[ "${1:-all}" = venv ] && exit 0
setup_apt
for s in hack/setup.d/*.sh; do [ -e "$s" ] && { step "$(basename "$s")"; bash "$s"; }; done
step "done"
