#!/usr/bin/env python3
"""Tenant limits that hold across several aeth-gateway processes
(docs/gateway.md "Quotas and rates"): two real gateways on one
PostgreSQL and one Redis, as behind a load balancer (no worker: a VM
create stays a pending vm:create task, which counts against the quota
exactly as a VM does).

- max_vms: 6 creates of one tenant with max_vms 2 fired at once, 3 at
  each gateway: exactly 2 are accepted, 4 are refused 403 naming
  max_vms, and only the 2 accepted have a task row and a task in Redis.
  Three rounds (three tenants): the quota lock is per tenant and in
  PostgreSQL, so a race between the gateways cannot let a third through.
- max_rps: a tenant with max_rps 5 sends requests alternately to both
  gateways; once its burst is spent, 2 s accept 10 (5/s in total, +-2),
  not 20 as two buckets of one process each would.
- Redis stopped: both gateways go on serving, each with its own bucket
  (429 still comes), say so once in the log, count it in
  aeth_gateway_rate_limit_fallbacks_total; when Redis is back the limit
  is shared again.
- tenant_max_streams 1: a wait open at one gateway makes a wait and a
  create that would wait at the other answer 429 naming the limit, with
  nothing enqueued; another tenant is not held up; once the first wait
  ended the other gateway takes one within the keeper's second; and when
  the gateway holding a stream is killed (SIGKILL: nothing cleaned up),
  its slot comes free when its lease ends (10 s), not before.
"""
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402

e2e = gs.e2e
check = e2e.check
call = gs.call

FALLBACK_LOG = "the shared limits are out of reach"
BACK_LOG = "Redis answers again"


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        for ln in r.read().decode().splitlines():
            if ln.startswith(name + " "):
                return float(ln.split()[1])
    return 0.0


def creates_at_once(gws, key, n):
    """n VM creates (not waited for) fired together, alternately at each
    gateway: their answers."""
    go = threading.Barrier(n)
    out = [None] * n

    def one(i):
        go.wait()
        out[i] = call(gws[i % 2], "POST", "/v1/vms", key,
                      {"name": "race-%d" % i, "wait": False}, timeout=60)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    return out


def vm_quota(gws, db, redis):
    for rnd in range(3):
        tenant = "race%d" % rnd
        key = gws[0].key(tenant)
        gws[0].admin("tenants", "set", tenant, "-max-vms", "2")
        ids_before = len(e2e.redis_cli(redis.sock, "--scan", "--pattern",
                                       "*:id:*").split())
        rs = creates_at_once(gws, key, 6)
        ok = [r for r in rs if r.status == 202]
        refused = [r for r in rs if r.status == 403]
        check(len(ok) == 2 and len(refused) == 4,
              "round %d: 6 creates at once over 2 gateways with max_vms 2: "
              "%d accepted, %d refused (%s)" % (rnd, len(ok), len(refused),
                                               [r.status for r in rs]))
        for r in refused:
            gs.check_error(r, 403, "quota_exceeded", "round %d: a refused "
                           "create" % rnd, "max_vms 2")
        rows = e2e.psql(db, "SELECT count(*) FROM tasks WHERE tenant_id = "
                        "'%s'" % tenant)
        check(rows == "2", "round %d: 2 task rows for the tenant (%s), none "
              "for the refused" % (rnd, rows))
        ids = len(e2e.redis_cli(redis.sock, "--scan", "--pattern",
                                "*:id:*").split())
        check(ids - ids_before == 2, "round %d: 2 tasks enqueued in Redis "
              "(%d)" % (rnd, ids - ids_before))
        mine = {r.json()["task_id"] for r in ok}
        rows = set(e2e.psql(db, "SELECT string_agg(id::text, ' ') FROM tasks "
                            "WHERE tenant_id = '%s' AND type = 'vm:create'"
                            % tenant).split())
        check(rows == mine, "round %d: they are the 2 accepted" % rnd)


def spend_burst(gws, key):
    for i in range(100):
        if call(gws[i % 2], "GET", "/v1/whoami", key).status == 429:
            return
    e2e.die("100 requests at max_rps 5 and never a 429")


