#!/usr/bin/env bash
# Private Redis and PostgreSQL for development and tests, on Unix sockets
# under a state dir (never the system's instances, no TCP ports).
#
#   scripts/services.sh start [redis|pg]  start both, or one (idempotent: what
#                                runs is left alone), create db "aetherium"
#   scripts/services.sh stop     stop both and wait until they are gone
#   scripts/services.sh status   say what runs; exit 0 only if both run
#   scripts/services.sh env      print export lines: eval "$(scripts/services.sh env)"
#   scripts/services.sh clean    stop, then delete all their data
#
# State dir: ${AETH_SERVICES_DIR:-<repo>/.aeth-dev}. PostgreSQL refuses to run
# as root, so as root its cluster runs as the `postgres` user; when that user
# cannot reach the state dir (e.g. a clone under /root), the cluster lives in
# a mktemp dir under /tmp whose path is recorded in <state>/pg.base.
# The cluster is for development only: fsync is off, auth is "trust" on a
# socket in a directory only its owner can enter. Redis keeps an append-only
# file (appendonly yes, appendfsync everysec) in <state>/redis, so a Redis
# killed and started again finds its tasks (all but the last second's
# writes, which the ledger reconciler puts back: docs/queue.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
state=${AETH_SERVICES_DIR:-$repo/.aeth-dev}
case $state in /*) ;; *) state=$PWD/$state ;; esac
redis_dir=$state/redis
redis_sock=$redis_dir/redis.sock
redis_pid=$redis_dir/redis.pid
pg_user=postgres
pg_db=aetherium

say() { echo "services: $*" >&2; }
die() { say "error: $*"; exit 1; }

pg_bin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/$1" ] && { echo "$d/$1"; return; }
	done
	command -v "$1" || die "PostgreSQL's $1 not found: run scripts/setup.sh"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a PostgreSQL server command as the cluster's owner, from a directory
# that user can enter.
as_pg() {
	if is_root; then
		(cd / && runuser -u "$pg_user" -- "$@")
	else
		(cd / && "$@")
	fi
}

pg_base() {
	if [ -f "$state/pg.base" ]; then cat "$state/pg.base"; else echo "$state/pg"; fi
}

# A zombie counts as gone: a daemon's reaper may be slow to wait for it.
pid_alive() {
	[ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null &&
		[ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}

redis_running() {
	[ -f "$redis_pid" ] && pid_alive "$(cat "$redis_pid" 2>/dev/null)" &&
		[ -S "$redis_sock" ]
}

pg_running() {
	local data
	data=$(pg_base)/data
	[ -f "$data/PG_VERSION" ] || return 1
	as_pg "$(pg_bin pg_ctl)" status -D "$data" >/dev/null 2>&1
}

lock() {
	mkdir -p "$state"
	exec 9>"$state/.lock"
	if ! flock -w 120 9; then die "another services.sh holds $state/.lock"; fi
}

start_redis() {
	if redis_running; then say "redis already running ($redis_sock)"; return; fi
	command -v redis-server >/dev/null || die "redis-server not found: run scripts/setup.sh"
	[ ${#redis_sock} -le 107 ] ||
		die "socket path $redis_sock is longer than 107 bytes: set AETH_SERVICES_DIR to a shorter dir"
	mkdir -p "$redis_dir"
	chmod 700 "$redis_dir"
	rm -f "$redis_sock" "$redis_pid"
	say "starting redis on $redis_sock"
	redis-server --port 0 --unixsocket "$redis_sock" --unixsocketperm 700 \
		--daemonize yes --pidfile "$redis_pid" --dir "$redis_dir" \
		--logfile "$redis_dir/redis.log" --save "" \
		--appendonly yes --appendfsync everysec 9>&-
	for _ in $(seq 100); do
		redis_running && redis-cli -s "$redis_sock" PING >/dev/null 2>&1 && return
		sleep 0.1
	done
	die "redis did not start within 10 s; see $redis_dir/redis.log"
}

# Choose (once) where the cluster lives: <state>/pg if the postgres user can
# use it, else a fresh dir under /tmp.
pg_prepare_base() {
	local base
	[ -f "$state/pg.base" ] && [ -d "$(cat "$state/pg.base")" ] && return
	rm -f "$state/pg.base"
	base=$state/pg
	mkdir -p "$base"
	chmod 700 "$base"
	if is_root; then
		chown "$pg_user:" "$base"
		if ! runuser -u "$pg_user" -- test -w "$base" -a -x "$base" 2>/dev/null; then
			rmdir "$base" 2>/dev/null || true
			base=$(mktemp -d /tmp/aeth-pg.XXXXXX)
			chown "$pg_user:" "$base"
			echo "$base" >"$state/pg.base"
			say "user $pg_user cannot reach $state: PostgreSQL lives in $base"
		fi
	fi
}

start_pg() {
	local base data sock_path
	if pg_running; then say "postgresql already running ($(pg_base))"; return; fi
	pg_prepare_base
	base=$(pg_base)
	data=$base/data
	sock_path=$base/.s.PGSQL.5432
	[ ${#sock_path} -le 107 ] ||
		die "socket path $sock_path is longer than 107 bytes: set AETH_SERVICES_DIR to a shorter dir"
	if [ ! -f "$data/PG_VERSION" ]; then
		say "initialising a PostgreSQL cluster in $data (takes a few seconds)"
		as_pg "$(pg_bin initdb)" -D "$data" -U "$pg_user" --auth=trust \
			-E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
			die "initdb failed; see $base/initdb.log"
		echo "include_if_exists = 'aeth.conf'" >>"$data/postgresql.conf"
	fi
	# Rewritten on every start so that a moved state dir still works.
	cat >"$data/aeth.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$base'
unix_socket_permissions = 0700
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
	is_root && chown "$pg_user:" "$data/aeth.conf"
	rm -f "$base/.s.PGSQL.5432" "$base/.s.PGSQL.5432.lock"
	say "starting postgresql on $base (waiting up to 60 s)"
	as_pg "$(pg_bin pg_ctl)" start -D "$data" -l "$base/postgresql.log" -w -t 60 \
		>/dev/null 9>&- || die "postgresql did not start; see $base/postgresql.log"
	if [ "$(psql -h "$base" -U "$pg_user" -d postgres -XAtc \
		"SELECT 1 FROM pg_database WHERE datname = '$pg_db'")" != 1 ]; then
		psql -h "$base" -U "$pg_user" -d postgres -Xqc "CREATE DATABASE $pg_db" ||
			die "cannot create database $pg_db"
	fi
}

stop_redis() {
	local pid
	[ -f "$redis_pid" ] || { rm -f "$redis_sock"; return; }
	pid=$(cat "$redis_pid" 2>/dev/null || true)
	if pid_alive "$pid"; then
		say "stopping redis (pid $pid)"
		redis-cli -s "$redis_sock" SHUTDOWN NOSAVE >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do pid_alive "$pid" || break; sleep 0.1; done
		if pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; sleep 0.2; fi
	fi
	rm -f "$redis_pid" "$redis_sock"
}

stop_pg() {
	local data pid
	data=$(pg_base)/data
	[ -f "$data/postmaster.pid" ] || return 0
	pid=$(head -1 "$data/postmaster.pid" 2>/dev/null || true)
	say "stopping postgresql (pid $pid)"
	as_pg "$(pg_bin pg_ctl)" stop -D "$data" -m fast -w -t 60 >/dev/null 2>&1 || true
	for _ in $(seq 100); do pid_alive "$pid" || break; sleep 0.1; done
	if pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; sleep 0.5; fi
	pid_alive "$pid" && die "postgresql (pid $pid) did not stop"
	return 0
}

print_env() {
	local base
	base=$(pg_base)
	echo "export AETH_SERVICES_DIR='$state'"
	echo "export AETH_DATABASE_URL='postgresql:///$pg_db?host=$base&user=$pg_user'"
	echo "export AETH_TEST_DATABASE_URL='postgresql:///postgres?host=$base&user=$pg_user'"
	echo "export AETH_REDIS_URL='unix://$redis_sock'"
	echo "export AETH_TEST_REDIS_URL='unix://$redis_sock'"
}

status() {
	local rc=0
	if redis_running; then echo "redis: running ($redis_sock)"; else echo "redis: stopped"; rc=1; fi
	if pg_running; then echo "postgresql: running ($(pg_base))"; else echo "postgresql: stopped"; rc=1; fi
	return $rc
}

case ${1:-} in
start)
	lock
	case ${2:-} in
	redis) start_redis ;;
	pg) start_pg ;;
	'') start_redis; start_pg ;;
	*) echo "usage: $0 start [redis|pg]" >&2; exit 2 ;;
	esac
	;;
stop) lock; stop_redis; stop_pg ;;
status) status ;;
env) print_env ;;
clean)
	lock; stop_redis; stop_pg
	base=$(pg_base)
	say "removing $state and $base"
	[ -f "$state/pg.base" ] && rm -rf "$base"
	rm -rf "$redis_dir" "$state/pg" "$state/pg.base"
	;;
*) echo "usage: $0 start [redis|pg]|stop|status|env|clean" >&2; exit 2 ;;
esac
