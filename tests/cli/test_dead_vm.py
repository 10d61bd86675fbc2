#!/usr/bin/python3
"""A VM whose VMM died leaves nothing behind (issue 12):

- its worker notices (vms row "failed", naming the VMM's exit) and
  removes its state dir; vm:delete of the failed VM completes and the
  row reads "deleted";
- a VMM that dies while its worker is down: the worker, restarted with
  the same id, marks the VM failed and removes its state dir.

Needs what test_e2e.py needs; everything it starts is stopped at the end.
"""
import json
import os
import signal
import time

from e2e_support import Worker, check, die, psql, start_services, state_dir, submit


def create(env, name):
    r = submit(env, "-type", "vm:create", "-name", name, "-wait", "-timeout", "180s",
               "-json")
    return json.loads(r.stdout)["result"]["vm_id"]


def kill_vmm(vm_id):
    with open(os.path.join(state_dir, "vms", vm_id, "vm.json")) as f:
        os.kill(json.load(f)["pid"], signal.SIGKILL)


def wait_until(what, cond, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.2)
    die("%s: not within %d s" % (what, timeout))


def status(url, vm_id):
    return psql(url, "SELECT status FROM vms WHERE id = '%s'" % vm_id)


def main():
    url, redis, env = start_services()
    w = Worker("dead-w1", env)
    a = create(env, "a")
    kill_vmm(a)
    wait_until("the dead VM marked failed", lambda: status(url, a) == "failed")
    check("exited" in psql(url, "SELECT error FROM vms WHERE id = '%s'" % a),
          "a VMM killed under its worker: the vms row is failed, saying it exited")
    wait_until("its state dir removed",
               lambda: not os.path.exists(os.path.join(state_dir, "vms", a)))
    check(True, "and its state dir is removed")
    r = submit(env, "-type", "vm:delete", "-vm-id", a, "-wait", "-timeout", "60s",
               "-json")
    check(json.loads(r.stdout)["status"] == "completed" and status(url, a) == "deleted",
          "vm:delete of the failed VM completes; its row reads deleted")

    b = create(env, "b")
    w.proc.kill()
    w.proc.wait()
    kill_vmm(b)
    time.sleep(0.5)
    check(os.path.exists(os.path.join(state_dir, "vms", b)),
          "the worker is down: the dead VM's state dir is still there")
    w = Worker("dead-w1", env)
    wait_until("the restarted worker marks it failed", lambda: status(url, b) == "failed")
    wait_until("the restarted worker removes its state dir",
               lambda: not os.path.exists(os.path.join(state_dir, "vms", b)))
    check(True, "the restarted worker marks the dead VM failed and removes its dir")
    w.stop()


if __name__ == "__main__":
    main()
