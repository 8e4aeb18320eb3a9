"""The engine container's start script: clone an empty member, rejoin an ex-primary, supervise postgres.

Runs as the container's PID 1 (``sh -c SCRIPT kubetrove-postgres docker-entrypoint.sh postgres ...``),
so it works with the official image unchanged (sh, pg_isready, pg_basebackup, psql and pg_rewind are
all in it). docs/clustering.md ("PostgreSQL") is the prose; the steps, before every start of postgres:

1. ``pg_hba.conf`` is rewritten in a scratch directory (``hba_file`` in postgresql.conf): the image's
   file has no ``replication`` line, and standbys clone and stream as the superuser over TCP.
2. An EMPTY data directory clones from the first server that answers: the read-write Service (the
   primary, once the loop labelled one), then every other member through the headless Service
   (``pg_basebackup -R``: ``standby.signal`` + ``primary_conninfo``). Only ordinal 0 may instead
   initialize a new database, and only when no other member answers (a new cluster: the others wait
   for it). So a member whose volume was lost never comes back as an empty primary beside the others.
3. A REJOIN request (the agent's ``set_source`` on a server that is not a standby writes the new
   primary's conninfo to ``REJOIN_FILE``) is carried out: ``CHECKPOINT`` on the new primary (its
   new timeline reaches pg_control only then; without it pg_rewind answers "no rewind required" for
   a diverged ex-primary), ``pg_rewind -R`` (rewind + standby.signal + primary_conninfo). If pg_rewind
   fails the data is KEPT (never re-cloned silently): postgres starts as it was (the agent fenced it),
   the reason goes to ``REWIND_FAILED_FILE`` and the agent reports it (docs: "errant ex-primary").
4. postgres runs in the background; a watcher stops it (fast shutdown, SIGINT) when a rejoin request
   appears, and the loop starts again at 1. (The watcher also ends on its own once postgres is gone:
   a kill sent just after a fork can be lost by sh.) The agent cannot restart postgres itself (another
   container), and an exit would put the container into the kubelet's restart back-off.
SIGTERM/SIGINT from the kubelet become a fast shutdown (SIGINT) of postgres.
"""

from __future__ import annotations

# On the data volume (it survives the pod) but outside PGDATA (pg_basebackup and pg_rewind copy PGDATA).
STATE_DIR = "/var/lib/postgresql/kubetrove"
REJOIN_FILE = f"{STATE_DIR}/rejoin"  # EngineContainer.demoted_marker: the agent writes, we consume
# Beside it: ``rewind-failed`` (agent.engines.postgresql_rejoin.FAILED_NAME), pg_rewind's output.
HBA_FILE = "/var/run/postgresql/pg_hba.conf"  # a scratch emptyDir: rewritten at every start
MAX_MEMBERS = 15  # validate_topology's limit: the ordinals a member probes for a clone source

HBA_LINES = (
    "# written by kubetrove at every start of the engine container (hba_file in postgresql.conf)",
    "local all all trust",  # the socket directory is the engine container's own emptyDir
    "local replication all trust",
    "host all all all scram-sha-256",
    "host replication all all scram-sha-256",
)
# spec.tls.mode required: TCP only over TLS. Standbys (pg_basebackup, primary_conninfo, pg_rewind) and the
# agent connect with libpq's default sslmode=prefer, so they negotiate TLS without a setting of theirs;
# the socket stays trusted. An explicit reject names the cause in the client's error ("no encryption").
# https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
HBA_LINES_TLS_REQUIRED = (
    HBA_LINES[0],
    "local all all trust",
    "local replication all trust",
    "hostssl all all all scram-sha-256",
    "hostssl replication all all scram-sha-256",
    "hostnossl all all all reject",
    "hostnossl replication all all reject",
)

