#!/usr/bin/env python3
"""aetherium.Gateway, the Python client of the HTTP API, against a real
aeth-gateway, worker, Redis, PostgreSQL and TCG guest: the seed's
walkthrough, output streamed line by line while the command runs, exact
bytes of non-UTF-8 output, tasks (submit, wait, list, live output,
cancel), files put and read back byte-exact, and every refusal raised as the exception a user catches
(NotFound across tenants, Unauthorized for a revoked key, Forbidden,
QuotaExceeded, InvalidArgument), over TCP and over a Unix socket."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402

e2e = gs.e2e
check = e2e.check
SRC = os.environ.get("AETH_SOURCE_ROOT",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
os.environ.setdefault("AETH_LIBRARY", os.path.join(e2e.BUILD, "lib", "libaetherium.so.0"))
sys.path.insert(0, os.path.join(SRC, "bindings", "python"))
import aetherium  # noqa: E402
from aetherium import Gateway  # noqa: E402


def raises(cls, fn, what, code=None):
    """fn() raises cls (with the API error code `code`); the exception."""
    try:
        fn()
    except cls as e:
        if code and getattr(e, "error_code", None) != code:
            e2e.die("%s: %s with code %r, wanted %r" % (what, cls.__name__,
                                                        getattr(e, "error_code", None), code))
        check(True, "%s: %s (%s)" % (what, cls.__name__, e))
        return e
    except Exception as e:  # noqa: BLE001 - the wrong class is the failure
        e2e.die("%s: raised %r, wanted %s" % (what, e, cls.__name__))
    e2e.die("%s: no exception, wanted %s" % (what, cls.__name__))
    return None


def walkthrough(gw):
    vm = gw.create_vm(name="py-demo")
    check(vm["status"] == "running" and vm["tenant"] == "acme",
          "create_vm waits for a running VM of the key's tenant")
    r = gw.exec(vm["id"], "echo", ["Hello from VM"])
    check(r.exit_code == 0 and r.stdout == "Hello from VM\n" and r.ok,
          "exec echo: exit 0 and the line (%r)" % r)
    r = gw.exec(vm["id"], "ls", ["-la", "/"])
    check(r.exit_code == 0 and "bin" in r.stdout, "exec ls -la / lists the root")
    r = gw.exec(vm["id"], "sh", ["-c", "printf '\\377\\000\\001'; exit 3"])
    check(r.exit_code == 3 and not r.ok and r.stdout_bytes == b"\xff\x00\x01",
          "a non-zero exit is a result, and non-UTF-8 bytes come back exact "
          "(%r)" % r.stdout_bytes)
    r = gw.exec(vm["id"], "sleep", ["30"], timeout=1)
    check(r.timed_out and not r.ok, "a command past its timeout reads timed_out")
    r = gw.exec(vm["id"], "sh", ["-c", "cat; echo $GREETING; pwd"],
                stdin="from stdin\n", env={"GREETING": "hi"}, cwd="/tmp")
    check(r.stdout == "from stdin\nhi\n/tmp\n", "stdin, env and cwd reach the "
          "command (%r)" % r.stdout)
    check(any(v["id"] == vm["id"] for v in gw.vms()), "vms() lists it")
    check(gw.vm(vm["id"])["name"] == "py-demo", "vm() reads it")
    return vm["id"]


def streaming(gw, vid):
    cmd = "for i in 1 2 3; do echo line$i; sleep 1; done; echo oops >&2; exit 5"
    got = []
    for ev in gw.exec_stream(vid, "sh", ["-c", cmd]):
        got.append((time.monotonic(), ev))
    outs = [(t, ev) for t, ev in got if ev.stream == "stdout"]
    text = "".join(ev.data for _, ev in outs)
    check(text == "line1\nline2\nline3\n", "exec_stream yields stdout (%r)" % text)
    check(outs[-1][0] - outs[0][0] >= 1.5, "the lines arrived as the command "
          "wrote them (%.2f s from first to last)" % (outs[-1][0] - outs[0][0]))
    check(any(ev.stream == "stderr" and "oops" in ev.data for _, ev in got),
          "stderr is streamed too")
    last = got[-1][1]
    check(last.stream == "exit" and last.exit_code == 5,
          "the exit event comes last with the exit code (%r)" % last)


def tasks(gw, vid):
    tid = gw.submit("vm:execute", {"vm_id": vid, "command": "sh",
                                   "args": ["-c", "echo a; sleep 1; echo b"],
                                   "live_output": True})
    events = list(gw.output(tid, timeout=120))
    check("".join(e.data for e in events if e.stream == "stdout") == "a\nb\n"
          and events[-1].stream == "exit", "output() follows a submitted task")
    t = gw.wait(tid, timeout=60)
    check(t.status == "completed" and t.result["exit_code"] == 0,
          "wait() gives the finished Task")
    check(gw.task(tid).id == tid, "task() reads it")
    check(any(x.id == tid for x in gw.tasks(type="vm:execute", vm_id=vid)),
          "tasks() filters by type and VM")
    long = gw.submit("vm:execute", {"vm_id": vid, "command": "sleep", "args": ["60"]})
    end = time.time() + 60
    while gw.task(long).status != "running" and time.time() < end:
        time.sleep(0.2)
    time.sleep(1)  # the command started in the guest
    check(gw.cancel(long) == "cancelling", "cancel() a running task: cancelling")
    t = gw.wait(long, timeout=60)
    check(t.status == "completed" and t.result["exit_code"] == 137,
          "the cancelled sleep was killed (exit 137): %s %r" % (t.status, t.result))
    raises(aetherium.InvalidState, lambda: gw.cancel(long),
           "cancel() of a finished task", "conflict")
    raises(aetherium.Timeout, lambda: gw.wait(
        gw.submit("vm:execute", {"vm_id": vid, "command": "sleep", "args": ["5"]}),
        timeout=0.5), "wait() past its timeout", "timeout")


def files(gw, other, vid):
    """put_file / get_file over PUT / GET /v1/vms/{id}/files."""
    every = bytes(range(256)) * 8 + b"\0"
    out = gw.put_file(vid, "/tmp/py.bin", every, mode=0o750)
    check(out["size"] == len(every) and out["mode"] == 0o750 and
          out["path"] == "/tmp/py.bin", "put_file answers size and mode (%r)"
          % {k: out[k] for k in ("size", "mode")})
    check(gw.exec(vid, "stat", ["-c", "%s %a", "/tmp/py.bin"]).stdout ==
          "%d 750\n" % len(every), "the guest file has the bytes' size and mode")
    check(gw.get_file(vid, "/tmp/py.bin") == every,
          "get_file gives all 256 byte values back")
    gw.put_file(vid, "/tmp/py.txt", "text é")
    check(gw.get_file(vid, "/tmp/py.txt") == "text é".encode(),
          "put_file takes str as UTF-8")
    raises(aetherium.NotFound, lambda: gw.get_file(vid, "/tmp/none"),
           "get_file of a missing file", "not_found")
    raises(aetherium.NotFound, lambda: gw.put_file(vid, "/nodir/x", b"x"),
           "put_file into a missing directory", "not_found")
    raises(aetherium.InvalidArgument, lambda: gw.get_file(vid, "/tmp"),
           "get_file of a directory", "is_a_directory")
    raises(aetherium.InvalidArgument, lambda: gw.get_file(vid, "tmp/x"),
           "get_file of a relative path", "invalid_argument")
    raises(aetherium.NotFound, lambda: other.get_file(vid, "/tmp/py.bin"),
           "get_file in another tenant's VM", "not_found")
    raises(aetherium.NotFound, lambda: other.put_file(vid, "/tmp/py.bin", b"x"),
           "put_file in another tenant's VM", "not_found")
    check(gw.get_file(vid, "/tmp/py.bin") == every, "and the file is unchanged")
    raises(aetherium.TooBig, lambda: gw.put_file(vid, "/tmp/big", b"\0" * (2 << 20)),
           "put_file past the gateway's max_body_bytes (1 MiB)", "too_large")
    raises(aetherium.TooBig, lambda: gw.put_file(vid, "/tmp/big",
                                                 b"\0" * (aetherium.gateway.FILE_MAX + 1)),
           "put_file past 8 MiB, refused before sending")


def refusals(gw, other, op, vid, admin):
    raises(aetherium.NotFound, lambda: other.vm(vid), "another tenant's VM", "not_found")
    raises(aetherium.NotFound, lambda: other.exec(vid, "true"),
           "exec in another tenant's VM", "not_found")
    raises(aetherium.NotFound, lambda: other.delete_vm(vid),
           "delete another tenant's VM", "not_found")
    raises(aetherium.NotFound, lambda: gw.vm("00000000-0000-4000-8000-000000000000"),
           "an id that does not exist", "not_found")
    check(all(v["tenant"] == "globex" for v in other.vms()),
          "the other tenant lists only its own VMs")
    raises(aetherium.Forbidden, gw.workers, "workers() with a tenant key", "forbidden")
    check(len(op.workers()) >= 1 and any(q["name"] == "default" for q in op.queues()),
          "an operator key reads workers and queues")
    raises(aetherium.InvalidArgument, lambda: gw.exec(vid, ""),
           "an empty command", "invalid_argument")
    raises(aetherium.InvalidArgument, lambda: gw.submit("no:such:type"),
           "an unknown task type")
    raises(aetherium.gateway.QuotaExceeded,
           lambda: gw.create_vm(memory_mb=1 << 20), "a VM over the memory quota",
           "quota_exceeded")
    raises(aetherium.InvalidArgument, lambda: Gateway("ftp://x", "k"),
           "a URL that is not http(s) or unix")
    keys = json.loads(admin("keys", "list"))
    kid = [k["id"] for k in keys if k["tenant"] == "globex"][0]
    admin("keys", "revoke", kid)
    raises(aetherium.Unauthorized, other.whoami, "a revoked key", "unauthorized")
    raises(aetherium.Unavailable,
           lambda: Gateway("http://127.0.0.1:1", "k", timeout=5).whoami(),
           "a gateway that is not there")


def main():
    url, redis, env = e2e.start_services()
    e2e.Worker("gwpy-w1", env)
    gw_proc = gs.Gateway(env, "  quota_memory_mb: 4096\n  quota_rps: 0\n")
    a, b = gw_proc.key("acme"), gw_proc.key("globex")
    op = gw_proc.key("ops", operator=True)
    gw = Gateway(gw_proc.base, a, timeout=30)
    check(gw.health() and gw.whoami()["tenant"] == "acme",
          "health() and whoami() over TCP")
    other = Gateway(gw_proc.base, b, timeout=30)
    opg = Gateway(gw_proc.base, op, timeout=30)

    vid = walkthrough(gw)
    streaming(gw, vid)
    tasks(gw, vid)
    files(gw, other, vid)
    refusals(gw, other, opg, vid, gw_proc.admin)
    t = gw.delete_vm(vid)
    check(t.status == "completed" and gw.vm(vid)["status"] == "deleted",
          "delete_vm waits and the VM reads deleted")
    gw_proc.stop()

    # the same gateway on a Unix socket (gateway.listen: unix:PATH)
    sock = os.path.join(e2e.tmp, "gw.sock")
    cfg = os.path.join(e2e.tmp, "gateway-unix.yaml")
    with open(cfg, "w") as f:
        f.write("gateway:\n  listen: unix:%s\n" % sock)
    with open(os.path.join(e2e.tmp, "gateway-unix.log"), "w") as log:
        p = subprocess.Popen([gs.GATEWAY, "-config", cfg], stdout=log,
                             stderr=subprocess.STDOUT, env=env)
    e2e.procs.append(p)
    end = time.time() + 30
    while not os.path.exists(sock) and p.poll() is None and time.time() < end:
        time.sleep(0.05)
    ug = Gateway("unix:" + sock, a, timeout=30)
    check(ug.whoami()["tenant"] == "acme", "whoami() over a Unix socket")
    p.terminate()
    p.wait(timeout=30)
    print("python gateway client: all checks passed")


if __name__ == "__main__":
    main()
