#!/usr/bin/python3
"""Escape suite: a hostile submitter asks for more than a worker gives.

Before, a payload could ask for 64 vCPUs and 1 TiB; nothing capped VMs
per worker, committed memory, a VM's lifetime or overlay space, and a
"tap" took any host tap name.

Here, a worker with small limits (limits.vm_vcpus 2, vm_memory_mb 512,
vms 1, ttl_s 60, ttl_max_s 120, overlay_mb 1) and real TCG guests:
- over a per-VM limit (vCPUs, memory, lifetime), a tap not on the
  worker's network.taps, a root disk larger than the overlay space: the
  task fails at once (no retry), naming the limit, and nothing boots;
- with one VM running, a second vm:create fails naming limits.vms;
- a VM created with -ttl 10s (long enough for the limits.vms check
  to run before it expires, also on a loaded machine) is deleted by the worker once its lifetime is
  over (its row says "expired"), its VMM is gone, a command for it fails
  saying so, and its place is free again: the next vm:create boots.
"""
import time

from escape import (Worker, check, create_vm, psql, start, submit,
                    vm_id_of, vm_processes)


def refused(env, why, *flags):
    t = create_vm(env, "greedy", *flags, expect=1)
    check(t["status"] == "failed" and why in t["error"] and t["retry_count"] == 0,
          "%s: refused at once (%s)" % (" ".join(flags), t["error"]))


def main():
    url, redis, env = start()
    Worker("esc-limits", env, config="limits:\n  vm_vcpus: 2\n  vm_memory_mb: 512\n"
           "  vms: 1\n  ttl_s: 60\n  ttl_max_s: 120\n  overlay_mb: 1\n")
    refused(env, "limits.vm_vcpus", "-vcpus", "3")
    refused(env, "limits.vm_memory_mb", "-memory", "1024")
    refused(env, "limits.ttl_max_s", "-ttl", "5m")
    refused(env, "limits.overlay_mb", "-rootfs", "default")
    r = submit(env, "-type", "vm:create", "-payload",
               '{"name": "t", "network": "tap", "tap": "eth0"}', "-wait", "-json",
               expect=1)
    check("not in worker esc-limits's network.taps allowlist" in r.stdout,
          "a host tap not on network.taps: refused")
    check(psql(url, "SELECT count(*) FROM vms") == "0", "nothing booted for them")

    t0 = time.time()
    vm = vm_id_of(create_vm(env, "short-lived", "-ttl", "10s"))
    meta = psql(url, "SELECT metadata->>'ttl_s' FROM vms WHERE id = '%s'" % vm)
    check(meta == "10", "the vms row records the lifetime (ttl_s %s)" % meta)
    refused(env, "limits.vms")
    deadline = t0 + 45
    row = None
    while time.time() < deadline:
        row = psql(url, "SELECT status || ' ' || coalesce(error, '') FROM vms "
                   "WHERE id = '%s'" % vm)
        if row.startswith("deleted"):
            break
        time.sleep(0.2)
    took = time.time() - t0
    check(row.startswith("deleted expired"), "the worker deleted the VM when its "
          "lifetime ended (%.1f s after create): %s" % (took, row))
    check(not vm_processes(), "its VMM is gone")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm, "-cmd", "true", expect=1)
    check("deleted" in r.stderr, "a command for it fails: %s" % r.stderr.strip())
    vm2 = vm_id_of(create_vm(env, "next"))
    check(vm2 != vm, "its place under limits.vms is free again: the next VM boots")
    print("limit checks passed")


if __name__ == "__main__":
    main()
