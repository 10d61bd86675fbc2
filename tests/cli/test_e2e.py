#!/usr/bin/python3
"""End-to-end tests through the two CLIs, against real services and guests.

- the seed's walkthrough with TWO workers: create -> execute echo -> execute
  ls -> delete, checking what both CLIs print, that executes reach the worker
  owning the VM, and the rows in vms, tasks and executions;
- bad input: missing -cmd, unknown type, malformed payload, bad and unknown VM
  ids, execute on a deleted VM: each a clear error and a failed task row;
- graceful stop: SIGTERM ends a worker with status 0;
- a worker killed with SIGKILL during vm:create: another worker completes the
  task (recorded once), and the killed worker's id, restarted, reconciles and
  cleans up the VM it left behind;
- Redis restarted under a running worker: it reconnects and goes on;
- tasks put straight into the queue (tests/cli/enqueue.c, the queue API):
  malformed JSON, missing fields, unknown type, unknown VM: the worker
  fails each at once with the reason (dead in the queue, no retry) and
  keeps running; a vm:execute for a VM another worker owns is forwarded
  once to worker:<owner> and runs there; a task already forwarded once
  that lands on a non-owner again fails instead of bouncing.
- the worker registry: aeth-submit -list workers; a custom type (a worker
  with a demo:echo handler, tests/cli/custom_worker.c) is accepted while
  that worker runs and refused ("no live worker handles it") otherwise;
  an execute for a VM whose owner was stopped fails at submit and, put
  straight into a queue, at the worker that would forward it.

Needs: AETH_TEST_DATABASE_URL (scripts/services.sh start; eval "$(scripts/
services.sh env)"), redis-server, qemu-system-x86_64, the guest image
(scripts/build-image.sh). Each run uses a fresh database, a private
redis-server and its own VM state dir; every process it starts is stopped at
the end, also on failure.
"""
import json
import re
import time
import uuid

from e2e_support import (UUID_RE, Worker, check, enqueue, psql, redis_cli,
                         start_services, submit, task_row, workers)


