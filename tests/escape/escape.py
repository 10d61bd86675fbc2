"""Helpers of the escape suite: each test attacks one containment rule of
docs/security.md with a real worker, Redis, PostgreSQL and TCG guests,
as a hostile submitter or a hostile guest would, and checks that nothing
reached the host. Built on tests/cli/e2e_support.py (a private Redis, a
fresh database, workers, aeth-submit; everything stopped at exit)."""
import json
import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("AETH_SOURCE_ROOT", "."),
                                "tests", "cli"))
from e2e_support import (UUID_RE, Redis, Worker, check, create_db, die,  # noqa: E402,F401
                         enqueue, psql, require_binaries, services_env,
                         state_dir, submit, task_row, tmp, vm_processes)


def start():
    """A database, a private Redis and the environment for the CLIs."""
    require_binaries()
    url = create_db()
    redis = Redis()
    redis.start()
    return url, redis, services_env(url, redis)


def create_vm(env, name, *flags, expect=0):
    """aeth-submit -type vm:create ... -wait -json: the task's row."""
    r = submit(env, "-type", "vm:create", "-name", name, *flags, "-wait",
               "-timeout", "300s", "-json", expect=expect, timeout=360)
    return json.loads(r.stdout) if r.stdout.strip() else {"error": r.stderr}


def vm_id_of(task):
    if task.get("status") != "completed":
        die("vm:create failed: %s" % task.get("error"))
    return task["result"]["vm_id"]


def sh(env, vm_id, script, timeout_ms=None, expect=None):
    """Run `sh -c script` in the VM through the queue; the task's row."""
    payload = {"vm_id": vm_id, "command": "sh", "args": ["-c", script]}
    if timeout_ms:
        payload["timeout_ms"] = timeout_ms
    r = submit(env, "-type", "vm:execute", "-payload", json.dumps(payload),
               "-wait", "-timeout", "300s", "-json", expect=expect, timeout=360)
    return json.loads(r.stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A TCP server on the host that answers `reply` and counts who came."""

    def __init__(self, reply, host="127.0.0.1", port=None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port or 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                c.sendall(self.reply)
            finally:
                c.close()


def host_addresses():
    """The host's own IPv4 addresses other than loopback."""
    out = []
    for line in os.popen("ip -4 -o addr show 2>/dev/null").read().splitlines():
        m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", line)
        if m and not m.group(1).startswith("127."):
            out.append(m.group(1))
    return out


def qemu_pid(vm_id):
    """The VMM of vm_id (its command line names the VM: -name aeth-ID)."""
    for pid in vm_processes():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"aeth-" + vm_id.encode() in cmd and b"--exec" not in cmd:
            return pid
    die("no VMM process for VM %s" % vm_id)


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
