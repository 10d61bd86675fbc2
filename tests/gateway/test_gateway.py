#!/usr/bin/env python3
"""aeth-gateway end to end: a real gateway, worker, Redis, PostgreSQL and
TCG guests, driven over HTTP (urllib, and curl where it is the tool a
user would take). The seed's walkthrough over HTTP; two tenants who cannot
touch each other's VMs and tasks on any route; output streamed line by
line while the command runs; a revoked key; quotas and rate limits;
malformed JSON, an oversized body, a slow client cut off, 1000 idle
connections that do not stop service (docs/gateway.md)."""
import json
import os
import resource
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402
from gw_support import call, check_error  # noqa: E402

e2e = gs.e2e
check = e2e.check


def walkthrough(gw, key):
    """The seed's demo over HTTP: create, echo hello, ls -la, delete."""
    r = call(gw, "POST", "/v1/vms", key, {"name": "demo-vm"})
    check(r.status == 200 and "vm" in r.json(),
          "POST /v1/vms waits for the VM: %s" % r.body[:300])
    vm = r.json()["vm"]
    check(vm["status"] == "running" and vm["tenant"] == "acme",
          "the VM runs and belongs to the key's tenant")
    vid = vm["id"]
    r = call(gw, "POST", "/v1/vms/%s/exec" % vid, key,
             {"command": "echo", "args": ["Hello from Aetherium"]})
    j = r.json()
    check(r.status == 200 and j.get("exit_code") == 0 and
          j.get("stdout") == "Hello from Aetherium\n",
          "exec echo answers exit 0 and the line: %s" % r.body[:200])
    r = call(gw, "POST", "/v1/vms/%s/exec" % vid, key,
             {"command": "ls", "args": ["-la", "/"], "env": {"SECRET": "s3cr3t"}})
    j = r.json()
    check(j.get("exit_code") == 0 and "bin" in j.get("stdout", ""),
          "exec ls -la / lists the guest's root")
    env_col = e2e.psql(gw.db, "SELECT env::text FROM executions WHERE task_id = "
                       "'%s'" % j["task_id"])
    check("s3cr3t" not in env_col and "SECRET" in env_col,
          "the executions row keeps the env name, not its value: %s" % env_col)
    return vid, j["task_id"]


def streaming(gw, key, vid):
    """NDJSON lines arrive while the command runs, the exit status last."""
    cmd = "for i in 1 2 3 4; do echo line$i; sleep 1; done; echo err >&2; exit 3"
    p = subprocess.Popen(["curl", "-sN", "-H", "Authorization: Bearer " + key,
                          "-d", json.dumps({"command": "sh", "args": ["-c", cmd],
                                            "stream": "ndjson"}),
                          gw.base + "/v1/vms/%s/exec" % vid],
                         stdout=subprocess.PIPE, text=True)
    got = []
    for line in p.stdout:
        if line.strip():
            got.append((time.monotonic(), json.loads(line)))
    p.wait()
    outs = [(t, o) for t, o in got if o.get("stream") == "stdout"]
    text = "".join(o["data"] for _, o in outs)
    check(text == "line1\nline2\nline3\nline4\n", "streamed stdout: %r" % text)
    check(len(outs) >= 3, "stdout came in %d pieces" % len(outs))
    spread = outs[-1][0] - outs[0][0]
    check(spread >= 1.5, "the pieces arrived %.2f s apart, as the command "
          "printed them (not all at the end)" % spread)
    check(any(o.get("stream") == "stderr" for _, o in got), "stderr streamed")
    check(got[-1][1].get("exit_code") == 3, "the exit status comes last: %s"
          % got[-1][1])

    # Server-Sent Events of the same, through GET /v1/tasks/ID/output
    r = call(gw, "POST", "/v1/tasks", key, {"type": "vm:execute", "payload": {
        "vm_id": vid, "command": "sh", "args": ["-c", "echo a; sleep 1; echo b"],
        "live_output": True}})
    check(r.status == 202, "POST /v1/tasks takes a vm:execute")
    tid = r.json()["task_id"]
    r = call(gw, "GET", "/v1/tasks/%s/output?format=sse" % tid, key)
    body = r.body.decode()
    check(r.headers.get("Content-Type", "").startswith("text/event-stream") and
          "event: stdout" in body and "event: exit" in body and
          body.rstrip().endswith("}"), "SSE output with the exit event last")


