#!/usr/bin/python3
"""The configuration a worker is given is the one it follows, and what a
VM cannot be fails once, saying why (issue 12, "Configuration").

- aeth-submit: -vcpus 0, -memory 0 and -memory 99999999999 are usage
  errors (exit 2) naming the allowed range (the keys' own, keys.c);
- vmm.kernel, vmm.initrd and vmm.boot_timeout_ms of the worker's file are
  what its vm:create boots with: a missing kernel is named; an initramfs
  whose /init never answers fails at the configured timeout;
- an impossible VM (more memory than the host has, allowed by raised
  limits) fails at once with the VMM's own reason: one failed vms row,
  no retry, and no "did not become ready within" for a VMM that exited.

Needs what test_e2e.py needs (a fresh database, a private redis-server,
the guest image); every process it starts is stopped at the end.
"""
import json
import os
import re
import subprocess
import time

from e2e_support import (UUID_RE, Worker, check, image_dir, psql, start_services,
                         submit, task_row, tmp)


def silent_initrd():
    """The image's initramfs with one more archive whose /init sleeps:
    a guest that boots and never answers."""
    d = os.path.join(tmp, "silent")
    os.makedirs(d)
    with open(os.path.join(d, "init"), "w") as f:
        f.write("#!/bin/busybox sh\nexec /bin/busybox sleep 100000\n")
    os.chmod(os.path.join(d, "init"), 0o755)
    add = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=b"init\n",
                         cwd=d, capture_output=True, check=True).stdout
    out = os.path.join(tmp, "silent.cpio")
    with open(os.path.join(image_dir(), "initrd.cpio"), "rb") as src, \
            open(out, "wb") as dst:
        dst.write(src.read())
        dst.write(add)
    return out


def create(env, name, *more):
    r = submit(env, "-type", "vm:create", "-name", name, *more, "-json")
    tid = re.search(UUID_RE, r.stdout).group(0)
    r = submit(env, "-status", tid, "-wait", "-timeout", "180s", "-json", expect=None)
    return json.loads(r.stdout)


def main():
    # ---- usage errors, before anything connects ----
    env0 = dict(os.environ, AETH_REDIS_URL="unix:///nonexistent/redis.sock")
    for flag, value, want in (("-vcpus", "0", "from 1 to 64"),
                              ("-memory", "0", "from 32 to 1048576"),
                              ("-memory", "99999999999", "from 32 to 1048576"),
                              ("-vcpus", "65", "from 1 to 64")):
        r = submit(env0, "-type", "vm:create", "-name", "x", flag, value, expect=2)
        check(want in r.stderr and flag in r.stderr,
              "aeth-submit %s %s: usage error naming the range (%s)"
              % (flag, value, r.stderr.strip()))

    url, redis, env = start_services()

    # ---- vmm.kernel: the worker boots the file its configuration names ----
    w = Worker("cfg-kernel", env, config="vmm:\n  kernel: /nonexistent/vmlinux-cfg\n")
    t = create(env, "k")
    check(t["status"] == "failed" and "/nonexistent/vmlinux-cfg" in t["error"],
          "vmm.kernel is what vm:create boots: %s" % t["error"][:120])
    w.stop()

    # ---- vmm.initrd + vmm.boot_timeout_ms ----
    w = Worker("cfg-boot", env, config="vmm:\n  initrd: %s\n  boot_timeout_ms: 4000\n"
               % silent_initrd())
    r = submit(env, "-type", "vm:create", "-name", "silent", "-json")
    tid = re.search(UUID_RE, r.stdout).group(0)
    m = w.wait_for(r"did not become ready within (\d+) ms", 120)
    ms = int(m.group(1))
    check(4000 <= ms < 7000,
          "vmm.initrd and vmm.boot_timeout_ms honoured: the silent guest failed "
          "after %d ms (boot timeout 4000, no second boot inside it)" % ms)
    check("booting it once more" not in w.text(),
          "no hidden second boot under a 4 s timeout")
    w.stop()

    # ---- an impossible VM: fails once, at once, in the VMM's words ----
    w = Worker("cfg-big", env, config="limits:\n  vm_memory_mb: 1048576\n"
               "  memory_mb: 1073741824\n")
    t0 = time.time()
    t = create(env, "huge", "-memory", "1000000")
    took = time.time() - t0
    # this VM's rows only: an earlier worker's VM may still change state
    rows = psql(url, "SELECT status FROM vms WHERE name = 'huge' "
                "ORDER BY created_at").split()
    check(t["status"] == "failed" and t["retry_count"] == 0,
          "an impossible VM fails without a retry (retry_count %s)" % t["retry_count"])
    check(rows == ["failed"], "one failed vms row, not four (%s)" % rows)
    check("the VMM exited" in t["error"] and "memory" in t["error"] and
          "did not become ready within" not in t["error"],
          "the error is the VMM's own reason: %s" % t["error"][:300])
    check(took < 60, "and it fails at once (%.1f s, no retries with backoff)" % took)
    check(t.get("vm_id") is not None and
          re.fullmatch(UUID_RE, t["vm_id"]) is not None,
          "tasks.vm_id names the VM a vm:create made, even a failed one")
    w.stop()


if __name__ == "__main__":
    main()
