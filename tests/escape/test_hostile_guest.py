#!/usr/bin/python3
"""A hostile guest against a real worker (TCG guests, aeth-worker,
aeth-submit, private Redis and database): the worker must never block on
a guest that stops talking (docs/worker.md, "When a guest stops
answering").

The guest runs `sh -c "sleep 1; halt -f"`: the agent confirms the start,
then the kernel halts; QEMU keeps running, so the channel stays open and
no exit report ever comes.

(a) vm:execute with "timeout_ms": 3000: the task ends failed within the
    timeout + the exit grace (+ slack), the vms row and vm.json say failed
    with the reason, no QEMU of the VM is left, and a vm:create that
    follows on the same worker (concurrency 1) is served: the slot is free.
(b) the same without "timeout_ms", on a worker whose default command
    timeout is lowered (AETH_LIMITS_EXEC_TIMEOUT_MS=2000): the same end.
(c) SIGTERM to a worker (shutdown grace 2 s, default command timeout of
    10 minutes) while such a guest runs: the process exits within its
    grace + the cancel grace + slack, leaving no QEMU of the VM behind,
    and the VM is recorded failed.

On the code before these deadlines, (a) and (b) never end (the slot waits
for the exit report forever) and (c) leaves the halted QEMU running.
Everything started here is stopped and removed at exit, also on failure
(tests/cli/e2e_support.py).
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get(
    "AETH_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", "..")),
    "tests", "cli"))

from e2e_support import (Worker, check, die, psql,  # noqa: E402
                         start_services, state_dir, submit)

HALT = "sleep 1; halt -f"
EXEC_GRACE_S = 5.0     # AETH_EXEC_WAIT_GRACE_MS
CANCEL_GRACE_S = 3.0   # AETH__EXEC_CANCEL_GRACE_MS
SLACK_S = 7.0          # boot-free scheduling, kill, rows, polling (500 ms)


def create_vm(env, name):
    r = submit(env, "-type", "vm:create", "-name", name, "-wait", "-timeout",
               "180s", "-json", expect=None)
    t = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
    if t.get("status") != "completed":
        die("vm:create %s: %s %s" % (name, r.stdout, r.stderr))
    return t["result"]["vm_id"]


def submit_halt(env, vm_id, timeout_ms=None):
    payload = {"vm_id": vm_id, "command": "sh", "args": ["-c", HALT]}
    if timeout_ms:
        payload["timeout_ms"] = timeout_ms
    r = submit(env, "-type", "vm:execute", "-payload", json.dumps(payload),
               "-json")
    return json.loads(r.stdout)["task_id"]


def wait_task(env, tid, timeout_s):
    r = submit(env, "-status", tid, "-wait", "-timeout", "%ds" % timeout_s,
               "-json", expect=None)
    if not r.stdout.strip().startswith("{"):
        die("task %s did not end within %d s (the worker waits on the "
            "halted guest): %s" % (tid, timeout_s, r.stderr.strip()))
    return json.loads(r.stdout)


def qemu_of(vm_id):
    """PIDs of live processes whose command line names the VM."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/stat" % pid) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if vm_id.encode() in cmd and not zombie:
            pids.append(int(pid))
    return pids


def check_vm_failed(url, vm_id, reason):
    row = psql(url, "SELECT status || '|' || coalesce(error, '') FROM vms "
               "WHERE id = '%s'" % vm_id)
    status, _, error = row.partition("|")
    check(status == "failed" and reason in error,
          "vms row of %s: failed, error says %r (%s)" % (vm_id, reason, error))
    # The worker's janitor removes what is left of a failed VM within about
    # a second (lib/worker/janitor.c): vm.json, if it is still there, says
    # failed with the reason; the row above keeps the reason either way.
    try:
        with open(os.path.join(state_dir, "vms", vm_id, "vm.json")) as f:
            rec = json.load(f)
    except FileNotFoundError:
        rec = None
    check(rec is None or (rec["state"] == "failed" and
                          reason in (rec.get("error") or "")),
          "vm.json of %s: failed with the reason, or cleaned up" % vm_id)
    # kill waits until the VMM is gone, but give /proc a moment
    end = time.time() + 3
    while qemu_of(vm_id) and time.time() < end:
        time.sleep(0.1)
    check(not qemu_of(vm_id), "no QEMU of VM %s is left (%s)" % (vm_id, qemu_of(vm_id)))


