#!/usr/bin/python3
"""vm:execute results as rich as a local ExecResult (issue 12), through
aeth-worker, aeth-submit -json and the executions row:

- the seed's four fields stay; stdout_truncated, stderr_truncated,
  timed_out, signal and duration_ms are added;
- output that is not valid UTF-8 keeps U+FFFD in "stdout" and its raw
  bytes in "stdout_b64" (only then);
- output past the worker's 256 KiB is cut and flagged;
- a command killed by its timeout says timed_out and the signal (the
  agent's SIGTERM, then SIGKILL);
- the executions row carries the same (migration 0007);
- an idempotency_key: a second task with the same key for the same VM
  returns the first one's result without running again (one row);
- aeth-submit -env (repeated), -cwd, -stdin FILE|-, -cmd-timeout,
  -idempotency-key, each also with -follow; -task-timeout: the task is cancelled at its timeout
  and ends failed "timed out", the VM goes on; -cancel of a queued task;
  -timeout says the task goes on.

Needs what test_e2e.py needs; everything it starts is stopped at the end.
"""
import base64
import json
import os
import re
import subprocess
import time

from e2e_support import (SUBMIT, UUID_RE, Worker, check, psql, start_services,
                         submit, tmp)


def execute(env, vm_id, command, args=(), **more):
    payload = dict(vm_id=vm_id, command=command, args=list(args), **more)
    r = submit(env, "-type", "vm:execute", "-payload", json.dumps(payload), "-json")
    tid = re.search(UUID_RE, r.stdout).group(0)
    r = submit(env, "-status", tid, "-wait", "-timeout", "120s", "-json", expect=None)
    t = json.loads(r.stdout)
    check(t["status"] == "completed", "%s ran (%s)" % (command, t.get("error")))
    return tid, t["result"]


def row(url, tid):
    return json.loads(psql(url, "SELECT row_to_json(e) FROM executions e "
                                "WHERE task_id = '%s'" % tid))


