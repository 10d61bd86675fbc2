#!/usr/bin/env python3
"""aeth-gateway against hostile input (docs/gateway.md "Errors"): a real
gateway of the tree under test, PostgreSQL and Redis, no worker; thousands
of generated requests from a fixed seed, for AETH_FUZZ_SECONDS (45; with
the answers still awaited at the end and the checks, about a minute):

- mutations of a valid request of every route of lib/gateway/gateway.c's
  table (read from the source, so a new route is fuzzed too): methods,
  paths (ids that are no UUID, 10 KB ids, //, trailing /, %2e%2e, junk),
  query strings (repeated keys, empty, %00, %ff, huge, ?path= with ..,
  mode= overflow, negative, hex, garbage), Authorization variants, JSON
  bodies (every field of the route with every wrong type, 1e400, -0,
  NaN, duplicate keys, \\u0000, bytes that are not UTF-8, 100k '[',
  bodies over gateway.max_body_bytes);
- raw sockets: malformed request lines and headers, a NUL in the key,
  HTTP/1.0, pipelined requests, a client that leaves mid-body, and
  streams and pending answers the client walks away from.

Asserted: the process stays alive; every answer is a well-formed HTTP
response, with a JSON error body ({"error": {"code", "message"}}) for
4xx/5xx; no 5xx for client input but 503 "busy" (a limit of the
gateway); no request that got a 4xx left a task behind; afterwards
/v1/health and a valid request answer, a tenant may open as many waits as
its gateway.tenant_max_streams, and the streams and connections gauges
are back to 0. Under the sanitizers (the ASan tree of .ci/run) the
gateway runs with halt_on_error: a report stops it, and its log must hold
none and its exit status must be 0.

libmicrohttpd's own refusals of what is not HTTP (a request line or
header it cannot parse, a URI or headers over its memory limit) are HTML,
not JSON: there is no hook to change them; they are accepted, well-formed
and 4xx, for the raw cases and the oversized ones only.

A failing case prints its number: AETH_FUZZ_SEED and AETH_FUZZ_ONLY=N
replay it alone.
"""
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402

e2e = gs.e2e
check = e2e.check

SEED = int(os.environ.get("AETH_FUZZ_SEED", "20261204"))
BUDGET_S = float(os.environ.get("AETH_FUZZ_SECONDS", "45"))
ONLY = os.environ.get("AETH_FUZZ_ONLY")
SOURCE = os.environ.get("AETH_SOURCE_ROOT", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLIENTS = 6
MAX_BODY = 65536
TENANT_STREAMS = 4
ANSWER_S = 15.0   # longest wait for an answer's head (ASan is slow)
STREAM_CUT_S = 0.8  # a stream is read this long, then walked away from
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|"
                       r"UndefinedBehaviorSanitizer")


def routes():
    """(method, path template) of every route of the gateway's table."""
    with open(os.path.join(SOURCE, "lib", "gateway", "gateway.c")) as f:
        src = f.read()
    table = re.findall(r'\{"([A-Z]+)", "(/v1/[^"]*)", aeth__gw_\w+\}', src)
    check(len(table) >= 15, "%d routes in lib/gateway/gateway.c" % len(table))
    return table + [("GET", "/v1/health"), ("GET", "/dashboard/"),
                    ("HEAD", "/dashboard/app.js"), ("GET", "/")]


# --- an HTTP/1.1 client that trusts nothing --------------------------------

class Bad(Exception):
    """The gateway's answer is not HTTP."""


class Gone(Exception):
    """The connection ended before an answer's head."""


class Late(Exception):
    """No answer's head in time."""


