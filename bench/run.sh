#!/usr/bin/env bash
# bench/run.sh - build, start private services, run every benchmark, and
# print each one's table and JSON, then the goals and whether they were met.
#
#   bench/run.sh [--boots N] [--execs N] [--e2e N] [--queue-runs N] [--worker N]
#                [--worker-runs N] [--pool N] [--density-vms N] [--idle S]
#                [--max-vms] [--quick]
#
# Builds a release tree in build-bench (no tests), a guest image from that
# tree's agent in ${AETH_IMAGE_DIR:-build-bench/image} (kernel + initramfs,
# no root disk; the downloads are hard-linked from the default image cache
# when it has them), starts Redis and PostgreSQL under build-bench/services
# and runs, one after the other:
#   queue  bench/queue/run.sh (its own redis-server): no-op tasks/s and
#          enqueue-to-start latency, next to redis-benchmark
#   metrics build-bench/bench/metrics/bench_metrics -n (--worker N) -r 4:
#          the worker drain with metrics off vs GET /metrics every second
#   worker build-bench/bench/worker/bench_worker -n 100000 (--worker N),
#          --worker-runs times (medians): no-op tasks/s through a real
#          worker (PostgreSQL rows included) draining a backlog and with
#          the producer running, enqueue-to-start latency, the Redis /
#          PostgreSQL parts alone
#   vm     bench/vm/compare.py: library boot-to-agent-ready, with the VMM
#          jail and without, vs bare QEMU boot of the same image
#          (alternating rounds), exec round trip of each
#   boot   bench/boot/bare_boot.sh: bare QEMU boot to init alone
#   e2e    build-bench/bench/e2e/bench_e2e: submit -> result of a
#          vm:execute `true` through the worker, minus the exec itself
#   snapshot bench/vm/snapshot.py: restore from a snapshot to agent-ready
#          vs a cold boot of the same shape and bare QEMU (--boots rounds)
#   pool   build-bench/bench/pool/bench_pool: vm:create from a warm pool,
#          submit -> result (--pool creates)
#   density bench/vm/density.py: PSS, host memory and CPU per idle
#          256 MiB VM, --density-vms of them after --idle s, restored and
#          cold; with --max-vms also how many run at once until a start
#          fails (minutes, and the machine is saturated meanwhile)
# VMs live under build-bench/state. Writes bench/results/latest.json (all
# results, machine load, goals) and stops everything it started (services,
# VMMs a failed benchmark left), also on failure or Ctrl-C. Exit status 1 if
# a benchmark failed to run (a goal not met is reported, not an error).
# See bench/README.md for what each number means.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
boots=5 execs=20 e2e_n=30 qruns=3 qn=20000 qlat=2000 wn=100000 wlat=1000 wruns=3
pool_n=30 dens_n=10 idle=60 max_vms=0
while [ $# -gt 0 ]; do
	case $1 in
	--boots) boots=$2; shift 2 ;;
	--execs) execs=$2; shift 2 ;;
	--e2e) e2e_n=$2; shift 2 ;;
	--queue-runs) qruns=$2; shift 2 ;;
	--worker) wn=$2; shift 2 ;;
	--worker-runs) wruns=$2; shift 2 ;;
	--pool) pool_n=$2; shift 2 ;;
	--density-vms) dens_n=$2; shift 2 ;;
	--idle) idle=$2; shift 2 ;;
	--max-vms) max_vms=1; shift ;;
	--quick) boots=2 execs=10 e2e_n=10 qruns=1 qn=5000 qlat=500 wn=5000 wlat=300 wruns=1
		pool_n=10 dens_n=4 idle=20; shift ;;
	-h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
build=$root/build-bench
results=$root/bench/results
out=$results/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
say() { printf '\n=== %s\n' "$*"; }

# --- build --------------------------------------------------------------
say "build ($build, release)"
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" --buildtype=release -Dtests=false || exit 1
fi
meson compile -C "$build" || exit 1

# --- image --------------------------------------------------------------
# Its own dir by default, so that the release agent never replaces the one
# in the image cache the tests use.
export AETH_IMAGE_DIR=${AETH_IMAGE_DIR:-$build/image}
cache=$HOME/.cache/aetherium/image
if [ -d "$cache/debs" ] && [ "$(readlink -f "$cache")" != "$(readlink -f "$AETH_IMAGE_DIR")" ]; then
	mkdir -p "$AETH_IMAGE_DIR/debs"
	cp -aln "$cache/debs/." "$AETH_IMAGE_DIR/debs/" 2>/dev/null || true
fi
say "image ($AETH_IMAGE_DIR)"
./scripts/build-image.sh --out "$AETH_IMAGE_DIR" --agent "$build/agent/aeth-agent" || exit 1

