#!/usr/bin/python3
"""bench/queue/aof.py - what Redis's persistence costs the queue: bench_queue
against three private redis-servers side by side, without persistence, with
an append-only file and appendfsync everysec (what scripts/services.sh runs
and docs/queue.md recommends), and with appendfsync always; the runs
alternate between the servers so that the machine's load hits all three
alike. Prints every run, then the medians per server.

    bench/queue/aof.py [BUILD_DIR] [N] [RUNS]

The servers' files live in a temp dir under $TMPDIR (default /tmp): its
disk is what `always` waits for. Everything is stopped and removed at the
end, also on failure."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVERS = [("none", ["--appendonly", "no"]),
           ("everysec", ["--appendonly", "yes", "--appendfsync", "everysec"]),
           ("always", ["--appendonly", "yes", "--appendfsync", "always"])]
FIELDS = ["enqueue_per_s", "dequeue_ack_per_s", "noop_tasks_per_s",
          "batch_enqueue_per_s", "batch_dequeue_ack_per_s", "batch_noop_tasks_per_s"]


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    n = sys.argv[2] if len(sys.argv) > 2 else "20000"
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    bench = os.path.join(build, "bench", "queue", "bench_queue")
    if not os.access(bench, os.X_OK):
        sys.exit("aof.py: %s not built" % bench)
    top = tempfile.mkdtemp(prefix="aeth-aofbench-")
    procs = []
    try:
        socks = {}
        for name, args in SERVERS:
            d = os.path.join(top, name)
            os.makedirs(d)
            socks[name] = os.path.join(d, "redis.sock")
            procs.append(subprocess.Popen(
                ["redis-server", "--port", "0", "--unixsocket", socks[name],
                 "--save", "", "--dir", d, "--logfile", os.path.join(d, "log")] + args))
        for name, sock in socks.items():
            for _ in range(500):
                if subprocess.run(["redis-cli", "-s", sock, "ping"],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.01)
        got = {name: [] for name, _ in SERVERS}
        for r in range(runs):
            for name, _ in SERVERS:
                out = subprocess.run([bench, "unix://" + socks[name], n, "200"],
                                     capture_output=True, text=True, check=True)
                j = json.loads(out.stdout)
                got[name].append(j)
                subprocess.run(["redis-cli", "-s", socks[name], "flushall"],
                               capture_output=True)
                print("run %d %-8s %s" % (r + 1, name, " ".join(
                    "%s=%s" % (f, j[f]) for f in FIELDS)), flush=True)
        print("medians of %d runs, N=%s (tasks/s):" % (runs, n))
        print("%-10s %s" % ("server", " ".join("%24s" % f for f in FIELDS)))
        for name, _ in SERVERS:
            print("%-10s %s" % (name, " ".join(
                "%24.0f" % statistics.median(j[f] for j in got[name]) for f in FIELDS)))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