def alternate(gws, key, seconds, pace=0.01):
    """Requests alternately at each gateway for `seconds`: the answers
    (gateway index, response)."""
    out, i = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append((i % 2, call(gws[i % 2], "GET", "/v1/whoami", key,
                                timeout=30)))
        i += 1
        time.sleep(pace)
    return out


def shared_rate(gws):
    key = gws[0].key("metered")
    gws[0].admin("tenants", "set", "metered", "-max-rps", "5")
    spend_burst(gws, key)
    t0 = time.monotonic()
    got = alternate(gws, key, 2.0)
    took = time.monotonic() - t0
    acc = [g for g, r in got if r.status == 200]
    other = [r.status for _, r in got if r.status not in (200, 429)]
    check(not other, "only 200 and 429 (%s)" % other[:5])
    # One token every 200 ms on Redis's clock: `took` s hold 5 * took of
    # them, give or take the one partly grown at the start and the one
    # due just after the end (1 each), and the round trip that separates
    # our clock from Redis's (a few ms). Two buckets, one per gateway,
    # would accept twice as many.
    want = 5 * took
    check(abs(len(acc) - want) <= 2,
          "max_rps 5 over 2 gateways: %d accepted in %.2f s (%.1f/s; want "
          "%.0f +-2, two per-process buckets would give %.0f) of %d requests"
          % (len(acc), took, len(acc) / took, want, 2 * want, len(got)))
    check(acc.count(0) > 0 and acc.count(1) > 0, "both gateways accepted "
          "some (%d, %d)" % (acc.count(0), acc.count(1)))
    refused = [r for _, r in got if r.status == 429][0]
    gs.check_error(refused, 429, "rate_limited", "over the shared rate",
                   "max_rps")
    check(int(refused.headers.get("Retry-After", "0")) >= 1,
          "Retry-After: %s" % refused.headers.get("Retry-After"))


def redis_outage(gws, redis):
    key = gws[0].key("outage")
    gws[0].admin("tenants", "set", "outage", "-max-rps", "5")
    check(call(gws[0], "GET", "/v1/whoami", key).status == 200,
          "served while Redis runs")
    before = metric(gws[0].metrics_port,
                    "aeth_gateway_rate_limit_fallbacks_total")
    redis.stop()
    got = alternate(gws, key, 1.5, pace=0.005)
    acc = [g for g, r in got if r.status == 200]
    codes = sorted({r.status for _, r in got})
    check(codes == [200, 429], "Redis stopped: still served, and the local "
          "buckets still refuse (answers %s)" % codes)
    check(acc.count(0) >= 5 and acc.count(1) >= 5,
          "each gateway served on its own bucket (%d, %d accepted of %d)"
          % (acc.count(0), acc.count(1), len(got)))
    # each bucket: a burst of 5 and 5/s for 1.5 s, +1 for timing
    check(len(acc) <= 2 * (5 + 5 * 1.5 + 1), "within 2 local buckets (%d)"
          % len(acc))
    for g in gws:
        check(g.proc.poll() is None, "%s runs on" % os.path.basename(g.log))
        n = g.text().count(FALLBACK_LOG)
        check(n == 1, "%s says once that the limit is its own now%s"
              % (os.path.basename(g.log), "" if n == 1 else
                 " (%d times):\n%s" % (n, g.text()[-1500:])))
    after = metric(gws[0].metrics_port,
                   "aeth_gateway_rate_limit_fallbacks_total")
    check(after - before >= acc.count(0), "fallbacks counted (%.0f)"
          % (after - before))
    redis.start()
    time.sleep(1.2)  # the gateways ask Redis again after 1 s
    spend_burst(gws, key)
    t0 = time.monotonic()
    got = alternate(gws, key, 1.0)
    took = time.monotonic() - t0
    acc = [g for g, r in got if r.status == 200]
    check(abs(len(acc) - 5 * took) <= 2, "Redis back: shared again, %d "
          "accepted in %.2f s over both" % (len(acc), took))
    for g in gws:
        check(BACK_LOG in g.text(), "%s says the limit is shared again"
              % os.path.basename(g.log))


