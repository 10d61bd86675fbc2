"""Three worker hosts on this machine, sharing one Redis and one
PostgreSQL, each an aeth-worker in a network and mount namespace of its
own (unshare --net --mount: only its own loopback; the other hosts' dirs
hidden under empty tmpfs mounts) with its own state dir and host id
(worker.host_id), reaching the stores on Unix sockets:

- creates spread over the hosts (one slot each, three creates at once);
- executes are routed to the worker that owns the VM, on its host;
- a host's worker crashes (SIGKILL, its VMs keep running) and the host
  comes back with a new worker id: it adopts its own VMs (lib/worker/
  adopt.c, from the janitor) and runs commands in them again; the other
  hosts leave them alone meanwhile;
- a host dies (its worker and its VMMs killed): its VMs are left alone
  while it may come back, and marked failed by the survivors only once
  it is declared dead (worker.host_dead_after_ms, 15 s here), saying
  why; a command for such a VM is then refused; its files were never
  touched from another host.

Needs the guest image and AETH_TEST_DATABASE_URL (scripts/services.sh).

    python3 tests/cluster/test_hosts.py
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
from e2e_support import (SUBMIT, UUID_RE, WORKER, Redis, check, cleanups, create_db,  # noqa: E402
                         die, image_dir, procs, psql, require_binaries, submit, tmp,
                         vm_processes)

NAMES = ["h1", "h2", "h3"]
HOST_DEAD_MS = 15000
LEASE_MS = 3000  # the registry is refreshed every second; dead after 3 s


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Host:
    def __init__(self, name, env):
        self.name = name
        self.dir = os.path.join(tmp, "hosts", name)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.dir, exist_ok=True)  # the state dir the worker makes
        self.env = dict(env, AETH_STATE_DIR=self.state, AETH_WORKER_HOST_ID=name,
                        AETH_WORKER_LEASE_MS=str(LEASE_MS),
                        AETH_WORKER_HOST_DEAD_AFTER_MS=str(HOST_DEAD_MS))
        self.proc = None
        self.wid = None
        self.log = None

    def start(self, wid):
        """aeth-worker -id wid in namespaces of its own."""
        others = [os.path.join(tmp, "hosts", n) for n in NAMES if n != self.name]
        script = ("set -e; mount --make-rprivate /; ip link set lo up; " +
                  "".join("mount -t tmpfs -o size=1m,mode=0 none %s; " % o for o in others) +
                  "exec %s -id %s -concurrency 1" % (WORKER, wid))
        self.wid = wid
        self.log = os.path.join(tmp, wid + ".log")
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", "--fork", "--",
                                      "sh", "-c", script],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        procs.append(self.proc)
        self.wait_for("Listening for tasks on Redis queue...")

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_for(self, pattern, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                die("host %s (worker %s) exited:\n%s" % (self.name, self.wid, self.text()))
            time.sleep(0.1)
        die("host %s did not print %r:\n%s" % (self.name, pattern, self.text()))

    def worker_pid(self):
        kids = children(self.proc.pid)
        return kids[0] if kids else None

    def crash_worker(self):
        """SIGKILL the worker alone: its VMMs go on."""
        pid = self.worker_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def die(self):
        """The whole host stops: its worker and every VMM it ran."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        for pid in vm_processes(under=self.state):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            pid = self.worker_pid()
            if pid:
                os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def vm_row(url, vm_id):
    return json.loads(psql(url, "SELECT row_to_json(v) FROM (SELECT status, "
                           "owner_worker, error, metadata FROM vms WHERE id = '%s') v"
                           % vm_id))


def wait_row(url, vm_id, cond, what, timeout):
    end = time.time() + timeout
    while time.time() < end:
        r = vm_row(url, vm_id)
        if cond(r):
            return r
        time.sleep(0.5)
    die("VM %s: %s: not within %d s (row: %s)" % (vm_id, what, timeout,
                                                   vm_row(url, vm_id)))