# --- services, VM state --------------------------------------------------
# VMs get a state dir of their own, so that a VMM a failed benchmark left
# behind can be found (its state dir is on its command line) and stopped.
export AETH_STATE_DIR=$build/state
export AETH_SERVICES_DIR=$build/services
services_started=0
cleanup() {
	local p
	for p in $(pgrep -f -- "$AETH_STATE_DIR/" 2>/dev/null); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		qemu*|firecracker*)
			echo "bench: stopping leftover VMM pid $p"
			kill -KILL "$p" 2>/dev/null ;;
		esac
	done
	[ $services_started = 1 ] && ./scripts/services.sh stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ./scripts/services.sh status >/dev/null 2>&1; then
	echo "bench: using the services running in $AETH_SERVICES_DIR (left running)"
else
	services_started=1
	./scripts/services.sh start || exit 1
fi
eval "$(./scripts/services.sh env)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- benchmarks ---------------------------------------------------------
failed=()
run() { # name command... : output to $out/name.txt and the terminal
	local name=$1; shift
	say "$name: $*"
	"$@" 2>&1 | tee "$out/$name.txt"
	local rc=${PIPESTATUS[0]}
	[ "$rc" = 0 ] || { echo "bench: $name FAILED (exit $rc)"; failed+=("$name"); }
}
run queue bench/queue/run.sh "$build" "$qn" "$qlat" "$qruns"
worker_runs() {
	local i
	for i in $(seq 1 "$wruns"); do
		echo "worker run $i of $wruns"
		"$build/bench/worker/bench_worker" -n "$wn" -lat "$wlat" -json || return 1
	done
}
run worker worker_runs
# the metrics endpoint's cost: the same drain, off vs scraped every second
if [ -x "$build/bench/metrics/bench_metrics" ]; then
	run metrics "$build/bench/metrics/bench_metrics" -n "$wn" -r 4 -json
fi
run vm /usr/bin/python3 bench/vm/compare.py --build "$build" -n "$boots" -e "$execs" \
	--json "$out/vm.json"
run boot bench/boot/bare_boot.sh -n "$boots" --image-dir "$AETH_IMAGE_DIR"
run e2e "$build/bench/e2e/bench_e2e" -n "$e2e_n" -json
run snapshot /usr/bin/python3 bench/vm/snapshot.py --build "$build" -n "$boots" \
	--json "$out/snapshot.json"
run pool "$build/bench/pool/bench_pool" -n "$pool_n" -json
run density /usr/bin/python3 bench/vm/density.py --build "$build" -n "$dens_n" \
	--idle "$idle" --json "$out/density.json"
if [ "$max_vms" = 1 ]; then
	run maxvms /usr/bin/python3 bench/vm/density.py --build "$build" --max \
		--json "$out/maxvms.json"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- combined JSON and goals --------------------------------------------
say "summary"
/usr/bin/python3 - "$out" "$results/latest.json" "$load_before" "$load_after" \
	"$(git rev-parse --short HEAD 2>/dev/null)" "${failed[*]:-}" <<'PY'
import json, os, statistics, sys, time

out, latest, load0, load1, rev, failed = sys.argv[1:7]

def text(name):
    try:
        return open(os.path.join(out, name + ".txt")).read().splitlines()
    except OSError:
        return []

def all_json(lines):
    """The lines that are one JSON object each, parsed."""
    found = []
    for l in lines:
        l = l.strip()
        if l.startswith("{") and l.endswith("}"):
            try:
                found.append(json.loads(l))
            except ValueError:
                pass
    return found

res = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": rev,
       "cpus": os.cpu_count(), "loadavg_before": load0, "loadavg_after": load1,
       "failed": failed.split()}

# queue: one JSON object per run ("run N: {...}"); medians over the runs.
runs = [json.loads(l.split(": ", 1)[1]) for l in text("queue") if l.startswith("run ")]
if runs:
    def med(sec, k):
        return statistics.median(r[sec][k] for r in runs)
    q = {"runs": runs, "median": {
        "ours": {k: med("ours", k) for k, v in runs[0]["ours"].items()
                 if isinstance(v, (int, float))},
        "raw": {k: med("raw", k) for k in runs[0]["raw"]}}}
    res["queue"] = q
try:
    res["vm"] = json.load(open(os.path.join(out, "vm.json")))
except (OSError, ValueError):
    pass
b = all_json(text("boot"))
if b:
    res["boot"] = b[-1]
# worker: one JSON object per run; medians of the numbers over the runs.
wr = all_json(text("worker"))
def median_of(objs):
    m = {}
    for k, v in objs[0].items():
        if isinstance(v, dict):
            m[k] = median_of([o[k] for o in objs])
        elif isinstance(v, (int, float)):
            m[k] = statistics.median(o[k] for o in objs)
    return m
if wr:
    res["worker"] = dict(median_of(wr), runs=wr)
e = all_json(text("e2e"))
if e:
    res["e2e"] = e[0]
m = all_json(text("metrics"))
if m:
    res["metrics"] = m[0]
for name in ("snapshot", "density", "maxvms"):
    try:
        res[name] = json.load(open(os.path.join(out, name + ".json")))
    except (OSError, ValueError):
        pass
