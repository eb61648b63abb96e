#!/usr/bin/env bash
# A throwaway PostgreSQL for the monitor's tests (crates/monitor), from
# Debian's `postgresql` package: installs it when missing, initialises a
# cluster of its own (trust auth, C locale, fsync off: test data only),
# starts it on 127.0.0.1, waits until it accepts connections and prints its
# URL as the last line on stdout (everything else goes to stderr).
#
#   bash .ci/postgres.sh [start]   # idempotent: an already running cluster is reused
#   bash .ci/postgres.sh stop      # idempotent: nothing running is fine
#
# Runs as root without stdin. Settings (environment):
#   TRIAD_PG_PORT  port on 127.0.0.1 (default 5432)
#   TRIAD_PG_DATA  cluster directory (default /var/tmp/triad-postgres)
set -euo pipefail

mode="${1:-start}"
port="${TRIAD_PG_PORT:-5432}"
data="${TRIAD_PG_DATA:-/var/tmp/triad-postgres}"
url="postgres://postgres@127.0.0.1:${port}/postgres"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

pg_bin() {
    find /usr/lib/postgresql -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1
}

as_postgres() { runuser -u postgres -- "$@"; }

install() {
    if [ -n "$(pg_bin)" ]; then
        return
    fi
    log "installing Debian's postgresql package"
    # Only this script's cluster: no default "main" cluster on our port.
    mkdir -p /etc/postgresql-common
    if ! grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
        echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql </dev/null >&2
    if [ -z "$(pg_bin)" ]; then
        log "postgresql installed but no server binaries under /usr/lib/postgresql"
        exit 1
    fi
}

running() {
    [ -s "$data/PG_VERSION" ] && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
    install
    bin="$(pg_bin)"
    if running; then
        log "already running in $data"
    else
        # A Debian cluster left on our port would answer with another auth.
        if command -v pg_lsclusters >/dev/null 2>&1; then
            pg_lsclusters --no-header 2>/dev/null | while read -r ver name cport status _; do
                if [ "$cport" = "$port" ] && [ "$status" = "online" ]; then
                    log "stopping Debian cluster $ver/$name, which holds port $port"
                    pg_ctlcluster "$ver" "$name" stop >&2 || true
                fi
            done
        fi
        mkdir -p "$data"
        chown postgres:postgres "$data"
        chmod 700 "$data"
        if [ ! -s "$data/PG_VERSION" ]; then
            log "initialising a cluster in $data"
            as_postgres "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C >&2
        fi
        log "starting on 127.0.0.1:$port"
        as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2 \
            || { cat "$data/server.log" >&2 || true; exit 1; }
    fi
    for _ in $(seq 1 60); do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
            echo "$url"
            return
        fi
        sleep 1
    done
    log "PostgreSQL on 127.0.0.1:$port did not become ready"
    exit 1
}

stop() {
    bin="$(pg_bin)"
    if [ -z "$bin" ] || ! running; then
        log "not running"
        return
    fi
    as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >&2
}

case "$mode" in
    start) start ;;
    stop) stop ;;
    *)
        log "usage: $0 [start|stop]"
        exit 2
        ;;
esac