def main():
    if os.getuid() != 0:
        die("this test makes namespaces and mounts: run it as root (CI does)")
    if not os.path.exists(os.path.join(image_dir(), "vmlinux")):
        die("no guest image in %s: scripts/build-image.sh" % image_dir())
    require_binaries()
    url = create_db()
    redis = Redis()
    redis.start()
    env = dict(os.environ, AETH_DATABASE_URL=url, AETH_REDIS_URL=redis.url(),
               AETH_IMAGE_DIR=image_dir(),
               AETH_VMM_ACCEL=os.environ.get("AETH_VMM_ACCEL", "auto"))
    env.pop("AETH_QUEUE_WEIGHTS", None)
    hosts = {n: Host(n, env) for n in NAMES}
    cleanups.insert(0, lambda: [h.stop() for h in hosts.values()])
    cleanups.append(lambda: [h.die() for h in hosts.values()])
    for h in hosts.values():
        h.start("w-" + h.name)

    # ---- creates spread over the hosts ----
    ps = [subprocess.Popen([SUBMIT, "-type", "vm:create", "-name", "spread-%d" % i,
                            "-wait", "-timeout", "180s", "-json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env) for i in range(3)]
    vms = {}  # vm id -> owner worker
    for p in ps:
        out, err = p.communicate(timeout=240)
        if p.returncode != 0:
            die("vm:create: %s %s" % (out, err))
        t = json.loads(out)
        vms[t["result"]["vm_id"]] = t["worker_id"]
    owners = sorted(set(vms.values()))
    print("creates went to %s" % ", ".join(owners))
    check(len(owners) >= 2, "three creates spread over %d hosts" % len(owners))
    for vm, owner in vms.items():
        meta = vm_row(url, vm)["metadata"]
        check(meta.get("host") == owner[2:], "VM %s's row names its host %s"
              % (vm[:8], owner[2:]))

    # ---- executes routed to the owner ----
    for vm, owner in vms.items():
        t = json.loads(submit(env, "-type", "vm:execute", "-vm-id", vm, "-cmd", "echo",
                              "-args", "on " + owner, "-wait", "-json").stdout)
        check(t["worker_id"] == owner and t["result"]["stdout"] == "on %s\n" % owner,
              "execute for VM %s ran on its host's worker %s" % (vm[:8], owner))

    by_host = {n: [vm for vm, o in vms.items() if o == "w-" + n] for n in NAMES}
    crashed = next(n for n in NAMES if by_host[n])
    dying = next((n for n in NAMES if by_host[n] and n != crashed), None)

    # ---- a host's worker crashes and comes back under a new id ----
    h = hosts[crashed]
    h.crash_worker()
    print("host %s: worker w-%s killed (its VMs run on)" % (crashed, crashed))
    time.sleep(2)
    h.start("w-%s-2" % crashed)
    for vm in by_host[crashed]:
        r = wait_row(url, vm, lambda r: r["owner_worker"] == "w-%s-2" % crashed,
                     "adopted by the new worker of its host", 60)
        check(r["status"] == "running", "host %s's new worker adopted VM %s, running"
              % (crashed, vm[:8]))
        t = json.loads(submit(env, "-type", "vm:execute", "-vm-id", vm, "-cmd", "echo",
                              "-args", "back", "-wait", "-json").stdout)
        check(t["worker_id"] == "w-%s-2" % crashed and t["result"]["stdout"] == "back\n",
              "a command runs in adopted VM %s" % vm[:8])

    # ---- a host dies ----
    if not dying:
        print("only one host got VMs: the dead-host case is skipped")
        return finish(hosts)
    hosts[dying].die()
    died = time.time()
    print("host %s: worker and VMMs killed" % dying)
    vm_files = [os.path.join(hosts[dying].state, "vms", vm) for vm in by_host[dying]]
    time.sleep(HOST_DEAD_MS / 1000.0 * 0.6)
    for vm in by_host[dying]:
        check(vm_row(url, vm)["status"] == "running",
              "%.0f s after host %s died (worker dead, host not yet declared "
              "dead) its VM %s is left alone" % (time.time() - died, dying, vm[:8]))
    for vm in by_host[dying]:
        r = wait_row(url, vm, lambda r: r["status"] == "failed",
                     "failed by the survivors", HOST_DEAD_MS / 1000.0 + 30)
        waited = time.time() - died
        # declared dead host_dead_after_ms after its last registry refresh,
        # which was up to a refresh interval (1 s) before it died
        check(waited >= HOST_DEAD_MS / 1000.0 - 1.5 and
              "host %s" % dying in (r["error"] or ""),
              "VM %s of dead host %s failed by a survivor after %.0f s: %s"
              % (vm[:8], dying, waited, r["error"]))
        r = submit(env, "-type", "vm:execute", "-vm-id", vm, "-cmd", "true", "-wait",
                   expect=None)
        check(r.returncode != 0, "a command for VM %s of the dead host is refused"
              % vm[:8])
    check(all(os.path.isdir(f) for f in vm_files),
          "the dead host's VM dirs are as it left them (no other host can see them)")
    finish(hosts)


def finish(hosts):
    for h in hosts.values():
        h.stop()
    print("many hosts: all checks passed")


if __name__ == "__main__":
    main()