def submit_follow(gw, op):
    """aeth-submit -follow prints a command's output as it runs and exits
    with its code (a VM of tenant "default", made with the operator key:
    aeth-submit names no tenant)."""
    r = call(gw, "POST", "/v1/vms", op, {"name": "follow", "tenant": "default"})
    vid = r.json()["vm"]["id"]
    p = subprocess.Popen([e2e.SUBMIT, "-type", "vm:execute", "-vm-id", vid,
                          "-cmd", "sh", "-args",
                          "-c 'for i in 1 2 3; do echo n$i; sleep 1; done; exit 4'",
                          "-follow"], stdout=subprocess.PIPE, text=True,
                         env=gw.env)
    lines = [(time.monotonic(), line) for line in p.stdout]
    p.wait()
    text = "".join(l for _, l in lines)
    check(text == "n1\nn2\nn3\n" and p.returncode == 4,
          "aeth-submit -follow printed the lines and exited 4 (%r, %d)"
          % (text, p.returncode))
    check(lines[-1][0] - lines[0][0] >= 1.5, "the lines came as printed "
          "(%.2f s apart)" % (lines[-1][0] - lines[0][0]))
    call(gw, "DELETE", "/v1/vms/" + vid, op)


def many_waits(gw, key, vid):
    """More waits than pooled connections (gateway.connections 8): all end,
    and requests are served meanwhile."""
    import threading
    results = []

    def one():
        r = call(gw, "POST", "/v1/vms/%s/exec" % vid, key,
                 {"command": "sleep", "args": ["1"]}, timeout=120)
        j = r.json()
        results.append(j.get("exit_code", j))
    ts = [threading.Thread(target=one) for _ in range(12)]
    for t in ts:
        t.start()
    time.sleep(1.5)
    t0 = time.monotonic()
    r = call(gw, "GET", "/v1/whoami", key, timeout=10)
    took = time.monotonic() - t0
    for t in ts:
        t.join()
    check(r.status == 200 and took < 2, "a request during 12 waits is served "
          "in %.0f ms" % (took * 1000))
    check(results == [0] * 12, "12 concurrent exec waits all ended: %s"
          % results)


def cancel(gw, key, vid):
    """A running command is killed by POST /v1/tasks/ID/cancel."""
    r = call(gw, "POST", "/v1/tasks", key, {"type": "vm:execute", "payload": {
        "vm_id": vid, "command": "sleep", "args": ["120"]}})
    tid = r.json()["task_id"]
    end = time.time() + 60
    while time.time() < end and call(gw, "GET", "/v1/tasks/" + tid,
                                     key).json()["status"] != "running":
        time.sleep(0.2)
    time.sleep(1)  # the command started in the guest
    t0 = time.monotonic()
    r = call(gw, "POST", "/v1/tasks/%s/cancel" % tid, key)
    check(r.status == 202 and r.json()["status"] == "cancelling",
          "cancel of a running task: 202 cancelling")
    r = call(gw, "GET", "/v1/tasks/%s/wait?timeout_ms=30000" % tid, key)
    took = time.monotonic() - t0
    j = r.json()
    check(j.get("status") == "completed" and j["result"]["exit_code"] == 137
          and took < 15, "the sleep 120 was killed (exit 137) %.1f s after "
          "the cancel" % took)
    check_error(call(gw, "POST", "/v1/tasks/%s/cancel" % tid, key), 409,
                "conflict", "cancel of a finished task")


