"""The seed's walkthrough (tests/cli/test_e2e.py's first part) with its
queue on a 3-node Redis Cluster: two aeth-workers, aeth-submit creates a
VM, runs `echo Hello from VM` and `ls -la` in it (routed to the worker
owning it, whose own queue lives in another slot than the shared one),
forwards an execute that a non-owner took from a third queue, deletes
the VM; the rows of vms, tasks and executions say so. Then the
worker registry and a task's status read back through the cluster.

Needs the guest image and AETH_TEST_DATABASE_URL (scripts/services.sh).

    python3 tests/cluster/test_walkthrough.py
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from topology import RedisCluster  # noqa: E402
from e2e_support import (UUID_RE, Worker, check, create_db, die, enqueue,  # noqa: E402
                         image_dir, psql, require_binaries, state_dir, submit, workers)


def main():
    if not os.path.exists(os.path.join(image_dir(), "vmlinux")):
        die("no guest image in %s: scripts/build-image.sh" % image_dir())
    require_binaries()
    url = create_db()
    c = RedisCluster().start()
    env = dict(os.environ, AETH_DATABASE_URL=url, AETH_REDIS_URL=c.url(),
               AETH_STATE_DIR=state_dir, AETH_IMAGE_DIR=image_dir(),
               AETH_VMM_ACCEL=os.environ.get("AETH_VMM_ACCEL", "auto"))
    env.pop("AETH_QUEUE_WEIGHTS", None)
    slots = {c.slot("{aeth:%s}" % q) for q in ("default", "worker:cl-w1", "worker:cl-w2")}
    check(len(slots) == 3, "the shared queue and both workers' queues are in "
          "three different slots")
    w1 = Worker("cl-w1", env)
    w2 = Worker("cl-w2", env)
    check(set(workers(env)) >= {"cl-w1", "cl-w2"},
          "both workers are in the registry, read through the cluster")

    r = submit(env, "-type", "vm:create", "-name", "demo-vm")
    m = re.search(r"✓ VM creation task submitted: (%s)" % UUID_RE, r.stdout)
    check(m is not None, "aeth-submit prints the seed's lines for vm:create")
    created = json.loads(submit(env, "-status", m.group(1), "-wait", "-timeout", "120s",
                                "-json").stdout)
    check(created["status"] == "completed", "vm:create completed")
    vm_id = created["result"]["vm_id"]
    owner = created["worker_id"]
    seed = {k: created["result"].get(k) for k in ("vm_id", "name", "status")}
    check(seed == {"vm_id": vm_id, "name": "demo-vm", "status": "running"} and
          created["result"].get("origin") in ("cold", "snapshot", "pool"),
          "vm:create result is the seed's JSON, plus how the VM was made")

    t = json.loads(submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "echo",
                          "-args", "Hello from VM", "-wait", "-json").stdout)
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

    # an execute put straight on a queue only a non-owner takes: forwarded
    # to the owner's queue (another slot) under the same id, run there
    w3 = Worker("cl-w3", env, queues="raw=1")
    tid = enqueue(env, "raw", "vm:execute", json.dumps(
        {"vm_id": vm_id, "command": "echo", "args": ["forwarded"]}))
    t = json.loads(submit(env, "-status", tid, "-wait", "-timeout", "60s", "-json").stdout)
    check(t["status"] == "completed" and t["worker_id"] == owner and
          t["result"]["stdout"] == "forwarded\n" and
          c.slot("{aeth:raw}") != c.slot("{aeth:worker:%s}" % owner),
          "an execute on another slot's queue was forwarded to worker:%s and ran" % owner)
    w3.wait_for(r"forwarding task %s to queue worker:%s" % (tid, owner), 5)
    w3.stop()
    r = submit(env, "-type", "vm:delete", "-vm-id", vm_id, "-wait", "-json")
    check(json.loads(r.stdout)["result"] == {"vm_id": vm_id, "status": "deleted"},
          "vm:delete result is the seed's JSON")

    check(psql(url, "SELECT status FROM vms WHERE id = '%s'" % vm_id) == "deleted",
          "vms row deleted")
    check(psql(url, "SELECT count(*) FROM executions WHERE vm_id = '%s' AND "
                    "exit_code = 0" % vm_id) == "3", "three executions rows")
    check(psql(url, "SELECT count(*) FROM tasks WHERE status = 'completed'") == "5",
          "five tasks completed")
    w1.stop()
    w2.stop()


if __name__ == "__main__":
    main()
