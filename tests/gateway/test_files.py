#!/usr/bin/env python3
"""Files into and out of a VM over the gateway (PUT / GET
/v1/vms/{id}/files), with a real gateway, worker, Redis, PostgreSQL and a
TCG guest: the bytes that arrive are the bytes sent (checked in the guest
with sha256sum, and read back byte-exact: all 256 byte values, NULs, a
1 MiB file); another tenant's VM answers 404 and nothing changes in it;
an oversized body is 413 with nothing enqueued; a missing file 404; bad
paths and modes 400 (docs/gateway.md)."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402
from gw_support import call, check_error  # noqa: E402

e2e = gs.e2e
check = e2e.check

MAX_BODY = 9 * 1024 * 1024   # gateway.max_body_bytes of this test
FILE_MAX = 8 * 1024 * 1024   # AETH__FILE_MAX (lib/task/task.h)


def files_path(vid, path, **query):
    q = {"path": path}
    q.update(query)
    return "/v1/vms/%s/files?%s" % (vid, urllib.parse.urlencode(q))


def put(gw, key, vid, path, data, **query):
    return call(gw, "PUT", files_path(vid, path, **query), key, raw=data)


def get(gw, key, vid, path):
    return call(gw, "GET", files_path(vid, path), key)


def run(gw, key, vid, command, *args):
    r = call(gw, "POST", "/v1/vms/%s/exec" % vid, key,
             {"command": command, "args": list(args)})
    j = r.json()
    check(r.status == 200 and j.get("exit_code") == 0,
          "exec %s %s: %s" % (command, " ".join(args), r.body[:300]))
    return j["stdout"]


def counts(gw):
    """The tasks rows: nothing enqueued means none more."""
    return int(e2e.psql(gw.db, "SELECT count(*) FROM tasks"))


def random_trip(gw, key, vid, path, size, what, mode="0644"):
    """PUT `size` random bytes (timed), sha256sum them in the guest, GET
    them back byte-exact (timed)."""
    data = os.urandom(size)
    t0 = time.monotonic()
    r = put(gw, key, vid, path, data, mode=mode)
    took = time.monotonic() - t0
    check(r.status == 200 and r.json()["size"] == size and
          r.json()["mode"] == int(mode, 8),
          "PUT a file of %s, mode %s (%.0f ms): %s" % (what, mode, took * 1000,
                                                       r.body[:200]))
    out = run(gw, key, vid, "sha256sum", path)
    check(out.split()[0] == hashlib.sha256(data).hexdigest(),
          "the %s file's sha256sum in the guest matches" % what)
    t0 = time.monotonic()
    r = get(gw, key, vid, path)
    took = time.monotonic() - t0
    check(r.status == 200 and r.body == data and
          r.headers.get("X-File-Mode") == mode,
          "GET gives the %s file back byte-exact (%.0f ms)" % (what, took * 1000))


def round_trips(gw, key, vid):
    every = bytes(range(256)) * 4 + b"\0\0end\0"
    r = put(gw, key, vid, "/tmp/every.bin", every)
    j = r.json()
    check(r.status == 200 and j["size"] == len(every) and j["mode"] == 0o644
          and j["path"] == "/tmp/every.bin" and j["vm_id"] == vid and
          "task_id" in j, "PUT a file of all 256 byte values and NULs: %s"
          % r.body[:200])
    out = run(gw, key, vid, "sha256sum", "/tmp/every.bin")
    check(out.split()[0] == hashlib.sha256(every).hexdigest(),
          "sha256sum in the guest matches the bytes sent")
    out = run(gw, key, vid, "stat", "-c", "%s %a", "/tmp/every.bin")
    check(out.split() == [str(len(every)), "644"],
          "the guest file has the size and mode 0644: %r" % out)
    r = get(gw, key, vid, "/tmp/every.bin")
    check(r.status == 200 and r.body == every and
          r.headers.get("Content-Type") == "application/octet-stream" and
          r.headers.get("X-File-Mode") == "0644",
          "GET gives the bytes back exactly, as application/octet-stream "
          "(%d bytes, %s)" % (len(r.body), r.headers.get("Content-Type")))

    random_trip(gw, key, vid, "/tmp/big.bin", 1024 * 1024 - 7, "1 MiB", "0750")
    # the limit itself: 8 MiB through Redis, PostgreSQL and the agent
    random_trip(gw, key, vid, "/tmp/most.bin", FILE_MAX, "exactly 8 MiB")
    run(gw, key, vid, "sh", "-c", "head -c %d /dev/zero > /tmp/over.bin"
        % (FILE_MAX + 1))
    r = get(gw, key, vid, "/tmp/over.bin")
    check(r.status == 413 and r.json()["error"]["code"] == "too_large",
          "GET a file of 8 MiB + 1 byte: 413 too_large (%s)" % r.body[:160])
    run(gw, key, vid, "rm", "/tmp/big.bin", "/tmp/most.bin", "/tmp/over.bin")

    run(gw, key, vid, "sh", "-c", "printf 'from the guest\\n' > /tmp/g.txt")
    r = get(gw, key, vid, "/tmp/g.txt")
    check(r.body == b"from the guest\n", "GET reads a file the guest wrote")
    r = put(gw, key, vid, "/tmp/empty", b"")
    check(r.status == 200 and r.json()["size"] == 0, "PUT an empty file")
    check(get(gw, key, vid, "/tmp/empty").body == b"", "GET an empty file")
    # curl, the tool a user takes: --data-binary and -o
    src = os.path.join(e2e.tmp, "curl.bin")
    with open(src, "wb") as f:
        f.write(every[::-1])
    subprocess.run(["curl", "-sf", "-X", "PUT", "-H", "Authorization: Bearer "
                    + key, "-H", "Content-Type: application/octet-stream",
                    "--data-binary", "@" + src,
                    gw.base + files_path(vid, "/tmp/curl.bin")], check=True,
                   stdout=subprocess.DEVNULL)
    dst = os.path.join(e2e.tmp, "curl.out")
    subprocess.run(["curl", "-sf", "-H", "Authorization: Bearer " + key, "-o",
                    dst, gw.base + files_path(vid, "/tmp/curl.bin")], check=True)
    with open(dst, "rb") as f:
        check(f.read() == every[::-1], "curl --data-binary then curl -o: the "
              "same bytes")
    return every


def curl_put(gw, key, vid, path, size):
    """PUT `size` zero bytes with curl (which stops sending when the answer
    comes early, as the gateway's 413 for a declared oversized body does):
    (status, JSON answer)."""
    src = os.path.join(e2e.tmp, "huge.bin")
    with open(src, "wb") as f:
        f.truncate(size)
    out = os.path.join(e2e.tmp, "huge.out")
    r = subprocess.run(["curl", "-s", "-o", out, "-w", "%{http_code}", "-X",
                        "PUT", "-H", "Authorization: Bearer " + key, "-H",
                        "Content-Type: application/octet-stream",
                        "--data-binary", "@" + src,
                        gw.base + files_path(vid, path)],
                       capture_output=True, text=True, timeout=120)
    os.unlink(src)
    with open(out) as f:
        return int(r.stdout), json.load(f)


def errors(gw, key, vid):
    check_error(get(gw, key, vid, "/tmp/nope"), 404, "not_found",
                "GET a missing file", "/tmp/nope")
    check_error(put(gw, key, vid, "/nodir/x", b"x"), 404, "not_found",
                "PUT into a missing directory")
    check_error(get(gw, key, vid, "/tmp"), 400, "is_a_directory",
                "GET a directory", "is a directory")
    check_error(put(gw, key, vid, "/tmp", b"x"), 400, "is_a_directory",
                "PUT onto a directory")
    n = counts(gw)
    check_error(put(gw, key, vid, "tmp/rel", b"x"), 400, "invalid_argument",
                "PUT a relative path", "absolute path")
    check_error(get(gw, key, vid, "rel"), 400, "invalid_argument",
                "GET a relative path")
    check_error(call(gw, "GET", "/v1/vms/%s/files?path=/tmp/a%%00b" % vid, key),
                400, "invalid_argument", "GET a path with a NUL (%00)", "NUL")
    check_error(call(gw, "PUT", "/v1/vms/%s/files?path=/tmp/a%%00b" % vid, key,
                     raw=b"x"), 400, "invalid_argument", "PUT a path with a NUL")
    check_error(call(gw, "GET", "/v1/vms/%s/files" % vid, key), 400,
                "invalid_argument", "GET without path=", "path=")
    check_error(put(gw, key, vid, "/tmp/m", b"x", mode="999"), 400,
                "invalid_argument", "PUT with mode 999", "octal")
    check_error(put(gw, key, vid, "/tmp/m", b"x", mode="-1"), 400,
                "invalid_argument", "PUT with mode -1")
    check(counts(gw) == n, "bad paths and modes enqueue nothing")

    # oversized: past gateway.max_body_bytes (lib/http, before the route),
    # and within it but past the 8 MiB a file may have through the queue
    for size, what in ((MAX_BODY + 1, "past gateway.max_body_bytes"),
                       (FILE_MAX + 1, "of 8 MiB + 1 byte, within it")):
        status, j = curl_put(gw, key, vid, "/tmp/huge", size)
        check(status == 413 and j["error"]["code"] == "too_large",
              "PUT a body %s: 413 too_large (%s)" % (what, j["error"]["message"]))
    check(counts(gw) == n, "oversized bodies enqueue nothing")
    later_metrics(gw, key, vid)
    r = call(gw, "GET", "/v1/vms/%s/exec" % vid, key)
    check(r.status == 405, "GET on /exec still answers 405")
    r = call(gw, "DELETE", files_path(vid, "/tmp/x"), key)
    check(r.status == 405 and "PUT" in r.headers.get("Allow", "") and
          "GET" in r.headers.get("Allow", ""),
          "DELETE on /files is 405, Allow names PUT and GET: %s"
          % r.headers.get("Allow"))


def later_metrics(gw, key, vid):
    """The answers made later are counted with the status they had, not
    with the 202 the handler left (and the time is to the answer)."""
    def n(method, cls):
        return gs.value(gs.scrape(gw.metrics_port),
                        "aeth_gateway_requests_total", method=method,
                        route="/v1/vms/{id}/files", status=cls)
    before = {(m, c): n(m, c) for m in ("GET", "PUT") for c in ("2xx", "4xx")}
    check_error(get(gw, key, vid, "/tmp/nope"), 404, "not_found",
                "GET a missing file again")
    r = put(gw, key, vid, "/tmp/counted", b"x")
    check(r.status == 200, "PUT a small file: %s" % r.body[:200])
    r = get(gw, key, vid, "/tmp/counted")
    check(r.status == 200, "GET it back")
    want = {("GET", "4xx"): 1, ("GET", "2xx"): 1, ("PUT", "2xx"): 1,
            ("PUT", "4xx"): 0}
    got = {k: n(*k) - before[k] for k in before}
    check(got == want, "file routes counted by their real status: %s" % got)


def tenants(gw, a_key, b_key, op_key, vid, every):
    n = counts(gw)
    check_error(put(gw, b_key, vid, "/tmp/every.bin", b"overwritten"), 404,
                "not_found", "tenant B: PUT into A's VM")
    check_error(get(gw, b_key, vid, "/tmp/every.bin"), 404, "not_found",
                "tenant B: GET from A's VM")
    unknown = "0b6f3f0e-4a43-4c1e-9d55-3c2f1e0a9b7d"
    ra = get(gw, b_key, vid, "/tmp/every.bin")
    rb = get(gw, b_key, unknown, "/tmp/every.bin")
    check(ra.json()["error"]["message"].replace(vid, "X") ==
          rb.json()["error"]["message"].replace(unknown, "X"),
          "A's VM and an unknown id give B the same words")
    check(counts(gw) == n, "tenant B's tries enqueued nothing")
    check(get(gw, a_key, vid, "/tmp/every.bin").body == every,
          "A's file is unchanged")
    # through POST /v1/tasks: routed and refused the same way
    r = call(gw, "POST", "/v1/tasks", b_key, {"type": "vm:file_get", "payload": {
        "vm_id": vid, "path": "/tmp/every.bin"}})
    check_error(r, 404, "not_found", "tenant B: vm:file_get on A's VM through "
                "POST /v1/tasks")
    # the worker's second line: a task of tenant "default" (aeth-submit, no
    # gateway) for A's VM is refused there
    r = e2e.submit(gw.env, "-type", "vm:file_get", "-payload",
                   '{"vm_id": "%s", "path": "/tmp/every.bin"}' % vid, "-wait",
                   "-json", expect=None)
    check(r.returncode != 0 and "does not exist" in r.stdout + r.stderr,
          "the worker refuses a vm:file_get of another tenant: %s"
          % (r.stdout + r.stderr)[-300:])
    r = e2e.submit(gw.env, "-type", "vm:file_put", "-payload",
                   '{"vm_id": "%s", "path": "/tmp/every.bin", "data": "eA=="}'
                   % vid, "-wait", "-json", expect=None)
    check(r.returncode != 0 and "does not exist" in r.stdout + r.stderr,
          "the worker refuses a vm:file_put of another tenant")
    check(get(gw, a_key, vid, "/tmp/every.bin").body == every,
          "A's file is still unchanged")
    r = get(gw, op_key, vid, "/tmp/every.bin")
    check(r.status == 200 and r.body == every, "an operator key reads it")


def cli(gw, env, op_key):
    """aeth-submit's generic payload path takes the two types (a VM of
    tenant "default", which aeth-submit's tasks belong to)."""
    r = e2e.submit(env, "-type", "vm:create", "-payload", '{"name": "cli-vm"}',
                   "-wait", "-json")
    vid = json.loads(r.stdout)["result"]["vm_id"]
    r = e2e.submit(env, "-type", "vm:file_put", "-payload", json.dumps({
        "vm_id": vid, "path": "/tmp/cli.txt", "mode": 0o600,
        "data": base64.b64encode(b"cli\0bytes").decode()}), "-wait", "-json")
    check(json.loads(r.stdout)["result"]["size"] == 9,
          "aeth-submit -type vm:file_put writes the file")
    r = e2e.submit(env, "-type", "vm:file_get", "-payload", json.dumps({
        "vm_id": vid, "path": "/tmp/cli.txt"}), "-wait", "-json")
    res = json.loads(r.stdout)["result"]
    check(base64.b64decode(res["data"]) == b"cli\0bytes" and
          res["mode"] == 0o600, "aeth-submit -type vm:file_get reads it back")
    r = e2e.submit(env, "-type", "vm:file_get", "-payload", json.dumps({
        "vm_id": vid, "path": "/tmp/none"}), "-wait", "-json", expect=None)
    check(r.returncode != 0 and "not_found" in r.stdout + r.stderr,
          "aeth-submit: a missing file fails with not_found")
    r = e2e.submit(env, "-type", "vm:file_get", "-payload", json.dumps({
        "vm_id": vid, "path": "tmp"}), expect=None)
    check(r.returncode != 0 and "absolute path" in r.stderr,
          "aeth-submit refuses a relative path before enqueueing")
    r = get(gw, op_key, vid, "/tmp/cli.txt")
    check(r.body == b"cli\0bytes", "the operator key reads the CLI's file")
    e2e.submit(env, "-type", "vm:delete", "-vm-id", vid, "-wait")


def main():
    url, redis, env = e2e.start_services()
    e2e.Worker("gw-files", env)
    gw = gs.Gateway(env, "  quota_rps: 0\n  max_body_bytes: %d\n"
                    "metrics:\n  listen: 127.0.0.1:0\n" % MAX_BODY)
    gw.db = url
    a = gw.key("acme")
    b = gw.key("globex")
    op = gw.key("ops", operator=True)
    r = call(gw, "POST", "/v1/vms", a, {"name": "files-vm"})
    check(r.status == 200 and "vm" in r.json(), "a VM for tenant A: %s"
          % r.body[:300])
    vid = r.json()["vm"]["id"]
    every = round_trips(gw, a, vid)
    errors(gw, a, vid)
    tenants(gw, a, b, op, vid, every)
    cli(gw, env, op)
    check(call(gw, "DELETE", "/v1/vms/%s" % vid, a).status == 200,
          "the VM is deleted")
    check_error(get(gw, a, vid, "/tmp/every.bin"), 409, "conflict",
                "GET from a deleted VM", "deleted")
    gw.stop()
    print("gateway files: all checks passed")


if __name__ == "__main__":
    main()