def tenants(gw, a_key, b_key, op_key, a_vm, a_task):
    """Tenant B on every route that names A's VM or task: 404, as for an
    id that does not exist; lists without A's rows; the operator sees both."""
    routes = [("GET", "/v1/vms/%s" % a_vm, None),
              ("POST", "/v1/vms/%s/exec" % a_vm, {"command": "true"}),
              ("DELETE", "/v1/vms/%s" % a_vm, None),
              ("GET", "/v1/tasks/%s" % a_task, None),
              ("GET", "/v1/tasks/%s/wait" % a_task, None),
              ("GET", "/v1/tasks/%s/output" % a_task, None),
              ("POST", "/v1/tasks/%s/cancel" % a_task, None)]
    for method, path, body in routes:
        check_error(call(gw, method, path, b_key, body), 404, "not_found",
                    "tenant B: %s %s" % (method, path.replace(a_vm, "A-VM")
                                         .replace(a_task, "A-TASK")))
    r = call(gw, "POST", "/v1/tasks", b_key, {"type": "vm:execute", "payload": {
        "vm_id": a_vm, "command": "true"}})
    check_error(r, 404, "not_found", "tenant B: vm:execute on A's VM through "
                "POST /v1/tasks")
    # the worker's second line: a task of tenant "default" (aeth-submit with
    # the database's credentials, no tenant) on A's VM is refused there
    r = e2e.submit(gw.env, "-type", "vm:execute", "-vm-id", a_vm, "-cmd",
                   "true", "-wait", "-json", expect=None)
    check(r.returncode != 0 and "does not exist" in r.stdout + r.stderr,
          "the worker refuses a task of another tenant on A's VM")
    r = call(gw, "GET", "/v1/vms", b_key)
    check(r.status == 200 and all(v["tenant"] == "globex" for v in r.json())
          and a_vm not in r.body.decode(), "B's VM list has none of A's")
    r = call(gw, "GET", "/v1/tasks?limit=1000", b_key)
    check(a_task not in r.body.decode(), "B's task list has none of A's")
    r = call(gw, "GET", "/v1/vms/%s" % a_vm, op_key)
    check(r.status == 200, "an operator key sees A's VM")
    check_error(call(gw, "POST", "/v1/vms", op_key, {"tenant": "nope"}), 404,
                "not_found", "an operator naming a tenant that does not exist",
                "does not exist")
    check_error(call(gw, "GET", "/v1/workers", a_key), 403, "forbidden",
                "a tenant key on /v1/workers")
    r = call(gw, "GET", "/v1/workers", op_key)
    check(r.status == 200 and len(r.json()) >= 1, "the operator lists workers")
    r = call(gw, "GET", "/v1/queues", op_key)
    check(r.status == 200 and any(q["name"] == "default" for q in r.json()),
          "the operator reads queue stats")


def quotas(gw, key):
    """Over a limit: 403 naming it, nothing recorded or enqueued; over the
    request rate: 429."""
    gw.admin("tenants", "set", "acme", "-max-vms", "1")
    time.sleep(5.5)  # the gateway re-reads limits every 5 s
    before = e2e.psql(gw.db, "SELECT count(*) FROM tasks")
    r = call(gw, "POST", "/v1/vms", key, {"name": "second"})
    check_error(r, 403, "quota_exceeded", "a second VM with max_vms 1",
                "max_vms 1")
    check(e2e.psql(gw.db, "SELECT count(*) FROM tasks") == before,
          "nothing was recorded or enqueued")
    gw.admin("tenants", "set", "acme", "-max-vms", "5", "-max-vcpus", "1")
    time.sleep(5.5)
    check_error(call(gw, "POST", "/v1/vms", key, {"name": "big", "vcpus": 2}),
                403, "quota_exceeded", "a VM of 2 vCPUs with max_vcpus 1",
                "max_vcpus")
    gw.admin("tenants", "set", "acme", "-max-rps", "3")
    time.sleep(5.5)
    codes = [call(gw, "GET", "/v1/whoami", key).status for _ in range(20)]
    check(429 in codes and codes[0] == 200, "20 quick requests at max_rps 3: "
          "some answered 429 (%d of 20)" % codes.count(429))
    r = call(gw, "GET", "/v1/whoami", key)
    if r.status == 429:
        check_error(r, 429, "rate_limited", "over the rate", "max_rps")
    gw.admin("tenants", "set", "acme", "-max-rps", "0")
    time.sleep(5.5)


