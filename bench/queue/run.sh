#!/bin/sh
# bench/queue/run.sh - measure the queue against raw Redis on this machine.
#
# Starts a private redis-server (Unix socket in a temp dir) and, RUNS
# times, runs redis-benchmark with one client (SET, LPUSH, EVALSHA of a
# trivial script: the round-trip floor a one-task call is built on; LPUSH
# with 100 commands pipelined: the floor of a batch), then bench_queue
# right after it. Prints every run's JSON, then the median of each number
# over the runs, the ratios to redis-benchmark of the same run, and the
# Redis-side cost of each script (usec per call and per task, CPU time of
# the server per task) with the throughput bound it implies.
#   bench/queue/run.sh [BUILD_DIR] [N] [LATENCY_SAMPLES] [RUNS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
n=${2:-20000}
nlat=${3:-2000}
runs=${4:-3}
bench="$build/bench/queue/bench_queue"
[ -x "$bench" ] || { echo "run.sh: $bench not built (ninja -C $build)" >&2; exit 1; }

dir=$(mktemp -d /tmp/aeth-qbench-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
sock="$dir/redis.sock"
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' \
	--appendonly no --dir "$dir" --logfile "$dir/redis.log" --daemonize no &
pid=$!
i=0
until redis-cli -s "$sock" ping >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 500 ] || { echo "redis-server did not start" >&2; exit 1; }
	sleep 0.01
done

# requests/s of one client
rb() { redis-benchmark -s "$sock" -c 1 -n "$n" --csv "$@" | tail -1 | cut -d, -f2 | tr -d '"'; }
sha=$(redis-cli -s "$sock" script load "return 1")
: > "$dir/runs.jsonl"
r=0
while [ $r -lt "$runs" ]; do
	r=$((r + 1))
	set_rps=$(rb -t set)
	lpush_rps=$(rb -t lpush)
	lpush_p100_rps=$(rb -t lpush -P 100)
	evalsha_rps=$(rb evalsha "$sha" 0)
	ours=$("$bench" "unix://$sock" "$n" "$nlat")
	redis-cli -s "$sock" flushall >/dev/null
	printf '{"raw": {"set_per_s": %s, "lpush_per_s": %s, "lpush_p100_per_s": %s, "evalsha_per_s": %s}, "ours": %s}\n' \
		"$set_rps" "$lpush_rps" "$lpush_p100_rps" "$evalsha_rps" "$ours" >> "$dir/runs.jsonl"
	echo "run $r: $(tail -1 "$dir/runs.jsonl")"
done

/usr/bin/python3 - "$dir/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
for r in runs:
    raw, o = r["raw"], r["ours"]
    # A one-task call costs one round trip like EVALSHA; a batch call
    # carries 100 tasks like 100 pipelined LPUSHes.
    r["ratio"] = {
        "noop_task_vs_evalsha": o["noop_tasks_per_s"] / raw["evalsha_per_s"],
        "batch_noop_task_vs_evalsha": o["batch_noop_tasks_per_s"] / raw["evalsha_per_s"],
        "batch_noop_task_vs_lpush_p100": o["batch_noop_tasks_per_s"] / raw["lpush_p100_per_s"],
    }
def med(path):
    vals = []
    for r in runs:
        v = r
        for k in path:
            v = v[k]
        vals.append(v)
    return statistics.median(vals)
rows = []
for k in runs[0]["raw"]:
    rows.append(("redis-benchmark " + k, med(("raw", k)), "%.0f"))
for k in ("enqueue_per_s", "dequeue_ack_per_s", "noop_tasks_per_s",
          "batch_enqueue_per_s", "batch_dequeue_ack_per_s", "batch_noop_tasks_per_s"):
    rows.append(("ours " + k, med(("ours", k)), "%.0f"))
for k in ("latency_p50_ms", "latency_p99_ms", "latency_max_ms"):
    rows.append(("ours enqueue-to-start " + k[8:], med(("ours", k)), "%.3f"))
for k in runs[0]["ratio"]:
    rows.append(("ratio " + k, med(("ratio", k)), "%.2f"))
for mode in ("single", "batch"):
    for k in runs[0]["ours"]["redis_usec_" + mode]:
        f = "%.0f" if k.endswith("_per_s") else "%.2f"
        rows.append(("redis %s %s" % (mode, k), med(("ours", "redis_usec_" + mode, k)), f))
print()
print("median of %d runs (n=%d)" % (len(runs), runs[0]["ours"]["n"]))
print("%-48s %12s" % ("measure", "value"))
for name, v, f in rows:
    print("%-48s %12s" % (name, f % v))
best = med(("ours", "batch_noop_tasks_per_s"))
p50 = med(("ours", "latency_p50_ms"))
print("goals (>= 20000 no-op tasks/s with the batch calls, p50 <= 1 ms):",
      "met" if best >= 20000 and p50 <= 1.0 else "NOT met",
      "(%.0f/s, %.3f ms)" % (best, p50))
PY