def main():
    url, redis, env = start_services()
    w = Worker("res-w1", env)
    r = submit(env, "-type", "vm:create", "-name", "res", "-wait", "-timeout", "180s",
               "-json")
    vm_id = json.loads(r.stdout)["result"]["vm_id"]

    tid, res = execute(env, vm_id, "sh", ["-c", r"printf 'a\377b'; printf 'ok' >&2"])
    check(res["stdout"] == "a\ufffdb" and
          base64.b64decode(res["stdout_b64"]) == b"a\xffb" and
          "stderr_b64" not in res and res["stderr"] == "ok",
          "binary stdout: U+FFFD in stdout, the raw bytes in stdout_b64 only")
    e = row(url, tid)
    check(base64.b64decode(e["stdout_b64"]) == b"a\xffb" and e["stderr_b64"] is None
          and e["timed_out"] is False and e["signal"] is None,
          "the executions row keeps the raw bytes too")

    tid, res = execute(env, vm_id, "sh", ["-c", "yes | head -c 300000"])
    check(res["stdout_truncated"] is True and res["stderr_truncated"] is False and
          len(res["stdout"]) == 256 * 1024,
          "300000 bytes of output: cut at 256 KiB and flagged")
    check(row(url, tid)["stdout_truncated"] is True, "flagged in the row too")

    tid, res = execute(env, vm_id, "sleep", ["30"], timeout_ms=1000)
    check(res["timed_out"] is True and res["signal"] in (9, 15) and
          res["exit_code"] == 128 + res["signal"] and res["duration_ms"] < 10000,
          "a command killed by its timeout: timed_out and the signal (%s)"
          % {k: res[k] for k in ("timed_out", "signal", "exit_code", "duration_ms")})
    e = row(url, tid)
    check(e["timed_out"] is True and e["signal"] == res["signal"],
          "and so says its row")

    key = "k-" + tid
    t1, r1 = execute(env, vm_id, "cat", ["/proc/uptime"], idempotency_key=key)
    t2, r2 = execute(env, vm_id, "cat", ["/proc/uptime"], idempotency_key=key)
    n = psql(url, "SELECT count(*) FROM executions WHERE idempotency_key = '%s'" % key)
    check(r1 == r2 and n == "1",
          "the same idempotency_key twice: the first result, one run (%s rows)" % n)
    t3, r3 = execute(env, vm_id, "cat", ["/proc/uptime"], idempotency_key=key + "x")
    check(r3["stdout"] != r1["stdout"], "another key runs again")

    # ---- aeth-submit's flags for the payload's fields ----
    inp = os.path.join(tmp, "in.txt")
    with open(inp, "w") as f:
        f.write("from a file\n")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "sh", "-args",
               "-c 'echo $A-$B; pwd; cat'", "-env", "A=1", "-env", "B=two",
               "-cwd", "/tmp", "-stdin", inp, "-cmd-timeout", "20s", "-wait", "-json")
    t = json.loads(r.stdout)
    check(t["result"]["stdout"] == "1-two\n/tmp\nfrom a file\n" and
          t["payload"]["timeout_ms"] == 20000,
          "-env (twice), -cwd, -stdin FILE and -cmd-timeout reach the command")
    r = subprocess.run([SUBMIT, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "cat",
                        "-stdin", "-", "-wait", "-json"], input="piped\n",
                       capture_output=True, text=True, env=env, timeout=120)
    check(r.returncode == 0 and json.loads(r.stdout)["result"]["stdout"] == "piped\n",
          "-stdin - reads aeth-submit's own stdin")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "sleep", "-args",
               "20", "-cmd-timeout", "1s", "-wait", "-json", expect=None)
    res = json.loads(r.stdout)["result"]
    check(res["timed_out"] is True, "-cmd-timeout 1s: the command timed out")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "cat", "-args",
               "/proc/uptime", "-idempotency-key", key, "-wait", "-json")
    check(json.loads(r.stdout)["result"] == r1,
          "-idempotency-key: the key's first result again")
    r = submit(env, "-type", "vm:create", "-name", "x", "-env", "A=1", expect=2)
    check("go with -type vm:execute" in r.stderr, "-env with vm:create: usage error")
    # -follow is an option of the same submit: every execute flag goes with it
    fkey = "f-" + tid
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "sh", "-args",
               "-c 'echo $A-$B; pwd; cat; cat /proc/uptime; exit 3'", "-env", "A=1",
               "-env", "B=two", "-cwd", "/tmp", "-stdin", inp, "-cmd-timeout", "20s",
               "-idempotency-key", fkey, "-follow", expect=3)
    lines = r.stdout.splitlines()
    check(lines[:3] == ["1-two", "/tmp", "from a file"] and len(lines) == 4,
          "-follow with -env (twice), -cwd, -stdin FILE: the command's output "
          "as it ran, its exit code 3 (%r)" % r.stdout)
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "true",
               "-idempotency-key", fkey, "-wait", "-json", expect=3)
    check(json.loads(r.stdout)["result"]["stdout"] == "\n".join(lines) + "\n",
          "-follow with -idempotency-key: the key's first result again "
          "(the same /proc/uptime)")
    t0 = time.time()
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "sleep", "-args",
               "20", "-cmd-timeout", "1s", "-follow", expect=None)
    check(r.returncode > 128 and time.time() - t0 < 15,
          "-follow with -cmd-timeout 1s: killed at its timeout (exit %d after "
          "%.1f s)" % (r.returncode, time.time() - t0))

    # ---- the task's own timeout, enforced at once, never "completed" ----
    t0 = time.time()
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "sleep", "-args",
               "60", "-task-timeout", "2s", "-wait", "-json", expect=None)
    took = time.time() - t0
    t = json.loads(r.stdout)
    check(t["status"] == "failed" and "timed out" in t["error"] and
          t["retry_count"] == 0 and took < 10,
          "-task-timeout 2s on sleep 60: failed, timed out, after %.1f s (%s)"
          % (took, t["error"]))
    w.wait_for(r"ran past its timeout of 2000 ms", 5)
    _, res = execute(env, vm_id, "echo", ["still here"])
    check(res["stdout"] == "still here\n", "the VM still runs commands after it")

    # ---- -cancel, and -timeout says the task goes on ----
    r = submit(env, "-type", "vm:create", "-name", "queued", "-queue", "nobody", "-json")
    tid = re.search(UUID_RE, r.stdout).group(0)
    r = submit(env, "-status", tid, "-wait", "-timeout", "200ms", expect=1)
    check("the task goes on" in r.stderr, "-timeout: the wait ends, the task goes on")
    r = submit(env, "-cancel", tid)
    check("cancelled" in r.stdout, "-cancel a queued task")
    t = json.loads(submit(env, "-status", tid, "-json").stdout)
    check(t["status"] == "failed" and "cancelled" in t["error"],
          "its row ends failed, cancelled")
    r = submit(env, "-cancel", tid, expect=1)
    check("ended already" in r.stderr, "-cancel twice: it has ended already")

    submit(env, "-type", "vm:delete", "-vm-id", vm_id, "-wait", "-timeout", "120s")
    w.stop()


if __name__ == "__main__":
    main()
