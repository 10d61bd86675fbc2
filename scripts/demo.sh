#!/usr/bin/env bash
# The seed's distributed-task walkthrough, end to end, on a fresh machine:
# install what is missing, build, build the guest image, start private Redis
# and PostgreSQL, start a worker, create a VM, run `echo Hello from VM` and
# `ls -la` in it, delete it, show the results and the rows in vms, tasks and
# executions, then stop everything this script started (also on failure or
# Ctrl-C).
#
# Environment: AETH_BUILD_DIR (default build), AETH_SERVICES_DIR (default
# .aeth-dev), AETH_IMAGE_DIR (default ~/.cache/aetherium/image).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
builddir=${AETH_BUILD_DIR:-build}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

worker_pid=
services_started=0
vm_id=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [ -n "$vm_id" ] && [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
		# the VM may still exist if the demo failed half-way
		"$builddir/cli/aeth-submit" -type vm:delete -vm-id "$vm_id" -wait \
			-timeout 60s >/dev/null 2>&1
	fi
	if [ -n "$worker_pid" ]; then
		kill -TERM "$worker_pid" 2>/dev/null
		wait "$worker_pid" 2>/dev/null
	fi
	[ "$services_started" = 1 ] && scripts/services.sh stop
	[ -n "${workdir:-}" ] && rm -rf "$workdir"
	[ $rc -ne 0 ] && echo "demo: failed (exit $rc); worker log: ${log:-none}" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Installing missing packages (scripts/setup.sh)"
scripts/setup.sh

step "Building (meson, $builddir)"
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" >/dev/null
meson compile -C "$builddir" >/dev/null

step "Building the guest image (scripts/build-image.sh)"
AETH_AGENT_BIN=$repo/$builddir/agent/aeth-agent scripts/build-image.sh

step "Starting private Redis and PostgreSQL (scripts/services.sh)"
if ! scripts/services.sh status >/dev/null 2>&1; then
	scripts/services.sh start
	services_started=1
fi
eval "$(scripts/services.sh env)"

workdir=$(mktemp -d /tmp/aeth-demo.XXXXXX)
log=$workdir/worker.log
export AETH_STATE_DIR=$workdir/state

step "Starting a worker: aeth-worker -concurrency 2"
"$builddir/cli/aeth-worker" -concurrency 2 -id "demo-$(hostname)-$$" >"$log" 2>&1 &
worker_pid=$!
for _ in $(seq 100); do
	grep -q "Listening for tasks" "$log" && break
	kill -0 "$worker_pid" 2>/dev/null || { cat "$log"; exit 1; }
	sleep 0.1
done
cat "$log"

submit() { echo "\$ aeth-submit $*"; "$builddir/cli/aeth-submit" "$@"; }

step "Creating a VM"
out=$(submit -type vm:create -name demo-vm -wait -timeout 120s)
echo "$out"
vm_id=$(echo "$out" | sed -n 's/^  vm_id: //p')
[ -n "$vm_id" ] || { echo "no VM id in the output" >&2; exit 1; }

step "Running commands in VM $vm_id"
submit -type vm:execute -vm-id "$vm_id" -cmd echo -args "Hello from VM" -wait -timeout 60s
submit -type vm:execute -vm-id "$vm_id" -cmd ls -args "-la" -wait -timeout 60s

step "Deleting the VM"
submit -type vm:delete -vm-id "$vm_id" -wait -timeout 60s
vm_id=

step "What the worker printed"
cat "$log"

step "Rows in PostgreSQL (psql against the private server)"
psql "$AETH_DATABASE_URL" -c "SELECT id, name, status, owner_worker, created_at FROM vms ORDER BY created_at DESC LIMIT 5;"
psql "$AETH_DATABASE_URL" -c "SELECT id, type, status, worker_id, retry_count, created_at FROM tasks ORDER BY created_at DESC LIMIT 10;"
psql "$AETH_DATABASE_URL" -c "SELECT vm_id, command, args, exit_code, duration_ms, started_at FROM executions ORDER BY started_at DESC LIMIT 10;"

step "Done: everything this demo started is being stopped"
