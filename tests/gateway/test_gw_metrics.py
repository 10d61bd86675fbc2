#!/usr/bin/env python3
"""aeth-gateway's metrics and the limits that protect it (docs/metrics.md,
docs/gateway.md "Limits"), against a real gateway, PostgreSQL and Redis
(no worker: tasks stay pending, so a wait stays open as long as asked):

- metrics.listen serves GET /metrics on a listener of its own, without a
  key; the API's port does not serve it. After known requests the
  counters moved by exactly those (by route template, never the path),
  the gauges show an open stream and its connection, promtool
  check metrics accepts the text, and a real Prometheus scrapes it.
- gateway.unauthenticated_rps: refused keys from one address are
  throttled (429 naming the limit), a valid key too until the bucket
  refills; then it works again; another address is not affected.
- gateway.tenant_max_streams: a tenant at its limit gets 429 naming it
  for a wait and for a VM create, and nothing is enqueued; another
  tenant is not affected; when the stream ends the tenant may wait again.
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402

e2e = gs.e2e
check = e2e.check
call = gs.call
scrape = gs.scrape
value = gs.value


def promtool(text):
    path = os.path.join(e2e.tmp, "gw.metrics")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run("promtool check metrics < %s" % path, shell=True,
                       capture_output=True, text=True)
    check(r.returncode == 0, "promtool check metrics: %s" %
          (r.stdout + r.stderr).strip().replace("\n", "; ")[:300] or "ok")


Wait = gs.Wait


def submit(gw, key):
    # a VM create not waited for: no worker takes it, it stays pending
    r = call(gw, "POST", "/v1/vms?wait=false", key=key, body={})
    check(r.status == 202, "a task no worker takes: %d %s" % (r.status, r.body))
    return r.json()["task_id"]


def tasks_of(gw, key):
    r = call(gw, "GET", "/v1/tasks", key=key)
    j = r.json()
    return len(j if isinstance(j, list) else j.get("tasks", []))


def counters(gw, mport, a):
    # known requests: 2 health, 3 whoami, 1 get of an unknown VM (404 by
    # route), 2 paths that fit no route (one outside /v1/: lib/http's own
    # 404), a body too large (413 before routing), 1 request without a
    # key, 1 with something else than a key
    for _ in range(2):
        check(call(gw, "GET", "/v1/health").status == 200, "health")
    for _ in range(3):
        check(call(gw, "GET", "/v1/whoami", key=a).status == 200, "whoami")
    r = call(gw, "GET", "/v1/vms/%s" % uuid.uuid4(), key=a)
    check(r.status == 404, "an unknown VM: %d" % r.status)
    check(call(gw, "GET", "/v1/nowhere", key=a).status == 404, "no route")
    check(call(gw, "GET", "/nowhere").status == 404, "not under /v1/")
    check(call(gw, "GET", "/dashboard/").status == 200, "the dashboard")
    r = call(gw, "POST", "/v1/vms", key=a, raw=b"{" + b" " * 4096 + b"}")
    check(r.status == 413, "a body over gateway.max_body_bytes: %d" % r.status)
    check(call(gw, "GET", "/v1/whoami").status == 401, "no key: 401")
    check(call(gw, "GET", "/v1/whoami", key="not-a-key").status == 401,
          "not an aeth_ key: 401")
    t = scrape(mport)
    check(value(t, "aeth_gateway_requests_total", method="GET",
                route="/v1/health", status="2xx") == 2, "2 health counted")
    check(value(t, "aeth_gateway_requests_total", method="GET",
                route="/v1/whoami", status="2xx") == 3, "3 whoami counted")
    check(value(t, "aeth_gateway_requests_total", method="GET",
                route="/v1/whoami", status="4xx") == 2, "the 401s counted")
    check(value(t, "aeth_gateway_requests_total", method="GET",
                route="/v1/vms/{id}", status="4xx") == 1,
          "the 404 counted under the template /v1/vms/{id}")
    check(value(t, "aeth_gateway_requests_total", method="GET",
                route="/dashboard/", status="2xx") == 1,
          "the dashboard's page counted under /dashboard/")
    check(value(t, "aeth_gateway_requests_total", method="GET",
                route="unmatched", status="4xx") == 2,
          "no route, in /v1/ and outside: 2 unmatched")
    check(value(t, "aeth_gateway_requests_total", method="POST",
                route="unmatched", status="4xx") == 1,
          "the 413 refused before routing: unmatched")
    check(value(t, "aeth_gateway_requests_total", method="POST",
                route="/v1/vms", status="4xx") == 0,
          "and not counted under the route it asked for")
    check(value(t, "aeth_gateway_request_duration_seconds_count",
                route="/v1/whoami") == 5, "5 whoami durations")
    check(value(t, "aeth_gateway_request_duration_seconds_bucket",
                route="/v1/whoami", le="+Inf") == 5, "+Inf bucket")
    check(value(t, "aeth_gateway_auth_failures_total", reason="missing") == 1,
          "one auth failure: missing")
    check(value(t, "aeth_gateway_auth_failures_total", reason="malformed") == 1,
          "one auth failure: malformed")
    check("aeth_tasks_total" not in t and "aeth_vms_running" not in t,
          "the gateway shows the gateway's metrics only")
    check(not re.search(r'route="/v1/vms/[0-9a-f]{8}-', t),
          "no VM id as a label")
    r = call(gw, "GET", "/metrics")
    check(r.status == 404, "the API's port does not serve /metrics (%d)"
          % r.status)
    promtool(t)


def unauthenticated(gw, mport, a):
    time.sleep(1.2)  # the bucket of 127.0.0.1 is full again
    bad = "aeth_" + "x" * 43
    codes = [call(gw, "GET", "/v1/whoami", key=bad).status for _ in range(3)]
    check(codes == [401, 401, 401], "3 wrong keys: 401 each (%s)" % codes)
    r = call(gw, "GET", "/v1/whoami", key=bad)
    gs.check_error(r, 429, "rate_limited", "a 4th wrong key at once",
                   "gateway.unauthenticated_rps")
    check(r.headers.get("Retry-After") == "1", "Retry-After: 1")
    r = call(gw, "GET", "/v1/whoami", key=a)
    gs.check_error(r, 429, "rate_limited", "a valid key from that address "
                   "while the bucket is empty", "gateway.unauthenticated_rps")
    check(call(gw, "GET", "/v1/health").status == 200,
          "/v1/health needs no key and is not throttled")
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10,
                                   source_address=("127.0.0.2", 0))
    c.request("GET", "/v1/whoami", headers={"Authorization": "Bearer " + bad})
    check(c.getresponse().status == 401,
          "another client address (127.0.0.2) has a bucket of its own: 401")
    c.close()
    time.sleep(0.5)  # 1.5 tokens back at 3/s
    r = call(gw, "GET", "/v1/whoami", key=a)
    check(r.status == 200, "the valid key works once a token is back (%d)"
          % r.status)
    t = scrape(mport)
    check(value(t, "aeth_gateway_auth_failures_total", reason="unknown") == 4,
          "4 unknown keys counted")
    check(value(t, "aeth_gateway_limit_refusals_total",
                limit="unauthenticated_rps") == 2, "2 refusals counted")


def streams(gw, mport, a, b):
    task = submit(gw, a)
    first = Wait(gw, a, task, 4000)
    first.start()
    end = time.time() + 10
    while time.time() < end:
        t = scrape(mport)
        if value(t, "aeth_gateway_streams") == 1:
            break
        time.sleep(0.05)
    check(value(t, "aeth_gateway_streams") == 1, "one stream open (gauge)")
    check(value(t, "aeth_gateway_connections") >= 1,
          "its connection open (gauge %s)" % value(t, "aeth_gateway_connections"))
    r = call(gw, "GET", "/v1/tasks/%s/wait?timeout_ms=1000" % task, key=a)
    gs.check_error(r, 429, "rate_limited", "a 2nd wait of tenant a",
                   "gateway.tenant_max_streams")
    n = tasks_of(gw, a)
    r = call(gw, "POST", "/v1/vms", key=a, body={"name": "over"})
    gs.check_error(r, 429, "rate_limited", "a VM create that would wait",
                   "gateway.tenant_max_streams")
    check(tasks_of(gw, a) == n, "nothing enqueued (%d tasks)" % n)
    tb = submit(gw, b)
    r = call(gw, "GET", "/v1/tasks/%s/wait?timeout_ms=300" % tb, key=b)
    check(r.status == 200 and b"timeout" in r.body,
          "tenant b may wait meanwhile: %d %s" % (r.status, r.body[:120]))
    first.join(30)
    check(first.resp is not None and first.resp.status == 200,
          "the first wait ended at its timeout")
    r = call(gw, "GET", "/v1/tasks/%s/wait?timeout_ms=200" % task, key=a)
    check(r.status == 200, "tenant a may wait again once it ended (%d)"
          % r.status)
    t = scrape(mport)
    check(value(t, "aeth_gateway_limit_refusals_total",
                limit="tenant_max_streams") == 2, "2 refusals counted")
    check(value(t, "aeth_gateway_streams") == 0, "no stream open (gauge)")
    check(value(t, "aeth_gateway_streamed_bytes_total", format="json") > 100,
          "bytes streamed counted (%s)" %
          value(t, "aeth_gateway_streamed_bytes_total", format="json"))
    check(value(t, "aeth_gateway_requests_total", method="GET",
                route="/v1/tasks/{id}/wait", status="2xx") == 3,
          "3 waits answered 200")
    promtool(t)


def prometheus(mport, want):
    """A real Prometheus (Debian's package) scrapes the gateway every
    second; its query API must show `want` whoami requests answered 2xx."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    pport = s.getsockname()[1]
    s.close()
    d = os.path.join(e2e.tmp, "prom")
    os.makedirs(d)
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                "  - job_name: gw\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % mport)
    p = subprocess.Popen(["prometheus", "--config.file=" + d + "/prometheus.yml",
                          "--storage.tsdb.path=" + d + "/data",
                          "--web.listen-address=127.0.0.1:%d" % pport,
                          "--log.level=warn"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    e2e.procs.append(p)
    q = urllib.parse.quote('aeth_gateway_requests_total{method="GET",'
                           'route="/v1/whoami",status="2xx"}')
    got, end = None, time.time() + 60
    while got is None and time.time() < end:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query?query=%s"
                                        % (pport, q), timeout=5) as r:
                res = json.loads(r.read())["data"]["result"]
                got = float(res[0]["value"][1]) if res else None
        except (OSError, ValueError, KeyError):
            pass
        if got is None:
            time.sleep(0.5)
    p.terminate()
    p.wait(timeout=30)
    check(got == want, "a real Prometheus scraped the gateway: whoami 2xx = %s"
          % got)


def main():
    url, redis, env = e2e.start_services()
    gw = gs.Gateway(env, "  tenant_max_streams: 1\n  max_body_bytes: 1024\n"
                    "  unauthenticated_rps: 3\n"
                    "metrics:\n  listen: 127.0.0.1:0\n")
    mport = gw.metrics_port
    check(mport != gw.port, "metrics on a port of their own (%d)" % mport)
    a, b = gw.key("acme"), gw.key("umbrella")
    counters(gw, mport, a)
    unauthenticated(gw, mport, a)
    streams(gw, mport, a, b)
    prometheus(mport, value(scrape(mport), "aeth_gateway_requests_total",
                            method="GET", route="/v1/whoami", status="2xx"))
    gw.stop()
    # off by default: no metrics listener, no line about one
    gw2 = gs.Gateway(env)
    check("metrics on" not in gw2.text(), "no metrics.listen: no endpoint")
    gw2.stop()
    print("ok")


if __name__ == "__main__":
    main()  # e2e_support stops what was started at exit
