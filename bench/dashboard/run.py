#!/usr/bin/env python3
"""bench/dashboard/run.py - how fast the web dashboard shows the system
(issue 15, docs/dashboard.md), in headless Chromium at 1366x768 against a
real gateway, worker and TCG guest:

1. first paint: of --loads navigations to /dashboard/ (the key already
   in sessionStorage), the browser's own numbers: response end, first
   contentful paint, DOMContentLoaded, and first data (the first poll's
   tables drawn), ms since navigation start, median and max;
2. update latency: --tasks vm:execute tasks (`sleep 2; echo`), one after
   the other; for each, from its completed_at (PostgreSQL) to its row on
   the page showing "completed" (dashboard.js stamps the row when it sees
   the change): min, p50, max. The page polls every 0.5 s while a task
   runs, so it is at most about that plus one round of requests;
3. GET /v1/stats/history?window_s=3600 (the charts' query), its time
   over HTTP with the tasks above in the table, p50 of --history calls.

Prints a table and JSON, writes --json (default bench/dashboard/
results.json). Starts its own Redis, database, worker, gateway and
browser (tests/dashboard/dash_support.py) and stops them.

    bench/dashboard/run.py [--build BUILD] [--loads N] [--tasks N] [--history N]
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--history", type=int, default=20)
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"))
    a = ap.parse_args()
    os.environ["AETH_BUILD_ROOT"] = os.path.abspath(a.build)
    sys.path.insert(0, os.path.join(ROOT, "tests", "dashboard"))
    import dash_support as ds
    gs, e2e = ds.gs, ds.e2e

    url, redis, env = e2e.start_services()
    e2e.Worker("bench-dash", env)
    gw = gs.Gateway(env, "  quota_rps: 0\n")
    op = gw.key("ops", operator=True)
    b = ds.Browser("bench")

    loads = [b.open(gw.base, op)]
    for _ in range(a.loads - 1):
        b.driver.get(gw.base + "/dashboard/")
        b.wait("first data", lambda: b.js(
            "return window.aethDashboard && window.aethDashboard.polls > 0"))
        loads.append(b.timing())

    r = gs.call(gw, "POST", "/v1/vms", op, {"name": "bench-dash"})
    if r.status != 200:
        e2e.die("POST /v1/vms: %d %s" % (r.status, r.body[:300]))
    vm = r.json()["vm"]["id"]
    lat, _ = ds.run_and_measure(b, gw, op, vm, a.tasks)

    hist = []
    for _ in range(a.history):
        t0 = time.perf_counter()
        r = gs.call(gw, "GET", "/v1/stats/history?window_s=3600", op)
        hist.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            e2e.die("GET /v1/stats/history: %d" % r.status)
    gs.call(gw, "DELETE", "/v1/vms/" + vm, op)
    b.quit()

    keys = ("response_end_ms", "first_contentful_paint_ms",
            "dom_content_loaded_ms", "first_data_ms")
    first = {}
    for k in keys:
        xs = [x[k] for x in loads if x[k] is not None]
        first[k] = {"p50": round(statistics.median(xs), 1) if xs else None,
                    "max": round(max(xs), 1) if xs else None, "n": len(xs)}
    out = {"loads": len(loads), "first_paint": first,
           "loads_ms": loads, "update_latency_ms": ds.summary(lat), "update_samples_ms": lat,
           "poll_interval_ms": {"busy": 500, "quiet": 1500},
           "history_route_ms": {"p50": round(statistics.median(hist), 2),
                                "max": round(max(hist), 2), "n": len(hist)},
           "viewport": "1366x768", "browser": "chromium headless"}
    print("%-44s %10s %10s" % ("", "p50", "max"))
    for k in keys:
        print("%-44s %10s %10s" % (k.replace("_ms", "") + " (ms)",
                                   first[k]["p50"], first[k]["max"]))
    s = out["update_latency_ms"]
    print("%-44s %10.1f %10.1f" % ("task completed -> row changed (ms)",
                                   s["p50"], s["max"]))
    print("%-44s %10.2f %10.2f" % ("GET /v1/stats/history?window_s=3600 (ms)",
                                   out["history_route_ms"]["p50"],
                                   out["history_route_ms"]["max"]))
    print(json.dumps(out))
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
