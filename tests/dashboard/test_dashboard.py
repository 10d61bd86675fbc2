#!/usr/bin/env python3
"""The web dashboard in a real browser (docs/dashboard.md): a real
gateway, worker, Redis, PostgreSQL and a TCG guest; headless Chromium
opens /dashboard/ with an operator key in the URL fragment, a VM is made
and commands run through the API, and the page shows them: the VM's row,
the task's row changing to completed, its output in the task's detail.
A tenant key sees its own tenant only; a revoked key and a gateway gone
are shown as errors on the page. The files are served with their
Content-Type, a strict CSP, nosniff and an ETag. Screenshots go to
BUILD/tests/dashboard/artefacts/; first paint and the update latency
(task finished -> row changed) are printed."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dash_support as ds  # noqa: E402

gs = ds.gs
e2e = ds.e2e
call = gs.call
check = e2e.check


def raw(gw, path, headers=None, method="GET"):
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a):
            return None
    req = urllib.request.Request(gw.base + path, headers=headers or {},
                                 method=method)
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def static_files(gw):
    """The files need no key, carry their type, the CSP and an ETag."""
    st, h, body = raw(gw, "/")
    check(st == 302 and h.get("Location") == "/dashboard/", "GET / redirects "
          "to /dashboard/ (%d %s)" % (st, h.get("Location")))
    for path, ctype in (("/dashboard/", "text/html"),
                        ("/dashboard/dashboard.js", "text/javascript"),
                        ("/dashboard/dashboard.css", "text/css")):
        st, h, body = raw(gw, path)
        csp = h.get("Content-Security-Policy", "")
        check(st == 200 and h.get("Content-Type", "").startswith(ctype) and
              len(body) > 500, "%s: 200 %s, %d bytes, no key" % (path, ctype,
                                                                  len(body)))
        check("default-src 'self'" in csp and "script-src 'self'" in csp and
              "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp,
              "%s: a strict Content-Security-Policy: %s" % (path, csp))
        check(h.get("X-Content-Type-Options") == "nosniff" and
              h.get("Cache-Control") == "no-cache" and h.get("ETag"),
              "%s: nosniff, no-cache and an ETag" % path)
        st2, _, body2 = raw(gw, path, {"If-None-Match": h["ETag"]})
        check(st2 == 304 and not body2, "%s: 304 for its ETag" % path)
    st, h, body = raw(gw, "/dashboard/dashboard.css", method="HEAD")
    check(st == 200 and h.get("Content-Type", "").startswith("text/css") and
          not body, "HEAD: the headers without the body")
    st, _, body = raw(gw, "/dashboard/")
    check(b"<script" in body and b"</script>" in body and
          b"<script src=\"dashboard.js\"" in body and b"onclick" not in body,
          "the page has no inline script")
    st, h, body = raw(gw, "/dashboard/../../etc/passwd")
    check(st == 404, "a path outside the files: %d" % st)
    st, h, body = raw(gw, "/dashboard/nothing.js")
    check(st == 404 and json.loads(body)["error"]["code"] == "not_found",
          "an unknown file: 404 not_found")


def main():
    url, redis, env = e2e.start_services()
    e2e.Worker("dash-w1", env)
    gw = gs.Gateway(env, "  quota_rps: 0\n")
    op = gw.key("ops", operator=True)
    acme = gw.key("acme")
    other = gw.key("other")
    static_files(gw)

    # the history route, for a tenant and for the operator
    r = call(gw, "GET", "/v1/stats/history?window_s=600", acme)
    j = r.json()
    check(r.status == 200 and len(j["buckets"]) == 10 and j["bucket_s"] == 60,
          "GET /v1/stats/history?window_s=600: 10 minutes")
    r = call(gw, "GET", "/v1/stats/history?window_s=5", acme)
    check(r.status == 400, "a window under a minute: 400")

    b = ds.Browser("op")
    timing = b.open(gw.base, op)
    check(b.js("return location.hash") == "" and
          b.js("return sessionStorage.getItem('aeth_dashboard_key')") == op,
          "the key left the address bar for sessionStorage")
    who = b.driver.find_element("id", "who").text
    check("operator" in who and "ops" in who, "the header names the key: %r"
          % who)
    b.wait("the worker on the page", lambda: "dash-w1" in b.ids("workers-body"))
    # keyboard: Tab walks the page in order with the focus drawn
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    b.js("document.activeElement.blur()")
    walked = []
    for _ in range(9):
        ActionChains(b.driver).send_keys(Keys.TAB).perform()
        walked.append(b.js("""const e = document.activeElement,
            s = getComputedStyle(e);
            return [e.id || e.textContent.trim(), s.outlineStyle,
                    s.outlineWidth];"""))
    order = [w[0] for w in walked]
    check(order[:9] == ["Skip to tasks", "Overview", "VMs", "Tasks", "f-tenant",
                        "refresh", "pause", "logout", "help-btn"],
          "Tab order: skip link, sections, buttons, then the page: %s" % order)
    check(all(w[1] == "solid" and w[2] == "3px" for w in walked),
          "every focused control has a visible outline: %s" % walked[:3])
    b.shot("01-empty")

    # a VM of tenant acme, made through the API: its row appears
    t0 = time.time()
    r = call(gw, "POST", "/v1/vms", acme, {"name": "dash-vm"})
    check(r.status == 200, "POST /v1/vms: %d %s" % (r.status, r.body[:200]))
    vid = r.json()["vm"]["id"]
    row = b.wait("the VM row", lambda: (lambda x: x if x and x[0] == "running"
                                        else None)(b.row("vms-body", vid)))
    check("dash-vm" in row[2] and "acme" in row[2] and "dash-w1" in row[2],
          "the VM row shows its name, tenant and worker: %r" % row[2])
    print("VM %s on the page %.1f s after POST /v1/vms" % (vid, time.time() - t0))

    # commands: each row changes to completed; the latency of that
    lat, tids = ds.run_and_measure(b, gw, acme, vid, 3)
    check(all(0 <= x < 5000 for x in lat), "every row changed within 5 s of "
          "its task finishing: %s ms" % lat)
    row = b.row("tasks-body", tids[-1])
    check("vm:execute" in row[2] and "completed" in row[2] and "acme" in row[2],
          "the task row: %r" % row[2])

    # its detail, opened with the keyboard, shows the output
    b.js("document.activeElement.blur()")
    tr = b.driver.find_element("css selector",
                               '#tasks-body tr[data-id="%s"]' % tids[-1])
    b.js("arguments[0].focus()", tr)
    tr.send_keys(Keys.ENTER)
    out = b.wait("the task's output in its detail",
                 lambda: (lambda t: t if "done-t2" in t else None)(
                     b.driver.find_element("id", "detail-stdout").text))
    check(out.strip() == "done-t2", "the detail shows stdout: %r" % out)
    note = b.driver.find_element("id", "detail-out-note").text
    check(note == "exit code 0", "and the exit code: %r" % note)
    # a running command's output streams into its detail as it is printed
    r = call(gw, "POST", "/v1/tasks", acme, {"type": "vm:execute", "payload": {
        "vm_id": vid, "command": "sh", "live_output": True,
        "args": ["-c", "for i in 1 2 3 4; do echo live$i; sleep 1; done"]}})
    check(r.status == 202, "a live vm:execute submitted")
    ltid = r.json()["task_id"]
    b.wait("the live task's row", lambda: ltid in b.ids("tasks-body"))
    b.driver.find_element("css selector",
                          '#tasks-body tr[data-id="%s"]' % ltid).click()
    b.wait("live output in the detail while the command runs", lambda: (
        "live1" in b.driver.find_element("id", "detail-stdout").text and
        "live4" not in b.driver.find_element("id", "detail-stdout").text and
        b.row("tasks-body", ltid)[0] in ("pending", "running")), timeout=60)
    check(True, "the first line is on the page before the command ends")
    b.js("document.getElementById('detail').scrollIntoView()")
    b.shot("03a-live-output")
    b.wait("all of the live output", lambda: b.driver.find_element(
        "id", "detail-stdout").text.split() == ["live1", "live2", "live3",
                                                "live4"], timeout=60)
    b.wait("its exit code", lambda: b.driver.find_element(
        "id", "detail-out-note").text == "exit code 0", timeout=30)
    b.js("document.getElementById('detail-close').click()")

    # `/` focuses the filter; typing filters the rows
    b.driver.find_element("tag name", "body").send_keys("/")
    check(b.js("return document.activeElement.id") == "f-text",
          "/ focuses the task filter")
    b.driver.switch_to.active_element.send_keys(tids[0][:8])
    b.wait("the filter keeps one row", lambda: b.ids("tasks-body") == [tids[0]])
    b.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    b.js("document.getElementById('f-text').value = '';"
         "document.getElementById('f-text').dispatchEvent(new Event('input'))")
    b.wait("the charts drawn: tasks/s and the boot", lambda: b.js(
        "return document.querySelectorAll('#chart-rate rect.ok').length > 0 "
        "&& document.querySelectorAll('#chart-boot circle.mean').length > 0"),
        timeout=30)
    b.shot("02-operator")
    b.js("document.getElementById('tasks').scrollIntoView()")
    b.shot("03-task-detail")

    # another tenant's VM and task: the operator sees them, acme does not
    # its name is HTML: the page must show it as text, never run it
    evil = '<img src=x onerror="window.pwned=1">other'
    r = call(gw, "POST", "/v1/vms", other, {"name": evil})
    check(r.status == 200, "tenant other makes a VM: %d" % r.status)
    ovid = r.json()["vm"]["id"]
    r = call(gw, "POST", "/v1/vms/%s/exec" % ovid, other, {"command": "true"})
    check(r.status == 200, "tenant other runs a command: %d" % r.status)
    otid = r.json()["task_id"]
    b.wait("the operator sees tenant other's VM and task",
           lambda: otid in b.ids("tasks-body") and ovid in b.ids("vms-body"))
    check(b.row("vms-body", ovid)[2].startswith(evil) and
          b.js("return window.pwned === undefined && "
               "!document.querySelector('#vms-body img')"),
          "a VM named with HTML is shown as text, nothing runs")
    # the operator narrows the page to one tenant
    f = b.driver.find_element("id", "f-tenant")
    f.send_keys("other" + Keys.ENTER)
    b.wait("only tenant other's rows", lambda: b.ids("vms-body") == [ovid] and
           b.ids("tasks-body") and otid in b.ids("tasks-body") and
           not set(tids) & set(b.ids("tasks-body")))
    f.clear()
    f.send_keys(Keys.ENTER)
    b.wait("every tenant again", lambda: vid in b.ids("vms-body"))
    check(True, "an operator picks a tenant and back")
    # a VM's row shows that VM's tasks
    b.driver.find_element("css selector",
                          '#vms-body tr[data-id="%s"]' % ovid).click()
    b.wait("the tasks of tenant other's VM", lambda: set(b.ids("tasks-body"))
           == {otid, b.js("return window.aethDashboard.tasks.find(t => "
                          "t.type === 'vm:create' && t.vm_id === arguments[0]"
                          ").id", ovid)})
    b.js("document.getElementById('f-text').value = '';"
         "document.getElementById('f-text').dispatchEvent(new Event('input'))")

    # the history: what ended, by tenant (acme: 1 create + 4 commands)
    h = call(gw, "GET", "/v1/stats/history?window_s=3600", acme).json()
    ok = sum(x["ok"] for x in h["buckets"])
    boots = [x for x in h["buckets"] if x["boots"]]
    check(len(h["buckets"]) == 60 and ok == 5 and
          sum(x["failed"] for x in h["buckets"]) == 0,
          "acme's history: 60 minutes, 5 tasks ok, none failed (%d)" % ok)
    check(sum(x["boots"] for x in boots) == 1 and
          boots[0]["boot_mean_ms"] > 0 and boots[0]["run_p95_ms"] >= 0,
          "one boot of %s ms" % (boots and boots[0]["boot_mean_ms"]))
    h = call(gw, "GET", "/v1/stats/history?window_s=3600", op).json()
    check(sum(x["ok"] for x in h["buckets"]) == 7 and
          any(q["ok"] >= 1 for q in h["queues"]),
          "the operator's history counts both tenants (7) and has queues")

    a = ds.Browser("acme")
    a.open(gw.base, acme)
    a.wait("acme sees its VM", lambda: vid in a.ids("vms-body"))
    a.wait("acme sees its tasks", lambda: set(tids) <= set(a.ids("tasks-body")))
    time.sleep(1.5)  # another poll: nothing of tenant other comes
    check(otid not in a.ids("tasks-body") and ovid not in a.ids("vms-body"),
          "acme does not see tenant other's VM or task")
    tenants = a.js("""return Array.from(document.querySelectorAll(
        '#tasks-body tr[data-id], #vms-body tr[data-id]')).map(
        r => r.cells[3].innerText);""")
    check(tenants and set(tenants) == {"acme"}, "every row acme sees is "
          "acme's: %s" % sorted(set(tenants)))
    check("operator keys only" in a.driver.find_element(
        "id", "workers-note").text, "workers: operator keys only")
    check(not a.driver.find_element("id", "tenant-pick").is_displayed(),
          "no tenant field for a tenant key")
    # a running task of acme counts on its page
    r = call(gw, "POST", "/v1/tasks", acme, {"type": "vm:execute", "payload": {
        "vm_id": vid, "command": "sleep", "args": ["3"]}})
    check(r.status == 202, "acme runs sleep 3")
    a.wait("acme's card: 1 task running", lambda: a.js(
        "return Array.from(document.querySelectorAll('#cards .card')).some("
        "c => c.innerText.includes('tasks running') && "
        "c.querySelector('.v').textContent === '1')"), timeout=30)
    sleeper = r.json()["task_id"]
    call(gw, "GET", "/v1/tasks/%s/wait" % sleeper, acme)
    a.shot("04-tenant-acme")
    errs = a.script_errors()
    check(not errs, "no script error or CSP refusal on acme's page: %s" % errs)
    a.quit()

    o = ds.Browser("other")
    o.open(gw.base, other)
    o.wait("other sees its VM and task", lambda: otid in o.ids("tasks-body")
           and ovid in o.ids("vms-body"))
    check(vid not in o.ids("vms-body") and not set(tids) & set(o.ids("tasks-body")),
          "tenant other sees neither acme's VM nor its tasks")
    # over its rate limit (1 request/s; limits are re-read within 5 s):
    # the page says so and slows down
    prefix = call(gw, "GET", "/v1/whoami", other).json()["key_prefix"]
    gw.admin("tenants", "set", "other", "-max-rps", "1")
    err = o.wait("the rate limit on the page", lambda: (lambda e: e.text if
                 e.is_displayed() and "Rate limited" in e.text else None)(
                     o.driver.find_element("id", "error")), timeout=30)
    check("every 5 s" in err, "429: %r" % err)
    o.shot("05a-rate-limited")
    # its key revoked: the page says so and asks for another
    gw.admin("keys", "revoke", prefix)
    err = o.wait("the revoked key on the page", lambda: (lambda e: e.text if
                 e.is_displayed() and "refused the key" in e.text else None)(
                     o.driver.find_element("id", "error")), timeout=30)
    check(o.driver.find_element("id", "login").is_displayed(),
          "a revoked key: the error and the sign-in form (%r)" % err)
    o.shot("05-key-revoked")
    o.quit()

    # update latency again, measured on the operator's page
    lat2, _ = ds.run_and_measure(b, gw, op, vid, 3, tenant="acme")
    lat += lat2
    errs = b.script_errors()
    check(not errs, "no script error or CSP refusal on the operator's page "
          "(%d polls): %s" % (b.js("return window.aethDashboard.polls"), errs))
    # the gateway gone: the operator's page says so, and keeps the data
    gw.stop()
    err = b.wait("the gateway down on the page", lambda: (lambda e: e.text if
                 e.is_displayed() and "does not answer" in e.text else None)(
                     b.driver.find_element("id", "error")), timeout=30)
    check(vid in b.ids("vms-body"), "the last data stays: %r" % err)
    b.shot("06-gateway-down")

    s = ds.summary(lat)
    print("dashboard timing (ms since navigation start): " + json.dumps(timing))
    print("update latency, task completed_at -> row changed (ms): "
          + json.dumps(s))
    check(timing["first_contentful_paint_ms"] is not None,
          "first contentful paint %.0f ms" % timing["first_contentful_paint_ms"])
    with open(os.path.join(ds.artefacts_dir(), "measurements.json"), "w") as f:
        json.dump({"timing_ms": timing, "update_latency_ms": s,
                   "samples_ms": lat}, f, indent=1)
    print("dashboard: all checks passed")


if __name__ == "__main__":
    main()