def hostile_exec(env, url, vm_id, timeout_ms, timeout_s, label):
    t0 = time.time()
    tid = submit_halt(env, vm_id, timeout_ms)
    limit = timeout_s + EXEC_GRACE_S + SLACK_S
    t = wait_task(env, tid, int(limit) + 20)
    took = time.time() - t0
    print("%s: task ended %.1f s after its submission (timeout %.0f s + "
          "grace %.0f s)" % (label, took, timeout_s, EXEC_GRACE_S))
    check(t["status"] == "failed", "%s: the task failed (%s)" % (label, t["status"]))
    check("no exit report" in (t["error"] or "") and
          "marked failed" in t["error"] and "vm:create" in t["error"],
          "%s: its error says what happened and what to do: %s" % (label, t["error"]))
    check(t["retry_count"] == 0, "%s: not retried" % label)
    check(took <= limit, "%s: ended within timeout + grace + %.0f s slack "
          "(%.1f <= %.1f s)" % (label, SLACK_S, took, limit))
    check_vm_failed(url, vm_id, "no exit report")


def main():
    url, redis, env = start_services()

    # ---- (a) and (b): one worker, concurrency 1, default timeout 2 s ----
    env_ab = dict(env, AETH_LIMITS_EXEC_TIMEOUT_MS="2000")
    w1 = Worker("esc-w1", env_ab)
    vm1 = create_vm(env, "hostile-a")
    hostile_exec(env, url, vm1, 3000, 3.0, "(a) timeout_ms 3000")
    w1.wait_for(r"✗ VM %s failed" % vm1, 10)
    vm2 = create_vm(env, "after-a")
    check(True, "(a) the next vm:create on the same worker (concurrency 1) "
          "was served: the slot was freed")
    hostile_exec(env, url, vm2, None, 2.0, "(b) no timeout_ms, worker default 2000")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm2, "-cmd", "true",
               expect=1)
    check("is failed, not running" in r.stderr,
          "(b) a later execute in the failed VM is refused: %s" % r.stderr.strip())
    w1.stop()

    # ---- (c): SIGTERM while the guest is halted ----
    grace_s = 2.0
    env_c = dict(env, AETH_WORKER_SHUTDOWN_TIMEOUT_MS=str(int(grace_s * 1000)))
    env_c.pop("AETH_LIMITS_EXEC_TIMEOUT_MS", None)
    w2 = Worker("esc-w2", env_c)
    vm3 = create_vm(env, "hostile-c")
    submit_halt(env, vm3)
    w2.wait_for(r"Executing in VM %s" % vm3, 30)
    time.sleep(3)  # the command's `sleep 1`, then the halt
    check(qemu_of(vm3), "(c) the halted guest's QEMU runs before the SIGTERM")
    t0 = time.time()
    w2.proc.send_signal(signal.SIGTERM)
    limit = grace_s + CANCEL_GRACE_S + SLACK_S
    try:
        rc = w2.proc.wait(timeout=limit + 30)
    except Exception:
        die("(c) the worker did not exit %.0f s after SIGTERM:\n%s"
            % (limit + 30, w2.text()))
    took = time.time() - t0
    print("(c) worker exited %.1f s after SIGTERM (grace %.0f s + cancel "
          "grace %.0f s)" % (took, grace_s, CANCEL_GRACE_S))
    check(rc == 0, "(c) the worker exited with 0 after SIGTERM (%d)" % rc)
    check(took <= limit, "(c) within grace + cancel grace + %.0f s slack "
          "(%.1f <= %.1f s)" % (SLACK_S, took, limit))
    check("did not return after the grace period" not in w2.text(),
          "(c) every handler returned")
    check_vm_failed(url, vm3, "did not end the command")
    print("all escape checks passed")


if __name__ == "__main__":
    main()
