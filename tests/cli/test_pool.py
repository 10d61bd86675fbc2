#!/usr/bin/python3
"""Warm pools through aeth-worker and aeth-submit, with real TCG guests
(suite e2e): a worker keeps pool "small" (2 VMs, snapshot-restored) and
pool "disk" (1 VM of 320 MiB with the root disk, booted cold) under
limits.vms = 4, and
- hands a pool VM out for a matching vm:create (origin "pool"), which
  runs commands and is refilled in the background;
- boots a create of another shape (origin not "pool"), evicting a spare
  when the VM limit is full, rather than refusing the user;
- gives the last VM of a pool to one of two creates racing for it; the
  other gets a VM of its own; no VM is ever handed out twice or reused
  after a delete;
- after kill -9 and a restart with the same id takes its live pool VMs
  back and hands them out;
- deletes its pool VMs on a graceful stop;
- once it is dead (killed, another worker adopting what it left), its
  pool VMs are deleted by the adopter.
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (Worker, check, die, start_services, state_dir, submit,  # noqa: E402
                         tmp, vm_processes, workers)

WID = "poolw"
CONFIG = """
vmm:
  overlay_dir: %s
limits:
  vms: 4
worker:
  delete_vms_on_stop: true
pool:
  small: {size: 2}
  disk: {size: 1, memory_mb: 320, rootfs: true}