def main():
    url, redis, env = start_services()

    # ---- the walkthrough, two workers ----
    w1 = Worker("e2e-w1", env)
    w2 = Worker("e2e-w2", env)
    check("Registered handlers for: vm:create, vm:execute, vm:delete, "
          "vm:file_put, vm:file_get" in w1.text(),
          "worker prints its handlers")
    r = submit(env, "-type", "vm:create", "-name", "demo-vm")
    m = re.search(r"✓ VM creation task submitted: (%s)\n  Name: demo-vm\n"
                  r"  Task will create a QEMU VM with 1 vCPU and 256MB RAM" % UUID_RE,
                  r.stdout)
    check(m is not None, "aeth-submit prints the seed's lines for vm:create")
    create_id = m.group(1)
    r = submit(env, "-status", create_id, "-wait", "-timeout", "120s", "-json")
    created = json.loads(r.stdout)
    check(created["status"] == "completed", "vm:create completed")
    vm_id = created["result"]["vm_id"]
    res = created["result"]
    check({k: res[k] for k in ("vm_id", "name", "status")} ==
          {"vm_id": vm_id, "name": "demo-vm", "status": "running"} and
          res.get("origin") in ("snapshot", "cold") and res.get("ready_ms", -1) > 0 and
          set(res) == {"vm_id", "name", "status", "origin", "ready_ms"},
          "vm:create result is the seed's JSON, with how the VM was made (%s)"
          % res.get("origin"))
    owner = created["worker_id"]
    wo = w1 if owner == w1.id else w2
    wo.wait_for(r"Creating VM: demo-vm \(vcpu=1, mem=256MB\)\n✓ VM created: %s\n"
                r"✓ VM started\nTask %s completed in \d+\.\ds" % (vm_id, create_id), 5)
    check(True, "worker prints the seed's lines for vm:create")

    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "echo",
               "-args", "Hello from VM", "-wait", "-json")
    t = json.loads(r.stdout)
    seed = {k: t["result"][k] for k in ("vm_id", "exit_code", "stdout", "stderr")}
    check(seed == {"vm_id": vm_id, "exit_code": 0, "stdout": "Hello from VM\n",
                   "stderr": ""}, "echo: the seed's result JSON")
    check(t["result"]["stdout_truncated"] is False and
          t["result"]["stderr_truncated"] is False and
          t["result"]["timed_out"] is False and t["result"]["signal"] is None and
          isinstance(t["result"]["duration_ms"], int) and
          "stdout_b64" not in t["result"],
          "echo: the result adds truncation, timeout, signal and duration")
    check(t["worker_id"] == owner, "execute ran on the worker owning the VM (%s)" % owner)
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "ls", "-args", "-la",
               "-wait")
    check("Exit code: 0" in r.stdout and " .." in r.stdout, "ls -la output shown")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "sh", "-args",
               "-c 'echo \"a  b\" >&2; exit 3'", "-wait", "-json", expect=3)
    t = json.loads(r.stdout)
    check(t["result"]["stderr"] == "a  b\n" and t["result"]["exit_code"] == 3,
          "exit code becomes aeth-submit's status; quotes kept by -args")
    for _ in range(3):  # more executes: all must reach the owner
        r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "true", "-wait",
                   "-json")
        check(json.loads(r.stdout)["worker_id"] == owner, "routing again to " + owner)

    # ---- tasks put straight into the queue, taken by a worker that does
    # not own the VM (w3 listens to queue "raw" only, besides its own) ----
    w3 = Worker("e2e-w3", env, queues="raw=1")
    tid = enqueue(env, "raw", "vm:execute", json.dumps(
        {"vm_id": vm_id, "command": "echo", "args": ["forwarded"]}))
    r = submit(env, "-status", tid, "-wait", "-timeout", "60s", "-json")
    t = json.loads(r.stdout)
    check(t["status"] == "completed" and t["worker_id"] == owner and
          t["result"]["stdout"] == "forwarded\n",
          "execute on the shared queue reached a non-owner, was forwarded to "
          "worker:%s and ran there" % owner)
    w3.wait_for(r"forwarding task %s to queue worker:%s" % (tid, owner), 5)
    check(task_row(url, tid)["queue"] == "worker:" + owner,
          "tasks.queue of the forwarded task is the owner's queue")
    check(json.loads(redis_cli(redis.sock, "HGET", "{aeth:raw}:t:" + tid, "result")) ==
          {"forwarded_to": "worker:" + owner}, "the non-owner's copy is acked as forwarded")
    tid = enqueue(env, "raw", "vm:execute", json.dumps(
        {"vm_id": vm_id, "command": "echo", "forward_hops": 1}))
    r = submit(env, "-status", tid, "-wait", "-timeout", "60s", "-json", expect=1)
    t = json.loads(r.stdout)
    check(t["status"] == "failed" and "already forwarded once" in t["error"],
          "a task forwarded once is not forwarded again (no loop)")

    def bad(type_, payload, reason, what, corrupt=None):
        tid = enqueue(env, "raw", type_, payload, 2000 if corrupt else 0)
        if corrupt:  # a message the queue API refuses to write: edit it in Redis
            redis_cli(redis.sock, "HSET", "{aeth:raw}:t:" + tid, "payload", corrupt)
        r = submit(env, "-status", tid, "-wait", "-timeout", "60s", "-json", expect=1)
        t = json.loads(r.stdout)
        h = redis_cli(redis.sock, "HMGET", "{aeth:raw}:t:" + tid, "state", "retried")
        check(t["status"] == "failed" and reason in (t["error"] or "") and
              h.split() == ["dead", "0"] and w3.proc.poll() is None,
              "raw %s: failed at once (%s), dead in the queue without retry, "
              "worker alive" % (what, t["error"]))
    bad("vm:execute", "{}", "not valid JSON", "malformed JSON", corrupt='{"vm_id": ')
    bad("vm:execute", json.dumps({"vm_id": vm_id}), '"command" is missing',
        "missing command")
    bad("vm:create", json.dumps({"vcpus": 1}), '"name" is missing', "missing name")
    bad("vm:reboot", "{}", "unknown task type", "unknown type")
    bad("vm:delete", json.dumps({"vm_id": str(uuid.uuid4())}), "does not exist",
        "unknown VM")
    bad("vm:execute", json.dumps({"vm_id": vm_id, "command": 5}), "command",
        "wrong field type")
    w3.stop()

    # ---- bad input ----
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, expect=2)
    check("needs -cmd" in r.stderr, "missing -cmd is a usage error")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "echo", "-args",
               "'oops", expect=2)
    check("unterminated single quote" in r.stderr, "unterminated quote in -args")
    r = submit(env, "-type", "vm:reboot", "-payload", "{}", expect=1)
    check("unknown task type" in r.stderr, "unknown type: clear error")
    tid = re.search(UUID_RE, r.stderr).group(0)
    row = task_row(url, tid)
    check(row["status"] == "failed" and "unknown task type" in row["error"],
          "unknown type: task row failed with the reason")
    check("live workers handle: vm:create, vm:execute, vm:delete, "
          "vm:file_put, vm:file_get" in r.stderr and
          "built-in types" in r.stderr, "unknown type: the message lists what runs")

    r = submit(env, "-type", "vm:execute", "-payload", '{"vm_id": ', expect=1)
    tid = re.search(UUID_RE, r.stderr).group(0)
    check(task_row(url, tid)["status"] == "failed" and "not valid JSON" in r.stderr,
          "malformed JSON payload: failed row, clear error")
    r = submit(env, "-type", "vm:execute", "-vm-id", "nope", "-cmd", "ls", expect=1)
    check("is not a VM id" in r.stderr, "bad VM id: clear error")
    unknown = str(uuid.uuid4())
    r = submit(env, "-type", "vm:execute", "-vm-id", unknown, "-cmd", "ls", expect=1)
    tid = re.search(r"task (%s)" % UUID_RE, r.stderr).group(1)
    row = task_row(url, tid)
    check("does not exist" in r.stderr and row["status"] == "failed" and
          unknown in row["error"], "unknown VM id: failed at once with the reason")

    r = submit(env, "-type", "vm:delete", "-vm-id", vm_id, "-wait", "-json")
    check(json.loads(r.stdout)["result"] == {"vm_id": vm_id, "status": "deleted"},
          "vm:delete completed")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "ls", expect=1)
    check("was deleted" in r.stderr, "execute on a deleted VM: clear error")

    # ---- rows ----
    vm = json.loads(psql(url, "SELECT row_to_json(v) FROM vms v WHERE id = '%s'" % vm_id))
    check(vm["status"] == "deleted" and vm["owner_worker"] == owner and
          vm["started_at"] and vm["stopped_at"] and vm["orchestrator"] == "qemu",
          "vms row: deleted, owner, timestamps")
    ex = json.loads(psql(url, "SELECT json_agg(e ORDER BY started_at) FROM executions e "
                              "WHERE vm_id = '%s'" % vm_id))
    check([e["command"] for e in ex] == ["echo", "ls", "sh", "true", "true", "true",
                                        "echo"],
          "one executions row per command")
    check(ex[0]["args"] == ["Hello", "from", "VM"] and ex[0]["stdout"] == "Hello from VM\n"
          and ex[0]["exit_code"] == 0 and ex[0]["duration_ms"] is not None,
          "executions row has args, stdout, exit code, duration")
    n = psql(url, "SELECT count(*) FROM tasks WHERE status = 'completed' AND worker_id IS "
                  "NOT NULL AND started_at IS NOT NULL AND completed_at IS NOT NULL")
    check(n == "9", "9 completed task rows with worker and timestamps")

    # ---- the worker registry and a custom task type ----
    reg = workers(env)
    check(reg["e2e-w1"]["state"] == "alive" and reg["e2e-w2"]["alive"] and
          reg["e2e-w1"]["types"] == ["vm:create", "vm:execute", "vm:delete",
                                    "vm:file_put", "vm:file_get"] and
          reg["e2e-w3"]["state"] == "stopped", "-list workers: w1, w2 alive, w3 stopped")
    r = submit(env, "-list", "workers")
    check(re.search(r"e2e-w1 +\S+ +\d+ +alive +\d+\.\ds ago", r.stdout) and
          "LAST HEARTBEAT" in r.stdout, "-list workers table")
    w1.stop()
    w2.stop()
    check(True, "SIGTERM stops idle workers with status 0")

    r = submit(env, "-type", "demo:echo", "-payload", '{"x":1}', expect=1)
    check("unknown task type 'demo:echo': no live worker handles it" in r.stderr,
          "custom type without a worker for it: refused at submit")
    # a worker with only demo:echo, alone on "default" (workers sharing a
    # queue should handle the same types: docs/worker.md)
    wd = Worker("e2e-demo", env, custom=True)
    r = submit(env, "-type", "demo:echo", "-payload", '{"x":1}', "-wait", "-json")
    t = json.loads(r.stdout)
    check(t["status"] == "completed" and t["result"] == {"echo": {"x": 1}} and
          t["worker_id"] == "e2e-demo", "custom type demo:echo ran on the worker "
          "with its handler")
    r = submit(env, "-type", "demo:echo", "-queue", "other", "-payload", "{}", expect=1)
    check("only on queue(s) default, not on 'other'" in r.stderr,
          "custom type on a queue its worker does not serve: refused")
    wd.stop()
    check(workers(env)["e2e-demo"]["state"] == "stopped",
          "a stopped worker is marked stopped in the registry")

    # ---- SIGKILL mid-task ----
    wa = Worker("e2e-wa", env, lease_ms=2000)
    r = submit(env, "-type", "vm:create", "-name", "victim", "-json")
    tid = json.loads(r.stdout)["task_id"]
    wa.wait_for("Creating VM: victim")
    wa.proc.kill()
    wa.proc.wait()
    wb = Worker("e2e-wb", env, lease_ms=2000)
    r = submit(env, "-status", tid, "-wait", "-timeout", "180s", "-json")
    t = json.loads(r.stdout)
    check(t["status"] == "completed" and t["worker_id"] == "e2e-wb" and
          t["retry_count"] >= 1, "killed worker's task completed by another worker")
    check(psql(url, "SELECT count(*) FROM tasks WHERE id = '%s'" % tid) == "1",
          "the task is recorded once")
    vm_b = t["result"]["vm_id"]
    left = psql(url, "SELECT count(*) FROM vms WHERE owner_worker = 'e2e-wa' AND "
                     "status IN ('creating', 'running')")
    wa2 = Worker("e2e-wa", env)
    if left != "0":
        # The restarted worker cleans up what its killed run left, unless
        # e2e-wb adopted it first: once e2e-wa's registry entry went dead
        # (a few 667 ms intervals after the kill), a live worker on this
        # host takes its VMs (lib/worker/adopt.c). Which one wins is a race.
        end = time.time() + 30
        while time.time() < end and not (
                re.search(r"Reconciled VMs owned by e2e-wa: 0 reattached, 1 "
                          r"cleaned up", wa2.text()) or
                re.search(r"(Adopted VM|✗ VM) \S+ .*dead worker e2e-wa|"
                          r"its worker e2e-wa died", wb.text())):
            time.sleep(0.1)
    check(psql(url, "SELECT count(*) FROM vms WHERE owner_worker = 'e2e-wa' AND "
                    "status IN ('creating', 'running')") == "0",
          "the VM the killed run left was cleaned up (by the restarted worker, "
          "or adopted by the live one)")
    wa2.stop()

    # ---- Redis restart ----
    redis.stop()
    time.sleep(1.5)
    redis.start()
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_b, "-cmd", "echo", "-args",
               "after restart", "-wait", "-timeout", "60s", "-json")
    check(json.loads(r.stdout)["result"]["stdout"] == "after restart\n",
          "worker reconnected to the restarted Redis and went on")

    # ---- the owner of a VM is not running ----
    for _ in range(100):  # Redis restarted: wait until wb refreshed its entry
        if "e2e-wb" in workers(env):
            break
        time.sleep(0.1)
    wb.stop()
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_b, "-cmd", "true", expect=1)
    tid = re.search(r"task (%s)" % UUID_RE, r.stderr).group(1)
    check("owned by worker e2e-wb, which is not running (stopped" in r.stderr and
          "start it again with -id e2e-wb" in r.stderr and
          task_row(url, tid)["status"] == "failed",
          "execute for a stopped owner's VM: refused at submit, failed row")
    wc = Worker("e2e-wc", env, queues="raw=1")
    tid = enqueue(env, "raw", "vm:execute", json.dumps({"vm_id": vm_b, "command": "true"}))
    r = submit(env, "-status", tid, "-wait", "-timeout", "60s", "-json", expect=1)
    t = json.loads(r.stdout)
    check(t["status"] == "failed" and "which is not running" in t["error"] and
          redis_cli(redis.sock, "HGET", "{aeth:raw}:t:" + tid, "state") == "dead",
          "a raw execute for a stopped owner's VM fails at once, not forwarded")
    wc.stop()
    wb = Worker("e2e-wb", env, lease_ms=2000)
    wb.wait_for(r"Reconciled VMs owned by e2e-wb: 1 reattached", 30)
    submit(env, "-type", "vm:delete", "-vm-id", vm_b, "-wait", "-timeout", "60s")
    wb.stop()
    r = submit(env, "-list", "vms")
    check("victim" in r.stdout and "deleted" in r.stdout, "-list vms shows the table")
    print("all end-to-end checks passed")


if __name__ == "__main__":
    main()