Wait = gs.Wait


def pending_task(gw, key):
    """A VM create not waited for: no worker takes it, it stays pending."""
    r = call(gw, "POST", "/v1/vms?wait=false", key=key, body={})
    check(r.status == 202, "a task no worker takes: %d %s" % (r.status,
                                                             r.body[:200]))
    return r.json()["task_id"]


def hold_stream(gw, key, task, ms):
    """A wait of `ms` at `gw`, once the gateway counts it."""
    w = Wait(gw, key, task, ms)
    w.start()
    time.sleep(0.5)
    return w


def shared_streams(gws, db):
    key = gws[0].key("streamer")
    other = gws[0].key("bystander")
    gws[0].admin("tenants", "set", "streamer", "-max-vms", "100")
    task = pending_task(gws[0], key)
    first = hold_stream(gws[0], key, task, 3000)
    r = call(gws[1], "GET", "/v1/tasks/%s/wait?timeout_ms=200" % task, key)
    gs.check_error(r, 429, "rate_limited", "a 2nd wait at the other gateway",
                   "gateway.tenant_max_streams")
    n = e2e.psql(db, "SELECT count(*) FROM tasks WHERE tenant_id = "
                 "'streamer'")
    r = call(gws[1], "POST", "/v1/vms", key, {"name": "waits"})
    gs.check_error(r, 429, "rate_limited", "a create that would wait, at the "
                   "other gateway", "gateway.tenant_max_streams")
    check(e2e.psql(db, "SELECT count(*) FROM tasks WHERE tenant_id = "
                   "'streamer'") == n, "nothing enqueued (%s tasks)" % n)
    t2 = pending_task(gws[1], other)
    r = call(gws[1], "GET", "/v1/tasks/%s/wait?timeout_ms=200" % t2, other)
    check(r.status == 200, "another tenant waits meanwhile (%d)" % r.status)
    first.join(30)
    check(first.resp is not None and first.resp.status == 200,
          "the first wait ended at its timeout")
    time.sleep(1.5)  # the first gateway's keeper writes its count
    r = call(gws[1], "GET", "/v1/tasks/%s/wait?timeout_ms=200" % task, key)
    check(r.status == 200, "then the other gateway takes one (%d)" % r.status)

    # a gateway that dies holding a stream: its lease runs out
    time.sleep(1.5)  # gw-b's keeper writes that its wait ended
    held = hold_stream(gws[0], key, task, 60000)
    check(held.resp is None, "a wait held at gw-a (%s)" % (
        held.resp and held.resp.body[:200]))
    r = call(gws[1], "GET", "/v1/tasks/%s/wait?timeout_ms=200" % task, key)
    check(r.status == 429, "gw-b refuses another (%d)" % r.status)
    gws[0].proc.kill()
    gws[0].proc.wait()
    killed = time.monotonic()
    freed = None
    while time.monotonic() - killed < 20:
        r = call(gws[1], "GET", "/v1/tasks/%s/wait?timeout_ms=100" % task, key)
        if r.status == 200:
            freed = time.monotonic() - killed
            break
        time.sleep(0.5)
    held.join(5)
    check(freed is not None and 7 <= freed <= 12.5,
          "gw-a killed holding a stream: gw-b takes it %s s later (its lease "
          "was 10 s, renewed every second)" % (
              "%.1f" % freed if freed is not None else "never (20)"))


def main():
    url, redis, env = e2e.start_services()
    conf = ("  quota_rps: 0\n  tenant_max_streams: 1\nmetrics:\n"
            "  listen: 127.0.0.1:0\n")
    gws = [gs.Gateway(env, conf, name="gw-a"), gs.Gateway(env, conf,
                                                         name="gw-b")]
    check(gws[0].port != gws[1].port, "two gateways (ports %d, %d)"
          % (gws[0].port, gws[1].port))
    vm_quota(gws, url, redis)
    shared_rate(gws)
    redis_outage(gws, redis)
    shared_streams(gws, url)
    gws[1].stop()
    print("ok")


if __name__ == "__main__":
    main()  # e2e_support stops what was started at exit