""" % os.path.join(tmp, "ov")

handed = set()  # every VM id a vm:create returned
worker = None   # the worker running now (its log goes with a failure)


def pools(env):
    w = workers(env).get(WID, {})
    return {p["name"]: p for p in w.get("pools", [])}


def wait_until(what, fn, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            print("ok - " + what)
            return
        time.sleep(0.5)
    die("timed out waiting until %s; worker log:\n%s" %
        (what, worker.text() if worker else "-"))


def pool_vm_ids(prefix=WID + "/"):
    """VM ids whose vm.json carries a pool tag of this worker."""
    out = set()
    for path in glob.glob(os.path.join(state_dir, "vms", "*", "vm.json")):
        try:
            with open(path) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        if (rec.get("pool") or "").startswith(prefix):
            out.add(rec["id"])
    return out


def create(env, name, *flags):
    r = json.loads(submit(env, "-type", "vm:create", "-name", name, "-wait",
                          "-json", *flags).stdout)
    if r["status"] != "completed":
        die("vm:create %s: %s" % (name, r))
    res = r["result"]
    check(res["vm_id"] not in handed, "VM %s is new (never handed out before)"
          % res["vm_id"])
    handed.add(res["vm_id"])
    check(res.get("origin") in ("pool", "snapshot", "cold") and
          isinstance(res.get("ready_ms"), (int, float)),
          "vm:create %s says how its VM was made (%s, %s ms)" %
          (name, res.get("origin"), res.get("ready_ms")))
    return res


def hostname(env, vm_id):
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "hostname",
               "-wait", "-json")
    return json.loads(r.stdout)["result"]["stdout"].strip()


def stop_gracefully():
    """After a failure too: SIGTERM, so that the worker deletes its VMs
    (delete_vms_on_stop) and spares, cgroups and disk layers included,
    before e2e_support kills what is left."""
    if worker and worker.proc.poll() is None:
        worker.proc.terminate()
        try:
            worker.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass


def main():
    _, _, env = start_services(rootfs=True)
    global worker
    w = worker = Worker(WID, env, config=CONFIG, args=["-concurrency", "3"])
    wait_until("both pools are full",
               lambda: pools(env).get("small", {}).get("ready") == 2 and
               pools(env).get("disk", {}).get("ready") == 1)
    listing = submit(env, "-list", "workers").stdout
    check("small 2/2" in listing and "disk 1/1" in listing,
          "aeth-submit -list workers shows the pools")

    # hand-out, then refill
    spares = pool_vm_ids()
    a = create(env, "a")
    check(a["origin"] == "pool" and a["vm_id"] in spares,
          "a matching vm:create gets a VM of the pool")
    check(a["vm_id"] not in pool_vm_ids(), "its pool tag is gone")
    check(hostname(env, a["vm_id"]) == a["vm_id"], "the handed-out VM runs commands")
    wait_until("pool small is refilled", lambda: pools(env)["small"]["ready"] == 2 and
               pools(env)["small"]["made"] >= 3)

    # another shape, with the VM limit full (a + 3 spares = limits.vms)
    m = create(env, "m", "-memory", "384")
    check(m["origin"] != "pool", "a create of another shape boots (%s)" % m["origin"])
    check("deleted to make room" in w.text(),
          "the full VM limit cost a spare, not the user's create")
    check(hostname(env, m["vm_id"]) == m["vm_id"], "that VM runs commands")

    # two creates race for the one VM of pool "disk"
    wait_until("pool disk is full", lambda: pools(env)["disk"]["ready"] == 1)
    before = pools(env)["disk"]["handed_out"]
    racers = [subprocess.Popen([os.path.join(os.environ["AETH_BUILD_ROOT"], "cli",
                                             "aeth-submit"), "-type", "vm:create",
                                "-name", "race%d" % i, "-memory", "320", "-rootfs",
                                "default", "-wait", "-json"],
                               stdout=subprocess.PIPE, text=True, env=env)
              for i in range(2)]
    results = []
    for p in racers:
        out, _ = p.communicate(timeout=300)
        if p.returncode != 0:
            die("racing vm:create failed: %s" % out)
        results.append(json.loads(out)["result"])
    ids = [r["vm_id"] for r in results]
    check(ids[0] != ids[1], "the racing creates got two different VMs")
    for r in results:
        check(r["vm_id"] not in handed, "racing VM %s was never handed out before"
              % r["vm_id"])
        handed.add(r["vm_id"])
    origins = [r["origin"] for r in results]
    check(origins.count("pool") >= 1, "a racing create got the pool's VM (%s)"
          % origins)
    # the registry is refreshed every few seconds
    wait_until("the pool counted as many hand-outs as creates say (%d)" %
               origins.count("pool"),
               lambda: pools(env)["disk"]["handed_out"] - before ==
               origins.count("pool"), timeout=30)
    for r in results:
        check(hostname(env, r["vm_id"]) == r["vm_id"],
              "racing VM %s runs commands" % r["vm_id"])

    # a deleted VM is never seen again
    submit(env, "-type", "vm:delete", "-vm-id", a["vm_id"], "-wait")
    check(not os.path.exists(os.path.join(state_dir, "vms", a["vm_id"])),
          "a deleted pool VM leaves nothing behind")

    # crash, restart with the same id: the live spares are taken back
    # (room under limits.vms for pool small first: m goes)
    submit(env, "-type", "vm:delete", "-vm-id", m["vm_id"], "-wait")
    wait_until("pool small has spares", lambda: pools(env)["small"]["ready"] >= 1)
    spares = pool_vm_ids()
    check(len(spares) >= 1, "spares are on disk before the crash")
    w.proc.kill()
    w.proc.wait()
    w = worker = Worker(WID, env, config=CONFIG, args=["-concurrency", "3"])
    m2 = w.wait_for(r"Reconciled pool VMs of %s: (\d+) taken back" % WID)
    check(int(m2.group(1)) >= 1, "the restarted worker took back %s spares"
          % m2.group(1))
    b = create(env, "b")
    check(b["origin"] == "pool" and b["vm_id"] in spares,
          "a spare from before the crash is handed out")
    check(hostname(env, b["vm_id"]) == b["vm_id"], "it runs commands")

    # graceful stop: spares deleted (user VMs too: delete_vms_on_stop)
    for vm in results:
        submit(env, "-type", "vm:delete", "-vm-id", vm["vm_id"], "-wait")
    # the registry's count and the spares' vm.json files are written at
    # different moments: wait for both
    wait_until("pool small is full again",
               lambda: pools(env)["small"]["ready"] == 2 and len(pool_vm_ids()) >= 2)
    spares = pool_vm_ids()
    w.stop()
    gone = re.search(r"Stopping: deleted (\d+) pool VM", w.text())
    check(gone and int(gone.group(1)) >= len(spares) >= 2 and not pool_vm_ids(),
          "a graceful stop deletes the pool VMs (%s of %d)" %
          (gone.group(1) if gone else "none", len(spares)))
    check(vm_processes() == [], "no VMM is left running")

    # a dead worker's spares: the worker that adopts its VMs deletes them
    w = worker = Worker(WID, env, config=CONFIG, args=["-concurrency", "3"],
                        lease_ms=1500)
    wait_until("the pools are full again",
               lambda: pools(env).get("small", {}).get("ready") == 2)
    spares = pool_vm_ids()
    w.proc.kill()
    w.proc.wait()
    other = worker = Worker(WID + "2", env, lease_ms=1500,
                            config="worker:\n  delete_vms_on_stop: true\n")
    wait_until("the adopter deleted the dead worker's spares",
               lambda: not pool_vm_ids(), timeout=120)
    check(other.text().count("of a dead worker") >= len(spares) >= 2,
          "it says so for each (%d)" % len(spares))
    other.stop()
    check(vm_processes() == [], "no VMM is left running")
    print("all pool cases passed")


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_gracefully()
