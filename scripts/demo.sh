#!/usr/bin/env bash
# The seed's distributed-task walkthrough, end to end, on a fresh machine:
# install what is missing, build, build the guest image, start a private
# Redis and PostgreSQL, start a worker, create a VM, run `echo Hello from VM`
# and `ls -la` in it, delete it, show the results and the rows in vms, tasks
# and executions, then stop everything this script started (also on failure
# or Ctrl-C).
#
# Environment: AETH_BUILD_DIR (default build), AETH_IMAGE_DIR (default
# ~/.cache/aetherium/image). The Redis and PostgreSQL servers live in a
# temporary state dir of the demo's own (never the ones of .aeth-dev or of a
# test run) and are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
builddir=${AETH_BUILD_DIR:-build}
case $builddir in /*) ;; *) builddir=$repo/$builddir ;; esac

if [ -t 1 ]; then B=$'\033[1m' D=$'\033[2m' R=$'\033[31m' G=$'\033[32m' N=$'\033[0m'
else B= D= R= G= N=; fi
nsteps=8 stepno=0
step() { stepno=$((stepno + 1)); printf '\n%s[%d/%d] %s%s\n' "$B" "$stepno" "$nsteps" "$*" "$N"; }
note() { printf '%s%s%s\n' "$D" "$*" "$N"; }
die() { printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

workdir=$(mktemp -d /tmp/aeth-demo.XXXXXX)
log=$workdir/worker.log
export AETH_SERVICES_DIR=$workdir/services
export AETH_STATE_DIR=$workdir/vms
worker_pid= child_pid= services_started=0 vm_id= t_start=$SECONDS

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ -n "$child_pid" ] && kill -TERM "$child_pid" 2>/dev/null && wait "$child_pid" 2>/dev/null
	printf '\n%sCleaning up%s\n' "$B" "$N"
	if [ -n "$vm_id" ] && [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
		echo "  deleting VM $vm_id (the demo stopped half-way)"
		"$builddir/cli/aeth-submit" -type vm:delete -vm-id "$vm_id" -wait \
			-timeout 60s >/dev/null 2>&1
	fi
	if [ -n "$worker_pid" ]; then
		echo "  stopping the worker (pid $worker_pid)"
		kill -TERM "$worker_pid" 2>/dev/null
		wait "$worker_pid" 2>/dev/null
	fi
	# a VM left by a worker that did not stop cleanly: its VMM runs with
	# our state dir on its command line
	for p in $(pgrep -f -- "$AETH_STATE_DIR" 2>/dev/null); do
		echo "  killing leftover VMM pid $p"
		kill -KILL "$p" 2>/dev/null
	done
	if [ "$services_started" = 1 ]; then
		echo "  stopping the private Redis and PostgreSQL"
		scripts/services.sh clean >/dev/null 2>&1 ||
			echo "  warning: scripts/services.sh clean failed (AETH_SERVICES_DIR=$AETH_SERVICES_DIR)"
	fi
	if [ $rc -ne 0 ] && [ -s "$log" ]; then
		echo "  the worker's log:"
		sed 's/^/    | /' "$log"
	fi
	rm -rf "$workdir"
	if [ $rc -eq 0 ]; then
		printf '%sDemo finished in %d s; nothing it started is left running.%s\n' \
			"$G" $((SECONDS - t_start)) "$N"
	else
		printf '%sdemo: failed (exit %d); everything it started was stopped.%s\n' \
			"$R" "$rc" "$N" >&2
	fi
	exit $rc
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT
trap 'exit 143' TERM

# Run "$@" with its output in $1's log file, printing how long it has been
# running every 15 s; on failure show the end of the log.
run_quiet() {
	local what=$1 out=$2 t0=$SECONDS next=15 rc=0
	shift 2
	"$@" >"$out" 2>&1 &
	child_pid=$!
	while kill -0 "$child_pid" 2>/dev/null; do
		if [ $((SECONDS - t0)) -ge $next ]; then
			note "  ... still $what ($((SECONDS - t0)) s)"
			next=$((next + 15))
		fi
		sleep 1
	done
	wait "$child_pid" || rc=$?
	child_pid=
	if [ $rc -ne 0 ]; then
		tail -n 40 "$out" | sed 's/^/    | /' >&2
		die "$what failed (exit $rc); full log above"
	fi
	note "  done in $((SECONDS - t0)) s"
}

# Print the worker's log lines that appeared since the last call.
shown=0
worker_says() {
	local n
	n=$(wc -l <"$log")
	[ "$n" -gt "$shown" ] && sed -n "$((shown + 1)),${n}p" "$log" | sed 's/^/  worker | /'
	shown=$n
}

# Wait (up to 10 s) until the worker has printed the end of task $1, so its
# lines come out after the submitter's.
worker_done() {
	local deadline=$((SECONDS + 10))
	while [ $SECONDS -lt $deadline ] && ! grep -qE "Task $1 (completed|failed)" "$log"; do
		sleep 0.1
	done
	worker_says
}

# The words of a command as one would type them (quotes where needed).
shown_cmd() {
	local w out=
	for w in "$@"; do
		case $w in *[[:space:]\'\"\$\\]*|'') w="'${w//\'/\'\\\'\'}'" ;; esac
		out+=" $w"
	done
	echo "${out# }"
}

# Run aeth-submit visibly: the command, then its output as it comes (the
# "task submitted" line at once, progress every 5 s while it waits); the
# output is kept in $submit_out for the caller.
submit_out=$workdir/submit.out
submit() {
	printf '%s$ %s%s\n' "$B" "$(shown_cmd aeth-submit "$@")" "$N"
	"$builddir/cli/aeth-submit" "$@" | tee "$submit_out"
}
task_id() { sed -n 's/^✓ .* task submitted: //p' "$submit_out"; }

step "Installing missing packages (scripts/setup.sh)"
scripts/setup.sh
note "  all packages present"

step "Building with meson in $builddir"
if [ ! -f "$builddir/build.ninja" ]; then
	run_quiet "configuring" "$workdir/setup.log" meson setup "$builddir"
fi
run_quiet "compiling" "$workdir/build.log" meson compile -C "$builddir"

step "Building the guest image (scripts/build-image.sh; skipped when up to date)"
note "  kernel from Debian's package, initramfs with the agent as /init; a first build downloads ~60 MB"
AETH_AGENT_BIN=$builddir/agent/aeth-agent scripts/build-image.sh 2>&1 | sed 's/^/  /'

step "Starting a private Redis and PostgreSQL (scripts/services.sh, in $AETH_SERVICES_DIR)"
services_started=1
run_quiet "starting the services" "$workdir/services.log" scripts/services.sh start
eval "$(scripts/services.sh env)"
echo "  Redis:      $AETH_REDIS_URL"
echo "  PostgreSQL: $AETH_DATABASE_URL"

step "Starting a worker in the background"
wid="demo-$(hostname -s)-$$"
printf '%s$ aeth-worker -concurrency 2 -id %s >worker.log 2>&1 &%s\n' "$B" "$wid" "$N"
# own session: a Ctrl-C reaches this script only, whose cleanup then still
# has a worker to delete the VM with (and stops it afterwards)
setsid "$builddir/cli/aeth-worker" -concurrency 2 -id "$wid" >"$log" 2>&1 </dev/null &
worker_pid=$!
deadline=$((SECONDS + 60))
until grep -q "Listening for tasks" "$log"; do
	kill -0 "$worker_pid" 2>/dev/null || { worker_says; die "the worker exited (see above)"; }
	[ $SECONDS -lt $deadline ] || die "the worker did not start listening within 60 s"
	sleep 0.1
done
worker_says

step "Creating a VM"
note "  the worker boots a microVM and waits for its agent: about a second with KVM, 3-15 s under TCG"
submit -type vm:create -name demo-vm -wait -timeout 180s || die "vm:create failed"
vm_id=$(sed -n 's/^  vm_id: //p' "$submit_out")
[ -n "$vm_id" ] || die "no VM id in aeth-submit's output"
worker_done "$(task_id)"

step "Running commands in VM $vm_id"
for cmd in "echo|Hello from VM" "ls|-la"; do
	submit -type vm:execute -vm-id "$vm_id" -cmd "${cmd%%|*}" -args "${cmd#*|}" \
		-wait -timeout 60s || die "the command failed"
	worker_done "$(task_id)"
done

step "Deleting the VM"
submit -type vm:delete -vm-id "$vm_id" -wait -timeout 60s || die "vm:delete failed"
vm_id=
worker_done "$(task_id)"

printf '\n%sRows in PostgreSQL%s %s(psql against the private server; times are UTC)%s\n' "$B" "$N" "$D" "$N"
q() { printf '%s$ psql -c "%s"%s\n' "$B" "$1" "$N"; psql -X "$AETH_DATABASE_URL" -c "$1"; }
q "SELECT id, name, status, owner_worker, created_at, stopped_at FROM vms ORDER BY created_at"
q "SELECT id, type, status, worker_id, retry_count, completed_at - started_at AS took FROM tasks ORDER BY created_at"
q "SELECT command, args, exit_code, duration_ms, left(replace(stdout, chr(10), ' '), 40) AS stdout FROM executions ORDER BY started_at"
