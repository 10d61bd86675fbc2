#!/usr/bin/env python3
"""bench/gateway/run.py - what the HTTP gateway adds, as ratios measured
in one run on one machine (docs/gateway.md):

1. exec round trip: `true` in a running TCG guest, through the gateway
   (POST /v1/vms/ID/exec on a kept-alive connection, waiting for the
   result) vs through the queue directly (the Python binding's
   Client.execute: submit + wait, the path aeth-submit takes), p50/p99
   of alternating rounds, and the overhead in ms;
2. requests/s of a cheap authenticated route (GET /v1/whoami: key hash,
   one PostgreSQL lookup, JSON) vs the static GET /v1/health of the same
   server, both driven by the same client (C threads in libcurl would be
   faster; here: N Python threads, each with a kept-alive connection),
   alternating rounds;
3. what the gateway's metrics cost: requests/s of GET /v1/whoami while
   GET /metrics is scraped every second (metrics.listen) vs not scraped,
   alternating rounds (requests are counted either way);
4. what the max_rps limit shared by the gateways costs: requests/s of
   GET /v1/whoami for a tenant with a limit it never reaches (max_rps
   1000000: one EVALSHA of lib/queue/rate.lua in Redis per request) vs a
   tenant without one (max_rps 0: no Redis call), alternating rounds.

Prints a table and writes JSON (--json FILE, default
bench/gateway/results.json). Starts its own Redis, database, worker and
gateway (tests/cli/e2e_support.py) and stops them.

    bench/gateway/run.py [--build BUILD] [--execs N] [--seconds S] [--threads T]
                         [--only-rate]

--only-rate: part 4 alone (no worker, no guest), printed, JSON not written.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--execs", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--only-rate", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ["AETH_BUILD_ROOT"] = build
    os.environ.setdefault("AETH_LIBRARY", os.path.join(build, "lib",
                                                       "libaetherium.so.0"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "gateway"))
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import gw_support as gs
    e2e = gs.e2e
    import aetherium

    url, redis, env = e2e.start_services()
    if not a.only_rate:
        e2e.Worker("bench-gw", env)
    gw = gs.Gateway(env, "  quota_rps: 0\n  threads: 2\n"
                    "metrics:\n  listen: 127.0.0.1:0\n")
    # an operator key making a VM of tenant "default": the Python client
    # (no tenant) may then use it too (the worker refuses another
    # tenant's VM to a task of "default")
    key = gw.key("bench", operator=True)
    hdr = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=120)
    free, metered = gw.key("free"), gw.key("metered")
    gw.admin("tenants", "set", "free", "-max-rps", "0")
    gw.admin("tenants", "set", "metered", "-max-rps", "1000000")

    def req(c, method, path, body=None):
        c.request(method, path, body=json.dumps(body) if body is not None
                  else None, headers=hdr)
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit("%s %s: %d %s" % (method, path, r.status, data[:300]))
        return json.loads(data)

    # requests/s of GET `path` by `threads` kept-alive connections
    def rate(path, seconds, threads, who=key):
        counts = [0] * threads
        stop = time.monotonic() + seconds

        def run(i):
            c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
            h = {"Authorization": "Bearer " + who}
            while time.monotonic() < stop:
                c.request("GET", path, headers=h)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    raise SystemExit("GET %s: %d" % (path, r.status))
                counts[i] += 1
            c.close()
        ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(counts) / (time.monotonic() - t0)

    # -- 4. the shared rate limit's cost ------------------------------------
    def shared_limit():
        unlimited, limited = [], []
        for _ in range(a.rounds):
            unlimited.append(rate("/v1/whoami", a.seconds, a.threads, free))
            limited.append(rate("/v1/whoami", a.seconds, a.threads, metered))
        return {"whoami_rps_no_limit": round(statistics.median(unlimited)),
                "whoami_rps_shared_limit": round(statistics.median(limited)),
                "shared_limit_over_no_limit": round(
                    statistics.median(limited) /
                    statistics.median(unlimited), 3)}

    def show_limit(o):
        print("%-34s %10d" % ("whoami req/s, no max_rps",
                              o["whoami_rps_no_limit"]))
        print("%-34s %10d" % ("whoami req/s, shared max_rps",
                              o["whoami_rps_shared_limit"]))
        print("%-34s %10.3f" % ("ratio shared limit / none",
                                o["shared_limit_over_no_limit"]))

    if a.only_rate:
        o = shared_limit()
        gw.stop()
        show_limit(o)
        print(json.dumps(dict(o, threads=a.threads, rounds=a.rounds,
                              load=os.getloadavg()[0])))
        return

    vm = req(conn, "POST", "/v1/vms", {"name": "bench",
                                       "tenant": "default"})["vm"]["id"]
    client = aetherium.Client(database_url=url, redis_url=redis.url())

    # -- 1. exec round trip, alternating -----------------------------------
    http_ms, queue_ms = [], []
    for i in range(a.execs + 4):
        t0 = time.perf_counter()
        r = req(conn, "POST", "/v1/vms/%s/exec" % vm, {"command": "true"})
        t1 = time.perf_counter()
        res = client.execute(vm, "true", timeout=60)
        t2 = time.perf_counter()
        if r.get("exit_code") != 0 or res.exit_code != 0:
            raise SystemExit("exec failed: %s / %s" % (r, res))
        if i >= 4:  # warm-up
            http_ms.append((t1 - t0) * 1000)
            queue_ms.append((t2 - t1) * 1000)

    # -- 2. requests/s: cheap route vs static ------------------------------
    static, cheap = [], []
    for _ in range(a.rounds):
        static.append(rate("/v1/health", a.seconds, a.threads))
        cheap.append(rate("/v1/whoami", a.seconds, a.threads))

    # -- 3. the metrics' cost: a scrape every second vs none ----------------
    def scraped(seconds, threads):
        stop = threading.Event()

        def scrape():
            c = http.client.HTTPConnection("127.0.0.1", gw.metrics_port,
                                           timeout=10)
            while not stop.wait(1.0):
                c.request("GET", "/metrics")
                r = c.getresponse()
                if r.status != 200 or b"aeth_gateway_requests_total" not in r.read():
                    raise SystemExit("GET /metrics: %d" % r.status)
            c.close()
        t = threading.Thread(target=scrape)
        t.start()
        try:
            return rate("/v1/whoami", seconds, threads)
        finally:
            stop.set()
            t.join()

    plain, with_scrape = [], []
    for _ in range(a.rounds):
        plain.append(rate("/v1/whoami", a.seconds, a.threads))
        with_scrape.append(scraped(a.seconds, a.threads))

    limit = shared_limit()

    # a new connection: the first one sat idle past gateway.timeout_s
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=120)
    req(conn, "DELETE", "/v1/vms/%s" % vm)
    gw.stop()

    out = {
        "execs": len(http_ms),
        "exec_http_ms": {"p50": round(pct(http_ms, 50), 2),
                         "p99": round(pct(http_ms, 99), 2)},
        "exec_queue_ms": {"p50": round(pct(queue_ms, 50), 2),
                          "p99": round(pct(queue_ms, 99), 2)},
        "exec_overhead_ms_p50": round(pct(http_ms, 50) - pct(queue_ms, 50), 2),
        "exec_ratio_p50": round(pct(http_ms, 50) / pct(queue_ms, 50), 3),
        "exec_ratio_p99": round(pct(http_ms, 99) / pct(queue_ms, 99), 3),
        "static_rps": round(statistics.median(static)),
        "whoami_rps": round(statistics.median(cheap)),
        "cheap_over_static": round(statistics.median(cheap) /
                                   statistics.median(static), 3),
        "whoami_rps_unscraped": round(statistics.median(plain)),
        "whoami_rps_scraped": round(statistics.median(with_scrape)),
        "scraped_over_unscraped": round(statistics.median(with_scrape) /
                                        statistics.median(plain), 3),
        **limit,
        "threads": a.threads,
        "rounds": a.rounds,
        "load": os.getloadavg()[0],
    }
    print("%-34s %10s %10s" % ("", "p50", "p99"))
    print("%-34s %10.2f %10.2f" % ("exec true via HTTP (ms)",
                                   out["exec_http_ms"]["p50"],
                                   out["exec_http_ms"]["p99"]))
    print("%-34s %10.2f %10.2f" % ("exec true via the queue (ms)",
                                   out["exec_queue_ms"]["p50"],
                                   out["exec_queue_ms"]["p99"]))
    print("%-34s %10.3f %10.3f" % ("ratio HTTP / queue", out["exec_ratio_p50"],
                                   out["exec_ratio_p99"]))
    print("%-34s %10d" % ("GET /v1/health (static) req/s", out["static_rps"]))
    print("%-34s %10d" % ("GET /v1/whoami (key + PG) req/s", out["whoami_rps"]))
    print("%-34s %10.3f" % ("ratio whoami / static", out["cheap_over_static"]))
    print("%-34s %10d" % ("whoami req/s, /metrics every 1 s",
                          out["whoami_rps_scraped"]))
    print("%-34s %10d" % ("whoami req/s, not scraped",
                          out["whoami_rps_unscraped"]))
    print("%-34s %10.3f" % ("ratio scraped / not",
                            out["scraped_over_unscraped"]))
    show_limit(out)
    print(json.dumps(out))
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
