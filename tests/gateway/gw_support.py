"""Helpers of the gateway tests: a real aeth-gateway over the services of
tests/cli/e2e_support.py (a fresh database, a private Redis, workers),
API keys made with `aeth-gateway keys create`, and an HTTP client on
urllib. Everything started is stopped at exit (e2e_support's cleanup)."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cli"))
import e2e_support as e2e  # noqa: E402

GATEWAY = os.path.join(e2e.BUILD, "cli", "aeth-gateway")


class Gateway:
    def __init__(self, env, config="", name="gateway"):
        """aeth-gateway on 127.0.0.1 with a free port; `config`: more YAML
        under gateway: (indented two spaces); `name`: of its log and
        config files (several gateways side by side)."""
        self.env = env
        self.log = os.path.join(e2e.tmp, name + ".log")
        self.cfg = os.path.join(e2e.tmp, name + ".yaml")
        with open(self.cfg, "w") as f:
            f.write("gateway:\n  listen: 127.0.0.1:0\n" + config)
        self.proc = subprocess.Popen([GATEWAY, "-config", self.cfg],
                                     stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, env=env)
        e2e.procs.append(self.proc)
        end = time.time() + 30
        while time.time() < end:
            m = re.search(r"serving on .* \(port (\d+)\)", self.text())
            if m:
                self.port = int(m.group(1))
                self.base = "http://127.0.0.1:%d" % self.port
                # with metrics.listen: the next line names its port
                self.metrics_port = None
                if "metrics:" in config:
                    self.metrics_port = int(self.wait_for(
                        r"metrics on .* \(port (\d+)\)").group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        e2e.die("aeth-gateway did not start:\n" + self.text())

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_for(self, pattern, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.text())
            if m:
                return m
            time.sleep(0.05)
        e2e.die("aeth-gateway did not print %r:\n%s" % (pattern, self.text()))

    def admin(self, *args):
        r = subprocess.run([GATEWAY, "-config", self.cfg] + list(args),
                           capture_output=True, text=True, env=self.env)
        if r.returncode != 0:
            e2e.die("aeth-gateway %s: %s" % (" ".join(args), r.stderr))
        return r.stdout.strip()

    def key(self, tenant, operator=False):
        return self.admin("keys", "create", "-tenant", tenant,
                          *(["-operator"] if operator else []))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Resp:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body)

    def code(self):
        """The error code of an error answer."""
        return self.json()["error"]["code"]


def call(gw, method, path, key=None, body=None, raw=None, timeout=300):
    data = raw if raw is not None else (
        json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(gw.base + path, data=data, method=method)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.read(), dict(e.headers))


def check_error(r, status, code, what, words=None):
    """`what` answers `status` with the error `code` (and `words` in its
    message)."""
    if r.status != status:
        e2e.die("%s: status %d, not %d: %s" % (what, r.status, status,
                                               r.body[:300]))
    j = r.json()
    if j["error"]["code"] != code or (words and words not in
                                      j["error"]["message"]):
        e2e.die("%s: error %r, wanted code %s%s" % (
            what, j["error"], code, " with %r" % words if words else ""))
    e2e.check(True, "%s: %d %s" % (what, status, code))


class Wait(threading.Thread):
    """GET /v1/tasks/ID/wait in the background (a stream); its answer in
    .resp once it ended."""

    def __init__(self, gw, key, task, timeout_ms):
        super().__init__(daemon=True)
        self.args = (gw, key, task, timeout_ms)
        self.resp = None

    def run(self):
        gw, key, task, ms = self.args
        self.resp = call(gw, "GET", "/v1/tasks/%s/wait?timeout_ms=%d" %
                         (task, ms), key=key, timeout=ms / 1000 + 60)


def scrape(port):
    """The text of GET /metrics on the metrics.listen port `port`."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        ctype = r.headers["Content-Type"]
        e2e.check(ctype.startswith("text/plain; version=0.0.4"),
                  "metrics content type %s" % ctype)
        return r.read().decode()


def value(text, name, **labels):
    """The sample `name` with exactly `labels`, or 0.0 when absent."""
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    line = "%s{%s} " % (name, want) if labels else name + " "
    for ln in text.splitlines():
        if ln.startswith(line):
            return float(ln[len(line):])
    return 0.0
