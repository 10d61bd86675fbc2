#!/bin/sh
# bench/queue/run.sh - measure the queue against raw Redis on this machine.
#
# Starts a private redis-server (Unix socket in a temp dir), runs
# redis-benchmark with one client (SET, LPUSH, EVALSHA of a trivial script:
# the round-trip floor our calls are built on), then bench_queue, and prints
# a JSON object and a table with ours/raw ratios.
#   bench/queue/run.sh [BUILD_DIR] [N] [LATENCY_SAMPLES]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
n=${2:-20000}
nlat=${3:-2000}
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

# requests/s of one client, no pipelining (like our calls)
rb() { redis-benchmark -s "$sock" -c 1 -n "$n" --csv "$@" | tail -1 | cut -d, -f2 | tr -d '"'; }
set_rps=$(rb -t set)
lpush_rps=$(rb -t lpush)
sha=$(redis-cli -s "$sock" script load "return 1")
evalsha_rps=$(rb evalsha "$sha" 0)

ours=$("$bench" "unix://$sock" "$n" "$nlat")

/usr/bin/python3 - "$set_rps" "$lpush_rps" "$evalsha_rps" "$ours" <<'PY'
import json, sys
set_rps, lpush_rps, evalsha_rps = (float(x) for x in sys.argv[1:4])
ours = json.loads(sys.argv[4])
raw = {"set_per_s": set_rps, "lpush_per_s": lpush_rps, "evalsha_per_s": evalsha_rps}
# A no-op task costs 4 round trips: enqueue script + index SET (pipelined
# together: one), dequeue script, ack script... so compare with EVALSHA/3.
ratio = {
    "enqueue_vs_evalsha": ours["enqueue_per_s"] / evalsha_rps,
    "dequeue_ack_vs_evalsha": ours["dequeue_ack_per_s"] / evalsha_rps,
    "noop_task_vs_evalsha": ours["noop_tasks_per_s"] / evalsha_rps,
}
print(json.dumps({"raw": raw, "ours": ours, "ratio": ratio}, indent=1))
print()
print("%-34s %12s" % ("measure", "value"))
for k, v in raw.items():
    print("%-34s %12.0f" % ("redis-benchmark " + k, v))
for k in ("enqueue_per_s", "dequeue_ack_per_s", "noop_tasks_per_s"):
    print("%-34s %12.0f" % ("ours " + k, ours[k]))
for k in ("latency_p50_ms", "latency_p99_ms", "latency_max_ms"):
    print("%-34s %12.3f" % ("ours enqueue-to-start " + k[8:], ours[k]))
for k, v in ratio.items():
    print("%-34s %12.2f" % ("ratio " + k, v))
goal = ours["noop_tasks_per_s"] >= 20000 and ours["latency_p50_ms"] <= 1.0
print("goals (>= 20000 no-op tasks/s, p50 <= 1 ms):", "met" if goal else "NOT met")
PY
