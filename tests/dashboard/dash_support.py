"""Helpers of the dashboard test and bench: headless Chromium (Debian's
chromium and chromium-driver, driven with python3-selenium) on the page
aeth-gateway serves at /dashboard/, and the two measurements of issue 15:
first paint (the browser's navigation and paint timing) and the update
latency from a task finishing (its completed_at in PostgreSQL) to its row
changing on the page (the row's data-changed-at, set by dashboard.js when
it sees the new status). The browser is quit at exit (e2e_support's
cleanups), also on failure."""
import os
import random
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gateway"))
import gw_support as gs  # noqa: E402

e2e = gs.e2e
CHROMIUM = os.environ.get("AETH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AETH_CHROMEDRIVER", "/usr/bin/chromedriver")


def artefacts_dir():
    d = os.path.join(e2e.BUILD, "tests", "dashboard", "artefacts")
    os.makedirs(d, exist_ok=True)
    return d


def ms_of(iso):
    """'2026-12-04T08:00:00.123Z' -> ms since the epoch."""
    import datetime
    t = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


class Browser:
    """One headless Chromium at 1366x768 (a laptop screen)."""

    def __init__(self, name="b"):
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            e2e.die("python3-selenium is not installed: scripts/setup.sh "
                    "installs it (with chromium and chromium-driver)")
        for exe in (CHROMIUM, CHROMEDRIVER):
            if not os.access(exe, os.X_OK):
                e2e.die("%s not found: scripts/setup.sh installs chromium and "
                        "chromium-driver" % exe)
        self.profile = os.path.join(e2e.tmp, "chromium-" + name)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--window-size=1366,768",
                  "--no-first-run", "--disable-extensions",
                  "--disable-background-networking",
                  "--user-data-dir=" + self.profile):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.service = Service(CHROMEDRIVER,
                               log_path=os.path.join(e2e.tmp, name + "-driver.log"))
        self.driver = webdriver.Chrome(service=self.service, options=opts)
        self.driver.set_page_load_timeout(30)
        e2e.cleanups.append(self.quit)

    def quit(self):
        if self.driver:
            try:
                self.driver.quit()
            except Exception:
                pass
            self.driver = None
        p = getattr(self.service, "process", None)
        if p and p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, what, fn, timeout=60, every=0.05):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = fn()
            except Exception as e:  # a row replaced under us: try again
                last = e
            if last and not isinstance(last, Exception):
                return last
            time.sleep(every)
        self.shot("timeout")
        e2e.die("%s: not within %d s (last: %r)\nconsole: %s" % (
            what, timeout, last, self.console()))

    def console(self):
        try:
            return [m["message"] for m in self.driver.get_log("browser")][-20:]
        except Exception:
            return []

    def script_errors(self):
        """Console lines of script errors and CSP refusals so far (the
        log is read once: each call gives what came since the last)."""
        try:
            logs = self.driver.get_log("browser")
        except Exception as e:
            return ["cannot read the console: %s" % e]
        return [m["message"] for m in logs if any(w in m["message"] for w in (
            "Uncaught", "Content Security Policy", "Refused to"))]

    def shot(self, name):
        path = os.path.join(artefacts_dir(), name + ".png")
        self.driver.save_screenshot(path)
        print("artefact: " + path)
        return path

    def open(self, base, key):
        """The dashboard with `key` in the fragment; waits for its first
        data. Returns the page's timing in ms since navigation start."""
        self.driver.get(base + "/dashboard/#key=" + key)
        self.wait("first data on the page",
                  lambda: self.js("return window.aethDashboard && "
                                  "window.aethDashboard.polls > 0"))
        return self.timing()

    def timing(self):
        # the paint entries are queued once the frame is presented: a
        # moment after the script may already have drawn its first data
        end = time.time() + 3
        while time.time() < end and not self.js(
                "return performance.getEntriesByName("
                "'first-contentful-paint').length"):
            time.sleep(0.05)
        return self.js("""
            const n = performance.getEntriesByType('navigation')[0];
            const p = {};
            for (const e of performance.getEntriesByType('paint'))
                p[e.name] = e.startTime;
            return {response_end_ms: n.responseEnd,
                    dom_content_loaded_ms: n.domContentLoadedEventEnd,
                    load_ms: n.loadEventEnd,
                    first_paint_ms: p['first-paint'],
                    first_contentful_paint_ms: p['first-contentful-paint'],
                    first_data_ms: window.aethDashboard.firstData};""")

    def row(self, table, rid):
        """(status, data-changed-at, text) of the row `rid` of tbody
        `table`, or None."""
        return self.js("""
            const tr = document.querySelector('#' + arguments[0] +
                ' tr[data-id="' + arguments[1] + '"]');
            return tr ? [tr.dataset.status || '', tr.dataset.changedAt || '',
                         tr.innerText] : null;""", table, rid)

    def ids(self, table):
        return self.js("""return Array.from(document.querySelectorAll(
            '#' + arguments[0] + ' tr[data-id]')).map(r => r.dataset.id);""",
                       table)


def run_and_measure(b, gw, key, vm_id, n, cmd="sleep 2; echo done-$0",
                    tenant=None):
    """Run `n` vm:execute tasks one after the other in `vm_id` (submitted
    over the API without waiting; an operator key names the VM's `tenant`)
    and, for each, the time from its
    completed_at to its row showing "completed" on the page. Returns
    (latencies in ms, task ids)."""
    lat, ids = [], []
    for i in range(n):
        # at a random point of the page's poll cycle: submitting right
        # after the poll that showed the previous task would lock every
        # sample to the same phase (a task of 2 s ending just after a poll)
        time.sleep(random.uniform(0, 1))
        body = {"type": "vm:execute", "payload": {
            "vm_id": vm_id, "command": "sh", "args": ["-c", cmd, "t%d" % i]}}
        if tenant:
            body["tenant"] = tenant
        r = gs.call(gw, "POST", "/v1/tasks", key, body)
        if r.status != 202:
            e2e.die("POST /v1/tasks: %d %s" % (r.status, r.body[:300]))
        tid = r.json()["task_id"]
        ids.append(tid)
        # seen before it ends, so that its row changes rather than appears
        b.wait("task %s on the page" % tid,
               lambda: (b.row("tasks-body", tid) or [""])[0] in
               ("pending", "running"), timeout=60)
        row = b.wait("task %s completed on the page" % tid,
                     lambda: (lambda x: x if x and x[0] == "completed" and x[1]
                              else None)(b.row("tasks-body", tid)), timeout=120)
        t = gs.call(gw, "GET", "/v1/tasks/" + tid, key).json()
        lat.append(int(row[1]) - ms_of(t["completed_at"]))
    return lat, ids


def summary(xs):
    xs = sorted(xs)
    return {"n": len(xs), "min": xs[0], "p50": statistics.median(xs),
            "max": xs[-1], "mean": round(statistics.mean(xs), 1)}