def hostile(gw, key):
    """Malformed JSON, an oversized body, bad keys, a slow client."""
    check_error(call(gw, "POST", "/v1/vms", key, raw=b'{"name": '), 400,
                "invalid_json", "a truncated JSON body")
    check_error(call(gw, "POST", "/v1/vms", key, raw=b'[1,2]'), 400,
                "invalid_json", "a JSON array body")
    check_error(call(gw, "POST", "/v1/vms", key, {"name": 5}), 400,
                "invalid_argument", "a name that is a number")
    # a 2 MiB body announced: the answer comes before the body is sent
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(b"POST /v1/vms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              key.encode() + b"\r\nContent-Length: %d\r\n\r\n" % (2 << 20) +
              b"x" * 1000)
    head = s.recv(4096).decode(errors="replace")
    s.close()
    check(head.startswith("HTTP/1.1 413") and "too_large" in head or
          head.startswith("HTTP/1.1 413"), "a 2 MiB body: %s" % head.split("\r\n")[0])
    before = call(gw, "GET", "/v1/tasks?limit=10000", key).body.count(b'"id"')
    for field, value, words in (("max_retries", 1000, "from 0 to 100"),
                                ("priority", 1.5, "from -1000 to 1000"),
                                ("timeout_ms", -1, "from 0 to 86400000"),
                                ("max_retries", "3", "whole number")):
        check_error(call(gw, "POST", "/v1/tasks", key,
                         {"type": "vm:delete", "payload": {}, field: value}),
                    400, "invalid_argument", "POST /v1/tasks with %s %r" %
                    (field, value), words)
    check(call(gw, "GET", "/v1/tasks?limit=10000", key).body.count(b'"id"') ==
          before, "the refused submits enqueued nothing")
    check_error(call(gw, "GET", "/v1/vms"), 401, "unauthorized", "no key")
    check_error(call(gw, "GET", "/v1/vms", "aeth_" + "A" * 43), 401,
                "unauthorized", "a made-up key")
    check_error(call(gw, "GET", "/v1/vms/not-a-uuid", key), 404, "not_found",
                "a VM id that is no UUID")

    # slowloris: a request line and then a header byte now and then
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    closed = False
    try:
        s.settimeout(1)
        while time.monotonic() - t0 < 30:
            try:
                s.sendall(b"X")
                if s.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
    finally:
        s.close()
    took = time.monotonic() - t0
    check(closed and took < 15, "a client sending a byte a second is cut off "
          "(after %.1f s; gateway.timeout_s 3)" % took)


def idle_connections(gw, key):
    """1000 connections that send nothing do not stop service."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    socks = []
    try:
        for _ in range(1000):
            socks.append(socket.create_connection(("127.0.0.1", gw.port)))
        t0 = time.monotonic()
        r = call(gw, "GET", "/v1/whoami", key, timeout=10)
        took = time.monotonic() - t0
        check(r.status == 200, "with 1000 idle connections open, a request is "
              "served (%.0f ms)" % (took * 1000))
    finally:
        for s in socks:
            s.close()


def main():
    url, redis, env = e2e.start_services()
    w = e2e.Worker("gw-w1", env)
    gw = gs.Gateway(env, "  timeout_s: 3\n  quota_rps: 0\n")
    gw.db = url
    check(call(gw, "GET", "/v1/health").json() == {"status": "ok"},
          "GET /v1/health answers without a key")
    a = gw.key("acme")
    b = gw.key("globex")
    op = gw.key("ops", operator=True)
    check(a.startswith("aeth_") and len(a) == 48, "a key is aeth_ + 43 chars")
    check(e2e.psql(url, "SELECT count(*) FROM api_keys WHERE key_sha256 = "
                   "encode(sha256('%s'::bytea), 'hex')" % a) == "1" and
          a not in e2e.psql(url, "SELECT string_agg(key_sha256 || prefix, ',') "
                            "FROM api_keys"), "only the key's SHA-256 is stored")
    r = call(gw, "GET", "/v1/whoami", a)
    check(r.json()["tenant"] == "acme", "whoami names the key's tenant")

    vid, task = walkthrough(gw, a)
    streaming(gw, a, vid)
    cancel(gw, a, vid)
    many_waits(gw, a, vid)
    submit_follow(gw, op)
    tenants(gw, a, b, op, vid, task)
    hostile(gw, a)
    idle_connections(gw, a)
    quotas(gw, a)

    r = call(gw, "DELETE", "/v1/vms/%s" % vid, a)
    check(r.status == 200 and r.json().get("status") == "completed",
          "DELETE /v1/vms/ID waits for the delete: %s" % r.body[:200])
    check(call(gw, "GET", "/v1/vms/%s" % vid, a).json()["status"] == "deleted",
          "the VM is recorded deleted")

    kid = json.loads(gw.admin("keys", "list"))
    a_id = [k["id"] for k in kid if a.startswith(k["prefix"]) and
            k["tenant"] == "acme"][0]
    gw.admin("keys", "revoke", a_id)
    check_error(call(gw, "GET", "/v1/whoami", a), 401, "unauthorized",
                "the revoked key, on its next request")
    gw.stop()
    print("gateway e2e: all checks passed")


if __name__ == "__main__":
    main()