pj = all_json(text("pool"))
if pj:
    res["pool"] = pj[0]

def get(*path):
    v = res
    for k in path:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v

goals = []
def goal(name, target, value, fmt, ok):
    goals.append({"goal": name, "target": target, "value": value,
                  "met": None if value is None or ok is None else bool(ok(value))})
    return fmt
fmts = [
    goal("boot ratio (library / bare QEMU, median)", "<= 1.05",
         get("vm", "boot_ratio"), "%.3f", lambda v: v <= 1.05),
    goal("jail cost (jailed / unjailed boot, median)", "(info)",
         get("vm", "jail_ratio"), "%.3f", None),
    goal("no-op tasks/s (worker, backlog, + PG rows)", ">= 20000",
         get("worker", "drain_tasks_per_s"), "%.0f", lambda v: v >= 20000),
    goal("no-op tasks/s (worker, producer running)", "(info)",
         get("worker", "worker_tasks_per_s"), "%.0f", None),
    goal("metrics: tasks/s scraped every 1 s / off", ">= 0.98",
         get("metrics", "ratio"), "%.3f", lambda v: v >= 0.98),
    goal("enqueue-to-start p50 ms (worker, idle)", "<= 1",
         get("worker", "latency_p50_ms"), "%.3f", lambda v: v <= 1.0),
    goal("no-op tasks/s (queue client alone, batch)", ">= 20000",
         get("queue", "median", "ours", "batch_noop_tasks_per_s"), "%.0f", lambda v: v >= 20000),
    goal("no-op tasks/s (queue client alone, 1-task)", "(info)",
         get("queue", "median", "ours", "noop_tasks_per_s"), "%.0f", None),
    goal("enqueue-to-start p50 ms (queue client alone)", "<= 1",
         get("queue", "median", "ours", "latency_p50_ms"), "%.3f", lambda v: v <= 1.0),
    goal("submit->result overhead p50 ms", "(info)",
         get("e2e", "overhead_ms", "p50"), "%.2f", None),
    goal("submit->result end to end p50 ms", "(info)",
         get("e2e", "end_to_end_ms", "p50"), "%.2f", None),
    goal("exec `true` round trip median ms (jailed)", "(info)",
         get("vm", "exec_true_median_ms"), "%.1f", None),
    goal("exec `true` round trip median ms (unjailed)", "(info)",
         get("vm", "unjailed_exec_true_median_ms"), "%.1f", None),
    goal("bare QEMU boot median s (bare_boot.sh)", "(info)",
         get("boot", "median_s"), "%.3f", None),
    goal("vm:create from a warm pool, submit->result p50 ms", "<= 20",
         get("pool", "create_ms", "p50"), "%.1f", lambda v: v <= 20),
    goal("snapshot restore / cold boot (median)", "<= 0.1",
         get("snapshot", "restore_ratio"), "%.3f", lambda v: v <= 0.1),
    goal("PSS MiB per idle 256 MiB VM (restored)", "<= 40",
         get("density", "restore", "pss_mib_per_vm"), "%.1f", lambda v: v <= 40),
    goal("PSS MiB per idle 256 MiB VM (cold)", "(info)",
         get("density", "cold", "pss_mib_per_vm"), "%.1f", None),
    goal("host MemAvailable MiB per idle VM (restored)", "(info)",
         get("density", "restore", "host_memavailable_drop_mib_per_vm"), "%.1f", None),
    goal("idle guest CPU % of a core per VM (restored)", "<= 1",
         get("density", "restore", "idle_cpu_percent_per_vm"), "%.2f",
         lambda v: v <= 1),
    goal("idle guest CPU % of a core per VM (cold)", "<= 1",
         get("density", "cold", "idle_cpu_percent_per_vm"), "%.2f",
         lambda v: v <= 1),
    goal("VMs of 256 MiB at once (--max-vms)", "(report)",
         get("maxvms", "max", "vms_at_once"), "%d", None),
]
res["goals"] = goals
text_out = json.dumps(res, indent=2)
for path in (os.path.join(out, "results.json"), latest):
    with open(path, "w") as f:
        f.write(text_out + "\n")
print("results: %s (and %s)" % (latest, os.path.join(out, "results.json")))
print("machine: %s cpus, load average %s before, %s after" % (res["cpus"], load0, load1))
print("%-46s %10s %12s %8s" % ("goal", "target", "measured", "met"))
for g, f in zip(goals, fmts):
    v = "-" if g["value"] is None else f % g["value"]
    met = {True: "yes", False: "NO", None: ""}[g["met"]]
    if g["value"] is None:
        met = "n/a"
    print("%-46s %10s %12s %8s" % (g["goal"], g["target"], v, met))
if res["failed"]:
    print("benchmarks that failed to run: " + " ".join(res["failed"]))
PY
[ ${#failed[@]} -eq 0 ]
