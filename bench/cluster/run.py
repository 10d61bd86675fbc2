#!/usr/bin/python3
"""bench/cluster/run.py - the queue on a 3-node Redis Cluster against a
single Redis in the same run, and how long tasks stop when the stores
fail over. Not part of the test run (tests/cluster has the short
versions); writes bench/cluster/results.json and prints a table.

    bench/cluster/run.py [--build BUILD] [--rounds R] [--n N] [--samples S]
                         [--queues Q] [--faults K] [--fault-tasks T]

- throughput and latency: BUILD/bench/cluster/bench_cluster against a
  redis-server on 127.0.0.1 (append-only file, as the cluster's nodes)
  and against a 3-node cluster (tests/cluster/topology.py), alternating,
  R rounds each; medians and the ratio cluster / single.
- failover: tests/cluster/test_faults.py sentinel and pg, K rounds each,
  with bursts of T submits: the figures (nothing lost) and resume_s, the
  time from the fault to the first task started after it; for Sentinel
  also the failover itself (kill to the replica's promotion).

Needs redis-server, redis-cli, PostgreSQL (scripts/setup.sh) and, for
the failover part, AETH_TEST_DATABASE_URL (eval "$(scripts/services.sh
env)").
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
os.environ.setdefault("AETH_SOURCE_ROOT", ROOT)


def bench(build, url, args):
    r = subprocess.run([os.path.join(build, "bench", "cluster", "bench_cluster"), url,
                        str(args.n), str(args.samples), str(args.queues)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit("bench_cluster %s: %s" % (url, r.stderr))
    return json.loads(r.stdout)


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def fault_runs(build, mode, rounds, tasks):
    env = dict(os.environ, AETH_BUILD_ROOT=build, AETH_FAULT_TASKS=str(tasks),
               AETH_JAILER=os.path.join(build, "lib", "jail", "aeth-jailer"))
    out = []
    for k in range(rounds):
        r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "cluster",
                                                         "test_faults.py"), mode],
                           capture_output=True, text=True, env=env, timeout=900)
        text = r.stdout + r.stderr
        fig = re.search(r"figures: (.*)", text)
        res = re.search(r"resume_s=(\S+)", text)
        prom = re.search(r"promoted :\d+ after ([\d.]+) s", text)
        run = {"ok": r.returncode == 0}
        if fig:
            run.update({k: float(v) if "." in v else int(v) for k, v in
                        (kv.split("=") for kv in fig.group(1).split())})
        if res and res.group(1) != "None":
            run["resume_s"] = float(res.group(1))
        if prom:
            run["failover_s"] = float(prom.group(1))
        print("  %s round %d: %s" % (mode, k + 1, json.dumps(run)), flush=True)
        out.append(run)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--queues", type=int, default=4)
    ap.add_argument("--faults", type=int, default=3)
    ap.add_argument("--fault-tasks", type=int, default=600)
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "cluster",
                                                   "results.json"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    from topology import RedisCluster, RedisServer, free_port

    load0 = os.getloadavg()[0]
    single = RedisServer("bench-single", free_port())
    single.start()
    cluster = RedisCluster(name="bench-cluster").start()
    runs = {"single": [], "cluster": []}
    for k in range(args.rounds):
        order = [("single", single.url()), ("cluster", cluster.url())]
        for name, url in (order if k % 2 == 0 else order[::-1]):
            runs[name].append(bench(build, url, args))
            print("  round %d %s: %s" % (k + 1, name, json.dumps(runs[name][-1])),
                  flush=True)
    single.kill()
    for n in cluster.nodes:
        n.kill()
    q = {name: {"tasks_per_s": med(rs, "tasks_per_s"),
                "latency_p50_ms": med(rs, "latency_p50_ms"),
                "latency_p99_ms": med(rs, "latency_p99_ms"),
                "runs": rs} for name, rs in runs.items()}
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": "%d cores, load %.1f at start" % (os.cpu_count(), load0),
        "queues": args.queues, "n": args.n, "rounds": args.rounds,
        "queue": q,
        "ratio_cluster_over_single": {
            "tasks_per_s": round(q["cluster"]["tasks_per_s"] / q["single"]["tasks_per_s"], 2),
            "latency_p50": round(q["cluster"]["latency_p50_ms"] /
                                 q["single"]["latency_p50_ms"], 2)},
    }
    if args.faults and os.environ.get("AETH_TEST_DATABASE_URL"):
        for mode in ("sentinel", "pg"):
            rs = fault_runs(build, mode, args.faults, args.fault_tasks)
            ok = [r for r in rs if "resume_s" in r]
            result[mode] = {
                "rounds": rs, "tasks_per_burst": args.fault_tasks,
                "lost": sum(r.get("lost", 0) for r in rs),
                "all_passed": all(r["ok"] for r in rs),
                "resume_s_median": statistics.median(r["resume_s"] for r in ok)
                if ok else None}
            if mode == "sentinel":
                fo = [r["failover_s"] for r in rs if "failover_s" in r]
                result[mode]["failover_s_median"] = statistics.median(fo) if fo else None
    result["load_at_end"] = round(os.getloadavg()[0], 1)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    r = result
    print("\n| measure | single Redis | 3-node cluster | cluster / single |")
    print("|---|---|---|---|")
    print("| no-op tasks/s, %d queues, batch calls | %.0f | %.0f | %.2f |" % (
        args.queues, q["single"]["tasks_per_s"], q["cluster"]["tasks_per_s"],
        r["ratio_cluster_over_single"]["tasks_per_s"]))
    print("| enqueue-to-start p50 (p99), blocked over %d queues | %.3f (%.2f) ms | "
          "%.3f (%.2f) ms | %.2f |" % (
              args.queues, q["single"]["latency_p50_ms"], q["single"]["latency_p99_ms"],
              q["cluster"]["latency_p50_ms"], q["cluster"]["latency_p99_ms"],
              r["ratio_cluster_over_single"]["latency_p50"]))
    for mode in ("sentinel", "pg"):
        if mode in r:
            print("| %s: resume after the fault, median of %d (lost) | %s s (%d) |" % (
                mode, len(r[mode]["rounds"]), r[mode]["resume_s_median"],
                r[mode]["lost"]))
    print("\nwrote %s" % args.json)


if __name__ == "__main__":
    main()