SCRIPT = r"""set -u
state=@STATE@; rejoin="$state/rejoin"; failed="$state/rewind-failed"; config=@CONFIG@; port=@PORT@
name="${HOSTNAME%-*}"; ordinal="${HOSTNAME##*-}"
case "$ordinal" in ""|*[!0-9]*) echo "kubetrove: no StatefulSet ordinal in $HOSTNAME" >&2; exit 1;; esac
log() { echo "kubetrove: $*" >&2; }
sources() {
  @SOURCES@
}
clone() {
  for host in $(sources); do
    pg_isready -q -h "$host" -p "$port" -t 3 || continue
    log "cloning $PGDATA from $host"
    rm -rf "$PGDATA.clone"
    if PGPASSWORD="$POSTGRES_PASSWORD" pg_basebackup -h "$host" -p "$port" -U @USER@ \
        -D "$PGDATA.clone" -R -X stream -c fast; then
      rm -rf "$PGDATA" && mv "$PGDATA.clone" "$PGDATA" && rm -f "$rejoin" && return 0
    fi
  done
  return 1
}
rewind() {
  src="$(cat "$rejoin") dbname=postgres"
  until psql "$src connect_timeout=3" -XAtqc CHECKPOINT >/dev/null; do
    log "rejoin: waiting for the new primary"; sleep 2
  done
  if out=$(pg_rewind -D "$PGDATA" --source-server="$src" -R --config-file="$config" 2>&1); then
    log "rejoin: rewound as a standby: $out"; rm -f "$failed"
  else
    log "rejoin: pg_rewind failed, keeping the data: $out"; printf '%s\n' "$out" > "$failed"
  fi
  rm -f "$rejoin"
}
prepare() {
  printf '%s\n' @HBA@ > @HBAFILE@
  mkdir -p "$state" "${PGDATA%/*}"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until clone; do
      if [ "$ordinal" = 0 ]; then log "no member answers: initializing a new database"; break; fi
      log "waiting for a member to clone from"; sleep 2
    done
  elif [ -s "$rejoin" ]; then
    rewind
  fi
}
pid=; stopping=
trap 'stopping=1; interrupted=1; if [ -n "$pid" ]; then kill -INT "$pid"; else exit 143; fi' INT TERM
while :; do
  prepare
  "$@" &
  pid=$!
  (while sleep 1 && kill -0 "$pid" 2>/dev/null; do
     if [ -s "$rejoin" ]; then log "rejoin requested: stopping postgres"; kill -INT "$pid"; exit 0; fi
   done) &
  watcher=$!
  # A trapped signal interrupts wait (status >128) before postgres has stopped, or after sh has
  # already reaped it (then kill -0 cannot tell): wait again, and sh gives the server's own status.
  while :; do
    interrupted=
    wait "$pid"; rc=$?
    [ -n "$interrupted" ] || break
  done
  pid=
  kill "$watcher" 2>/dev/null
  if [ -z "$stopping" ] && [ -s "$rejoin" ]; then continue; fi
  exit "$rc"
done
"""


def _quote(value: str) -> str:
    """One single-quoted sh word (values are our constants; still quoted properly)."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


# Where an empty member clones from: the primary (rw Service), then every other member by ordinal.
MEMBER_SOURCES = f"""echo "$name-rw"
  i=0
  while [ "$i" -lt {MAX_MEMBERS} ]; do
    [ "$i" = "$ordinal" ] || echo "$name-$i.$name-headless"
    i=$((i + 1))
  done"""


def script(
    config_path: str,
    port: int,
    user: str,
    *,
    state_dir: str = STATE_DIR,
    hba_file: str = HBA_FILE,
    clone_sources: tuple[str, ...] | None = None,
    tls_required: bool = False,
) -> str:
    """The start script: clone as ``user`` on ``port``, rewind with ``config_path``; ``tls_required``:
    pg_hba.conf refuses TCP connections without TLS.

    The other keywords exist for tests on the host: other directories, and fixed clone sources instead of
    the pod's Service names.
    """
    hba = HBA_LINES_TLS_REQUIRED if tls_required else HBA_LINES
    sources = MEMBER_SOURCES if clone_sources is None else "echo " + " ".join(map(_quote, clone_sources))
    values = {
        "@STATE@": _quote(state_dir),
        "@CONFIG@": _quote(config_path),
        "@PORT@": str(port),
        "@USER@": _quote(user),
        "@SOURCES@": sources,
        "@HBAFILE@": _quote(hba_file),
        "@HBA@": " ".join(_quote(line) for line in hba),
    }
    text = SCRIPT
    for key, value in values.items():
        text = text.replace(key, value)
    return text