class Reader:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def more(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise Late()
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            raise Late()
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        self.buf += d
        return bool(d)

    def until(self, sep, deadline, limit):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise Bad("no %r in %d bytes" % (sep, limit))
            if not self.more(deadline):
                raise Gone()
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def exactly(self, n, deadline):
        while len(self.buf) < n:
            if not self.more(deadline):
                raise Bad("the body ended after %d of %d bytes" %
                          (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Answer:
    def __init__(self, status, headers, body, cut):
        self.status = status
        self.headers = headers
        self.body = body
        self.cut = cut  # a stream we walked away from

    def h(self, name):
        return self.headers.get(name.lower(), "")


def read_answer(rd, head_only, deadline, waits=False):
    line = rd.until(b"\r\n", deadline, 8192)
    if re.match(rb"HTTP/1\.1 100 ", line):  # Expect: 100-continue
        rd.until(b"\r\n", deadline, 8192)
        line = rd.until(b"\r\n", deadline, 8192)
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", line + b" ")
    if not m:
        raise Bad("status line %r" % line[:100])
    status = int(m.group(1))
    headers = {}
    for h in rd.until(b"\r\n\r\n", deadline, 65536).split(b"\r\n") \
            if not rd.buf.startswith(b"\r\n") else []:
        if b":" not in h:
            raise Bad("header line %r" % h[:100])
        k, v = h.split(b":", 1)
        headers[k.decode("latin-1").strip().lower()] = \
            v.decode("latin-1").strip()
    if rd.buf.startswith(b"\r\n") and not headers:
        rd.buf = rd.buf[2:]
    ans = Answer(status, headers, b"", False)
    if head_only or status in (204, 304) or status < 200:
        return ans
    # a stream, or (`waits`) a 2xx whose body comes when a task no worker
    # runs ends: read a while, then walked away from
    streaming = ans.h("content-type").split(";")[0] in (
        "text/event-stream", "application/x-ndjson") or \
        (waits and status < 300)
    cut_at = min(deadline, time.time() + STREAM_CUT_S) if streaming \
        else deadline
    try:
        if ans.h("transfer-encoding").lower() == "chunked":
            body = []
            while True:
                size = rd.until(b"\r\n", cut_at, 1024).split(b";")[0]
                if not re.fullmatch(rb"[0-9a-fA-F]+", size.strip()):
                    raise Bad("chunk size %r" % size[:40])
                n = int(size, 16)
                if n == 0:
                    rd.until(b"\r\n", cut_at, 65536)
                    break
                body.append(rd.exactly(n, cut_at))
                if rd.exactly(2, cut_at) != b"\r\n":
                    raise Bad("a chunk without CRLF")
            ans.body = b"".join(body)
        elif "content-length" in ans.headers:
            ans.body = rd.exactly(int(ans.h("content-length")), cut_at)
        else:
            while rd.more(cut_at):
                pass
            ans.body, rd.buf = rd.buf, b""
    except (Late, Gone):
        if not streaming:
            raise Bad("the body of a %d did not come whole" % status)
        ans.cut = True
    return ans


def exchange(port, raw, n_answers=1, head_only=False, close_after=None,
             wait_s=ANSWER_S, waits=False):
    """Send `raw`, read `n_answers` answers within `wait_s`. close_after:
    send only that many bytes and leave (no answer read)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait_s)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        if close_after is not None:
            s.sendall(raw[:close_after])
            time.sleep(0.05)
            return []
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered (and closed) before reading it all
        rd = Reader(s)
        deadline = time.time() + wait_s
        out = []
        for _ in range(n_answers):
            a = read_answer(rd, head_only, deadline, waits)
            out.append(a)
            if a.cut:
                break
        return out
    finally:
        s.close()


# --- the cases ---------------------------------------------------------------

HOSTILE_IDS = [
    "", "x", "..", "%2e%2e", "%2E%2E%2F", "not-a-uuid", "0" * 36,
    "00000000-0000-0000-0000-00000000000g", "A" * 10240, "%00",
    "12345678-1234-1234-1234-123456789012%00junk", "%ff%fe", "*", "'",
    "%27%20OR%201=1--", "{id}", "-1", "99999999999999999999",
]

NUMS = ["", "0", "-1", "1", "5", "120", "3600", "86400", "99999999999999999999",
        "-99999999999999999999", "1e3", "0x10", "010", "abc", "1.5", " 7",
        "7abc", "%00", "NaN", "inf", "+5", "2147483648", "4294967296"]
TEXT = ["", "%00", "%ff%fe", "a%00b", "x" * 5000, "%", "%zz", "+", "%2B",
        "..%2F..%2Fetc%2Fpasswd", "%C0%AE", "%C3%A9",
        "pending", "running", "vm:execute", "default", "fz-b", "FZ-A"]
PATHS = ["/root/a.txt", "", "/", "relative", "/root/../etc/passwd",
         "/root/%00x", "%00", "/" + "a" * 5000, "/root/%ff%fe", "//x",
         "/root/./a", "/..", "/root/a%0Ab", "/proc/self/environ",
         "/root/" + "d/" * 300 + "f"]
MODES = ["0644", "0755", "", "99999999999999999999", "-1", "-0", "0x1ff",
         "0o644", "8", "07777", "17777", "+644", " 644", "644 ", "0644%00",
         "abc", "7" * 30]

QUERY = {
    "limit": NUMS, "window_s": NUMS, "timeout_ms": NUMS, "tenant": TEXT,
    "status": TEXT, "type": TEXT, "vm_id": TEXT + [str(uuid.uuid4())],
    "path": PATHS, "mode": MODES, "wait": ["", "false", "0", "true", "x"],
    "format": ["sse", "ndjson", "", "xml", "%00"],
}

# A JSON value as text, some that Python's json cannot write.
VALUES = [
    "null", "true", "false", "0", "-0", "-1", "1.5", "1e400", "-1e400",
    "99999999999999999999", "2147483648", "4294967297", "NaN", "Infinity",
    '""', '"x"', '"' + "y" * 5000 + '"', '"a\\u0000b"', '"\\ud800"',
    '"\xff\xfe"', "[]", "{}", '["x"]', '{"a":{"b":[1]}}', "[" * 5000,
    '"sse"', '"ndjson"', '"none"', '"tap"', '"default"', '"fz-b"',
]

BODIES = {
    ("POST", "/v1/vms"): {"name": '"fz"', "vcpus": "1", "memory_mb": "256",
                          "image": '"default"', "network": '"none"',
                          "rootfs": '"none"', "ttl_s": "60", "wait": "false",
                          "tenant": '"fz-a"'},
    ("POST", "/v1/vms/{id}/exec"): {
        "command": '"echo"', "args": '["hi"]', "env": '{"A":"b"}',
        "cwd": '"/"', "timeout_ms": "1000", "stdin": '""',
        "stream": '"ndjson"'},
    ("POST", "/v1/tasks"): {"type": '"vm:execute"',
                            "payload": '{"command":"true"}',
                            "queue": '"fz"', "max_retries": "0",
                            "timeout_ms": "1000", "priority": "0",
                            "tenant": '"fz-a"'},
}

WHOLE_BODIES = [
    "", "null", "[]", '"s"', "1", "{", "{}}", "{}xyz", '{"a":}', "[" * 100000,
    "{" * 100000, '{"a":' * 3000, "\xef\xbb\xbf{}", "\x00{}", "{}\x00",
    '{"type":"a","type":"b"}', '{"name":"a","name":1}', "{\"k\":\"\xff\"}",
    " " * 70000, "x" * (MAX_BODY + 1),
]

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
           "TRACE", "CONNECT", "FOO", "get", "M" * 300]


class Case:
    def __init__(self):
        self.raw = b""
        self.answers = 1
        self.head = False
        self.close_after = None
        self.mhd_may_refuse = False  # HTML 4xx of libmicrohttpd allowed
        self.may_pend = False  # a pending answer we may walk away from
        self.waits = False  # a 2xx body that waits for a task's end
        self.route = None  # (method, template): unmutated, as documented
        self.mutated = False  # the path is changed beyond its {id}
        self.hostile_id = False  # {id} is one of HOSTILE_IDS
        self.enqueues = False  # may leave a task when accepted
        self.what = ""


class Gen:
    def __init__(self, port, table, keys, ids):
        self.port = port
        self.table = table
        self.keys = keys  # {"a", "b", "op"}
        self.ids = ids    # {"vm", "task", "vm_b"}

    def auth(self, r):
        k = r.random()
        if k < 0.75:
            return "Authorization: Bearer %s\r\n" % self.keys["a"]
        if k < 0.82:
            return "Authorization: Bearer %s\r\n" % self.keys["op"]
        if k < 0.85:
            return "Authorization: Bearer %s\r\n" % self.keys["b"]
        return r.choice([
            "", "Authorization: Bearer\r\n", "Authorization: Bearer \r\n",
            "Authorization: Bearer  %s\r\n" % self.keys["a"],
            "Authorization: bearer %s\r\n" % self.keys["a"],
            "Authorization: BEARER %s\r\n" % self.keys["a"],
            "Authorization: Basic YTpi\r\n", "Authorization: aeth_x\r\n",
            "Authorization: Bearer aeth_\r\n",
            "Authorization: Bearer aeth_" + "k" * 43 + "\r\n",
            "Authorization: Bearer %s \r\n" % self.keys["a"],
            "Authorization: Bearer %s\r\nAuthorization: Bearer x\r\n"
            % self.keys["a"],
            "Authorization: Bearer x\r\nAuthorization: Bearer %s\r\n"
            % self.keys["a"],
            "Authorization: Bearer aeth_\xff\xfe\r\n",
            "Authorization: Bearer " + "a" * 129 + "\r\n",
        ])

    def ident(self, r):
        k = r.random()
        if k < 0.35:
            return self.ids["vm"]
        if k < 0.6:
            return self.ids["task"]
        if k < 0.7:
            return str(uuid.uuid4())
        if k < 0.75:
            return self.ids["vm_b"]
        if k < 0.8:
            return self.ids["vm"].upper()
        return r.choice(HOSTILE_IDS)

    def path(self, r, tmpl, c):
        ident = self.ident(r)
        p = tmpl.replace("{id}", ident)
        c.hostile_id = "{id}" in tmpl and ident in HOSTILE_IDS
        k = r.random()
        c.mutated = k < 0.22
        if k < 0.06:
            p = "/" + p
        elif k < 0.12:
            p += "/"
        elif k < 0.15:
            p += r.choice(["/x", "x", "%00", "/..", "/%2e%2e", ";x", "#f"])
        elif k < 0.18:
            p = p.replace("/v1/", "/v1//")
        elif k < 0.2:
            p = p.replace("/v1/", "/v1/%2e%2e/")
        elif k < 0.22:
            p = p.upper()
        if len(p) > 8000:
            c.mhd_may_refuse = True
        return p

    def query(self, r, c):
        if r.random() < 0.25:
            return ""
        parts = []
        for _ in range(r.randint(1, 5)):
            k = r.choice(list(QUERY))
            v = r.choice(QUERY[k])
            parts.append("%s=%s" % (k, v))
            if r.random() < 0.1:
                parts.append(k)  # a key without '='
            if r.random() < 0.1:
                parts.append("%s=%s" % (k, r.choice(QUERY[k])))  # repeated
        q = "?" + "&".join(parts)
        if r.random() < 0.05:
            q += r.choice(["&", "&&", "=", "%", "%g", "&=x", "#frag", "?x"])
        if len(q) > 8000:
            c.mhd_may_refuse = True
        return q

    def body(self, r, method, tmpl):
        fields = BODIES.get((method, tmpl))
        if tmpl.endswith("/files") and method == "PUT":
            return r.choice([b"", b"hello\n", bytes(range(256)),
                             b"\x00" * 1000, b"z" * (MAX_BODY + 10)])
        if fields is None:
            return r.choice([b""] * 6 + [b"{}", b"[" * 1000, b"x" * 100])
        if r.random() < 0.2:
            return r.choice(WHOLE_BODIES).encode("latin-1")
        kept = {k: v for k, v in fields.items() if r.random() < 0.7}
        for _ in range(r.randint(0, 3)):
            kept[r.choice(list(fields) + ["extra", "\u0000", ""])] = \
                r.choice(VALUES)
        items = ['"%s":%s' % (k, v) for k, v in kept.items()]
        if r.random() < 0.1 and items:
            items.append(r.choice(items))  # a duplicate key
        # the \xff of VALUES are raw bytes: not UTF-8 on purpose
        return ("{" + ",".join(items) + "}").encode("latin-1")

    def route_case(self, r):
        c = Case()
        method, tmpl = r.choice(self.table)
        if r.random() < 0.1:
            method = r.choice(METHODS)
            if len(method) > 100:
                c.mhd_may_refuse = True
        path = self.path(r, tmpl, c) + self.query(r, c)
        if not c.mutated and not c.hostile_id and not c.mhd_may_refuse and \
                (method, tmpl) in self.table:
            c.route = (method, tmpl)
        body = self.body(r, method, tmpl)
        # waits and streams: some walked away from (client_gone)
        c.may_pend = tmpl.endswith("/files")
        c.waits = tmpl.endswith(("/exec", "/wait", "/output")) or \
            method in ("POST", "DELETE") and tmpl.startswith("/v1/vms")
        c.enqueues = method in ("POST", "PUT", "DELETE") or \
            tmpl.endswith("/files")
        c.head = method == "HEAD"
        hdr = "%s %s HTTP/1.%d\r\nHost: fz\r\n%sConnection: close\r\n" % (
            method, path, r.random() >= 0.05, self.auth(r))
        if r.random() < 0.05:
            hdr += "X-Big: " + "h" * r.choice([100, 5000, 100000]) + "\r\n"
            c.mhd_may_refuse = True
        if body or method in ("POST", "PUT", "PATCH"):
            hdr += "Content-Type: application/json\r\n"
            hdr += "Content-Length: %d\r\n" % len(body)
        c.raw = hdr.encode("latin-1") + b"\r\n" + body
        c.what = "%s %s (%d bytes of body)" % (method, path[:120], len(body))
        return c

    def raw_case(self, r):
        c = Case()
        c.mhd_may_refuse = True
        key = self.keys["a"]
        ok = "GET /v1/whoami HTTP/1.1\r\nHost: fz\r\nAuthorization: Bearer " \
            + key + "\r\n"
        k = r.randrange(14)
        if k == 0:
            c.raw = (ok + "\r\n").encode() * 3  # pipelined
            c.answers = 3
            c.what = "3 pipelined whoami"
        elif k == 1:
            c.raw = ("GET /v1/whoami HTTP/1.0\r\nAuthorization: Bearer %s"
                     "\r\n\r\n" % key).encode()
            c.what = "HTTP/1.0"
        elif k == 2:
            c.raw = ("GET /v1/whoami HTTP/1.1\r\nHost: fz\r\nAuthorization: "
                     "Bearer aeth_\x00%s\r\nConnection: close\r\n\r\n" %
                     key[5:]).encode()
            c.what = "a NUL in the key"
        elif k == 3:
            c.raw = ("POST /v1/tasks HTTP/1.1\r\nHost: fz\r\nAuthorization: "
                     "Bearer %s\r\nContent-Length: 1000\r\n\r\n{\"type\":"
                     % key).encode()
            c.close_after = len(c.raw)
            c.answers = 0
            c.what = "a client that leaves mid-body"
        elif k == 4:
            c.raw = r.choice([b"\r\n\r\n", b"GET\r\n\r\n", b"GET / \r\n\r\n",
                              b"GET /v1/health HTTP/9.9\r\n\r\n",
                              b"GET /v1/health HTTP/1.1\r\nHost\r\n\r\n",
                              b"GET /v1/health HTTP/1.1\r\n: x\r\n\r\n",
                              b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                              + b"\x00" * 40 + b"\r\n\r\n",
                              b"GET /v1/\x00health HTTP/1.1\r\n\r\n",
                              b"GET /v1/health\tHTTP/1.1\r\nHost: x\r\n\r\n",
                              b"GET http://fz/v1/health HTTP/1.1\r\nHost: "
                              b"fz\r\nConnection: close\r\n\r\n",
                              b"GET * HTTP/1.1\r\nHost: fz\r\n\r\n"])
            c.what = "a malformed request %r" % c.raw[:40]
            # empty lines before a request are allowed (RFC 9112 2.2): it
            # waits for one, then gateway.timeout_s closes the connection
            c.may_pend = c.raw == b"\r\n\r\n"
        elif k == 5:
            c.raw = ("POST /v1/tasks HTTP/1.1\r\nHost: fz\r\nAuthorization: "
                     "Bearer %s\r\nContent-Length: %s\r\nConnection: close"
                     "\r\n\r\n{}" % (key, r.choice(
                         ["-1", "abc", "99999999999999999999999", "1, 2",
                          "0x10", " 2", "2 ", "+2"]))).encode()
            c.what = "a Content-Length that is not a number"
        elif k == 6:
            c.raw = ("POST /v1/tasks HTTP/1.1\r\nHost: fz\r\nAuthorization: "
                     "Bearer %s\r\nTransfer-Encoding: chunked\r\nConnection: "
                     "close\r\n\r\n%s" % (key, r.choice(
                         ["2\r\n{}\r\n0\r\n\r\n", "zz\r\n{}\r\n0\r\n\r\n",
                          "ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
                          "1\r\n{\r\n1\r\n}\r\n0\r\n\r\n",
                          "%x\r\n%s\r\n0\r\n\r\n" % (MAX_BODY + 1,
                                                    "{" * (MAX_BODY + 1))]))
                     ).encode()
            c.what = "a chunked body"
            c.enqueues = True
        elif k == 7:
            c.raw = ("POST /v1/tasks HTTP/1.1\r\nHost: fz\r\nAuthorization: "
                     "Bearer %s\r\nContent-Length: 2\r\nContent-Length: 5\r\n"
                     "Connection: close\r\n\r\n{}" % key).encode()
            c.what = "two Content-Lengths"
            c.enqueues = True
        elif k == 8:
            c.raw = ("GET /v1/tasks/%s/output?format=ndjson&timeout_ms=5000 "
                     "HTTP/1.1\r\nHost: fz\r\nAuthorization: Bearer %s\r\n"
                     "\r\n" % (self.ids["task"], key)).encode()
            c.close_after = len(c.raw)
            c.answers = 0
            c.what = "a stream the client leaves at once"
        elif k == 9:
            c.raw = ("GET /v1/vms/%s/files?path=/root/x HTTP/1.1\r\nHost: fz"
                     "\r\nAuthorization: Bearer %s\r\n\r\n" %
                     (self.ids["vm"], key)).encode()
            c.close_after = len(c.raw)
            c.answers = 0
            c.enqueues = True
            c.what = "a pending answer the client leaves"
        elif k == 10:
            c.raw = (ok + "Expect: 100-continue\r\nContent-Length: 5\r\n"
                     "Connection: close\r\n\r\n{}   ").encode()
            c.what = "Expect: 100-continue"
        elif k == 11:
            c.raw = ("%s /v1/whoami HTTP/1.1\r\nHost: fz\r\nAuthorization: "
                     "Bearer %s\r\nConnection: close\r\n\r\n" % (
                         r.choice(["HEAD", "OPTIONS", "TRACE", "BREW"]),
                         key)).encode()
            c.head = c.raw.startswith(b"HEAD")
            c.what = "method %s" % c.raw[:8]
        elif k == 12:
            c.raw = (ok + "Connection: close\r\n" + "".join(
                "X-%d: v\r\n" % i for i in range(300)) + "\r\n").encode()
            c.what = "300 headers"
        else:
            c.raw = (ok + "Connection: close\r\n\r\n").encode()
            c.what = "whoami (control)"
        return c

    def case(self, i):
        r = random.Random(SEED * 1000003 + i)
        return self.raw_case(r) if r.random() < 0.12 else self.route_case(r)


# (method, template) -> the statuses docs/openapi.yaml lists for it
DOCUMENTED = {}


def body_fields_documented():
    """Every member of a JSON request body in docs/openapi.yaml is one that
    BODIES mutates (so a new field is fuzzed with every wrong type too)."""
    import yaml
    with open(os.path.join(SOURCE, "docs", "openapi.yaml")) as f:
        doc = yaml.safe_load(f)

    def res(o):
        while "$ref" in o:
            x = doc
            for part in o["$ref"].split("/")[1:]:
                x = x[part]
            o = x
        return o

    for path, item in doc["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                DOCUMENTED[(method.upper(), path)] = set(op["responses"])
            if not isinstance(op, dict) or "requestBody" not in op:
                continue
            c = res(op["requestBody"]).get("content", {})
            props = res(c.get("application/json", {}).get("schema", {})) \
                .get("properties", {})
            missing = set(props) - set(BODIES.get((method.upper(), path), {}))
            check(not missing, "%s %s: body fields %s fuzzed" % (
                method.upper(), path, sorted(props)) if not missing else
                "%s %s: fields %s not in BODIES" % (method.upper(), path,
                                                    sorted(missing)))


# --- the checks -------------------------------------------------------------

def judge(c, answers):
    """None when the answers are right for the case, else why not."""
    for a in answers:
        json_err = None
        if a.status >= 400:
            try:
                j = json.loads(a.body)
                if not (isinstance(j, dict) and isinstance(j.get("error"), dict)
                        and isinstance(j["error"].get("code"), str)
                        and isinstance(j["error"].get("message"), str)):
                    json_err = "not {error: {code, message}}"
            except ValueError as e:
                json_err = "not JSON (%s)" % e
            if c.head and not a.body:
                json_err = None
            if json_err and not (c.mhd_may_refuse and (a.status < 500 or
                                                       a.status == 505)):
                return "%d with a body that is %s: %r" % (a.status, json_err,
                                                          a.body[:200])
            if not json_err and not a.h("content-type").startswith(
                    "application/json") and not c.head:
                return "%d error as %s" % (a.status, a.h("content-type"))
        if a.status == 505 and c.mhd_may_refuse:
            continue  # libmicrohttpd's: a version that is not HTTP/1.x
        if a.status >= 500 and not (a.status == 503 and not json_err and
                                    json.loads(a.body)["error"]["code"] ==
                                    "busy"):
            return "%d for client input: %r" % (a.status, a.body[:300])
    return None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = 0
        self.status = {}
        self.late = 0
        self.accepted = 0  # could have left a task
        self.undocumented = {}  # (method, template) -> statuses
        self.failures = []


def run_case(port, gen, i, st):
    c = gen.case(i)
    why = None
    answers = []
    try:
        # a pending answer (a file task no worker runs) is walked away
        # from sooner: its slot must come back (later.c)
        answers = exchange(port, c.raw, c.answers, c.head, c.close_after,
                           2.0 if c.may_pend else ANSWER_S, c.waits)
        why = judge(c, answers)
    except Late:
        if not c.may_pend:
            why = "no answer in %.0f s" % ANSWER_S
    except Gone:
        if not c.mhd_may_refuse:
            why = "the connection closed without an answer"
    except Bad as e:
        why = "not HTTP: %s" % e
    except ConnectionRefusedError:
        why = "connection refused: is the gateway alive?"
    with st.lock:
        st.n += 1
        for a in answers:
            st.status[a.status] = st.status.get(a.status, 0) + 1
        for a in answers if c.route else []:
            # 431: libmicrohttpd's, for a head over its memory limit
            if a.status != 431 and str(a.status) not in \
                    DOCUMENTED.get(c.route, {str(a.status)}):
                st.undocumented.setdefault(c.route, set()).add(a.status)
        if c.enqueues and (not answers or any(a.status < 400
                                               for a in answers)):
            st.accepted += 1
        if why:
            st.failures.append("case %d (%s): %s" % (i, c.what, why))


def fuzz(gw, gen, st):
    if ONLY is not None:
        run_case(gw.port, gen, int(ONLY), st)
        return
    nxt = [0]
    lock = threading.Lock()
    end = time.time() + BUDGET_S

    def client():
        while time.time() < end and len(st.failures) < 30 and \
                gw.proc.poll() is None:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            run_case(gw.port, gen, i, st)

    ts = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(BUDGET_S + 3 * ANSWER_S)
    check(not any(t.is_alive() for t in ts), "every client thread ended")


# --- the run ------------------------------------------------------------------

def scrape(port):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        text = r.read().decode()
    out = {}
    for ln in text.splitlines():
        m = re.match(r"(aeth_gateway_(streams|connections)) (\S+)$", ln)
        if m:
            out[m.group(1)] = float(m.group(3))
    return out


def tasks_count(url):
    """Tasks that wait for a worker (a refused submit may leave a failed
    row that says why: not work)."""
    return int(e2e.psql(url, "SELECT count(*) FROM tasks WHERE status IN "
                        "('pending', 'running', 'retrying')").strip())


def sanitized_env(env):
    env = dict(env)
    a = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (a + ":" if a else "") + "halt_on_error=1:" \
        "abort_on_error=1"
    u = env.get("UBSAN_OPTIONS", "")
    env["UBSAN_OPTIONS"] = (u + ":" if u else "") + "halt_on_error=1:" \
        "print_stacktrace=1"
    return env


def main():
    url, redis, env = e2e.start_services()
    gw = gs.Gateway(sanitized_env(env),
                    "  max_body_bytes: %d\n  tenant_max_streams: %d\n"
                    "  max_streams: 16\n  wait_max_s: 3\n  timeout_s: 20\n"
                    "  quota_rps: 1000000\n  unauthenticated_rps: 0\n"
                    "metrics:\n  listen: 127.0.0.1:0\n"
                    % (MAX_BODY, TENANT_STREAMS))
    keys = {"a": gw.key("fz-a"), "b": gw.key("fz-b"),
            "op": gw.key("fz-op", operator=True)}
    # a VM of each tenant (the row a worker writes; there is none) and a
    # pending task of a's: ids the routes find
    vm, vm_b = str(uuid.uuid4()), str(uuid.uuid4())
    # an owner, so that file routes submit and answer later (file_next())
    for i, t in ((vm, "fz-a"), (vm_b, "fz-b")):
        e2e.psql(url, "INSERT INTO vms (id, name, orchestrator, status, "
                 "created_at, tenant_id, owner_worker) VALUES ('%s', "
                 "'fz-%s', 'qemu', 'running', now(), '%s', 'fz-worker')"
                 % (i, i[:8], t))
    r = gs.call(gw, "POST", "/v1/vms?wait=false", key=keys["a"],
                body={"name": "fz-pending"})
    check(r.status == 202, "a pending task: %d %s" % (r.status, r.body))
    task = r.json()["task_id"]
    base = scrape(gw.metrics_port)
    check(base.get("aeth_gateway_streams") == 0, "no stream before: %s" % base)
    before = tasks_count(url)

    body_fields_documented()
    gen = Gen(gw.port, routes(), keys, {"vm": vm, "vm_b": vm_b, "task": task})
    st = Stats()
    t0 = time.time()
    fuzz(gw, gen, st)
    took = time.time() - t0
    print("%d cases in %.0f s, answers by status: %s" % (
        st.n, took, dict(sorted(st.status.items()))))
    for f in st.failures[:20]:
        print("FAIL " + f)
    alive = gw.proc.poll() is None
    if not alive or SANITIZER.search(gw.text()):
        print(gw.text()[-6000:])
    check(alive, "the gateway is alive after %d hostile requests" % st.n)
    check(not SANITIZER.search(gw.text()), "no sanitizer report in its log")
    check(not st.failures, "every answer well-formed, errors JSON, no 5xx "
          "but 503 busy (%d failed)" % len(st.failures))
    check(ONLY is not None or st.n >= 1000, "%d cases (at least 1000)" % st.n)
    check(not st.undocumented, "every status of a route's answer is one "
          "docs/openapi.yaml lists for it%s" % "".join(
              "; %s %s also answers %s" % (m, t, sorted(v))
              for (m, t), v in sorted(st.undocumented.items())))

    after = tasks_count(url)
    check(after - before <= st.accepted, "tasks left behind: %d, by requests "
          "not refused: %d" % (after - before, st.accepted))

    # numbers of the query: out of range or not a number is a 400 naming
    # the range, never a silent default
    for q in ("/v1/vms?limit=", "/v1/tasks?limit=",
              "/v1/stats/history?window_s=",
              "/v1/tasks/%s/wait?timeout_ms=" % task,
              "/v1/tasks/%s/output?timeout_ms=" % task):
        for bad in ("0", "-1", "", "abc", "7abc", "1e3", "0x10", "+5", " 5",
                    "99999999999999999999", "86400001"):
            r = gs.call(gw, "GET", q + urllib.parse.quote(bad),
                        key=keys["a"], timeout=10)
            if r.status != 400 or r.code() != "invalid_argument":
                e2e.die("%s%r: %d %s" % (q, bad, r.status, r.body[:200]))
    check(True, "limit, window_s, timeout_ms out of range: 400 each")
    # cJSON ends a string at \u0000: "rm\u0000 -rf /x" would run "rm"
    before_nul = tasks_count(url)
    for path, body in (("/v1/vms/%s/exec" % vm, b'{"command":"rm\\u0000 -rf'
                        b' /x","timeout_ms":100}'),
                       ("/v1/tasks", b'{"type":"vm:execute","payload":{"vm_id"'
                        b':"%s","command":"x\\u0000y"}}' % vm.encode()),
                       ("/v1/vms", b'{"name":"a\\u0000b","wait":false}')):
        r = gs.call(gw, "POST", path, key=keys["a"], raw=body, timeout=10)
        gs.check_error(r, 400, "invalid_json", "POST %s with \\u0000" % path,
                       "\\u0000")
    check(tasks_count(url) == before_nul, "and nothing enqueued for them")

    r = gs.call(gw, "GET", "/v1/health", timeout=10)
    check(r.status == 200, "/v1/health afterwards: %d" % r.status)
    r = gs.call(gw, "GET", "/v1/vms/%s" % vm, key=keys["a"], timeout=10)
    check(r.status == 200 and r.json()["id"] == vm,
          "a valid request afterwards: %d" % r.status)
    # no slot leaked by the streams and pending answers walked away from
    end = time.time() + 20
    while time.time() < end:
        g = scrape(gw.metrics_port)
        if g.get("aeth_gateway_streams") == 0 and \
                g.get("aeth_gateway_connections") == 0:
            break
        time.sleep(0.2)
    check(g.get("aeth_gateway_streams") == 0, "streams gauge back to 0: %s" % g)
    check(g.get("aeth_gateway_connections") == 0,
          "connections gauge back to 0: %s" % g)
    waits = [None] * TENANT_STREAMS

    def wait(n):
        waits[n] = gs.call(gw, "GET", "/v1/tasks/%s/wait?timeout_ms=1500"
                           % task, key=keys["a"], timeout=30).status

    ts = [threading.Thread(target=wait, args=(n,)) for n in range(len(waits))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(waits == [200] * TENANT_STREAMS, "tenant a opens %d waits at once "
          "after it all (gateway.tenant_max_streams): %s"
          % (TENANT_STREAMS, waits))

    gw.proc.send_signal(signal.SIGTERM)
    rc = gw.proc.wait(timeout=60)
    text = gw.text()
    if rc != 0 or SANITIZER.search(text):
        print(text[-6000:])
    check(not SANITIZER.search(text), "no sanitizer report at exit")
    check(rc == 0, "the gateway exits 0 on SIGTERM (%d)" % rc)
    print("ok")


if __name__ == "__main__":
    main()
