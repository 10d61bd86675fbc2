#!/usr/bin/python3
"""Host memory and CPU per idle VM, and how many VMs fit at once.

    density.py [--build DIR] [-n 10] [--idle 60] [--mode restore|cold|both]
               [--burst MIB] [--json OUT]
    density.py [--build DIR] --max [--cap 2000] [--keep-free-mb 2048]
               [--budget-s 0]

Default: starts N VMs of 256 MiB (jailed, as a root worker does) through
the library (the Python binding), restored from a snapshot (--mode
restore), booted (cold) or one after the other both ways, lets them idle
for --idle seconds (with --burst, each first writes and frees that many
MiB in a tmpfs: what a finished job leaves), then measures over the next
10 s:
- PSS of each VMM process (/proc/PID/smaps_rollup: shared pages count
  once in all, split between the processes mapping them), its parts
  (anonymous: guest memory written and QEMU's heap and translation cache;
  file: the kernel image QEMU maps, libraries; shmem: the snapshot's
  sealed memfd) and RSS, averaged per VM;
- the host's MemAvailable drop since before the first VM, per VM (this
  counts what PSS does not: the memfd's pages no VM touched, the page
  cache of the snapshot files, the library's own memory);
- CPU (user + system) of each VMM over 10 s, per VM, in % of one core.

--max: restores VMs one after the other and keeps them running until a
start fails (what it says is what ran out), or the host's MemAvailable
would drop below --keep-free-mb, or --cap VMs run, or --budget-s seconds
passed (0: no budget; a shared machine is saturated while it runs);
prints how many ran at once, how long each start took, and the host's
memory and load then.
Everything it started is deleted at the end (also on failure or Ctrl-C).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # MiB
    return 0.0


def rollup(pid):
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                p = line.split()
                if len(p) >= 2 and p[0].endswith(":") and p[1].isdigit():
                    out[p[0][:-1]] = int(p[1]) / 1024.0
    except OSError:
        pass
    return out


def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def binding(build):
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    os.environ.setdefault("AETH_LIBRARY", os.path.join(build, "lib", "libaetherium.so.0"))
    os.environ.setdefault("AETH_JAILER", os.path.join(build, "lib", "jail", "aeth-jailer"))
    import aetherium
    return aetherium


def image_dir():
    return os.environ.get("AETH_IMAGE_DIR") or os.path.expanduser("~/.cache/aetherium/image")


BURST = ("mkdir -p /tmp/burst && mount -t tmpfs -o size={mb}m burst /tmp/burst && "
         "dd if=/dev/zero of=/tmp/burst/f bs=1M count={n} 2>/dev/null && "
         "rm /tmp/burst/f && umount /tmp/burst")


def measure(aeth, mode, n, idle, tmp, burst=0):
    state = os.path.join(tmp, mode[0])
    m = aeth.VMM(state_dir=state, image_dir=image_dir(), boot_timeout=120,
                 snapshots=(mode == "restore"), jail="on")
    vms = []
    try:
        avail0 = meminfo("MemAvailable")
        starts = []
        for i in range(n):
            vm = aeth.VM(vmm=m, name="density-%d" % i, memory_mb=256)
            vms.append(vm)
            starts.append(vm.start_ms)
            print("%s VM %d: %s in %d ms" % (mode, i, vm.origin, vm.start_ms),
                  file=sys.stderr)
        for vm in vms if burst else ():
            r = vm.exec(BURST.format(mb=burst + 8, n=burst), timeout=120)
            if r.exit_code != 0:
                sys.exit("the burst failed in %s: %s" % (vm.id, r.stderr))
        time.sleep(idle)
        pids = [vm.pid for vm in vms]
        c0 = [cpu_s(p) for p in pids]
        t0 = time.monotonic()
        time.sleep(10)
        c1 = [cpu_s(p) for p in pids]
        window = time.monotonic() - t0
        rolls = [rollup(p) for p in pids]
        avail1 = meminfo("MemAvailable")

        def per_vm(key):
            return round(statistics.mean(r.get(key, 0.0) for r in rolls), 1)
        return {
            "mode": mode, "vms": n, "memory_mb": 256, "idle_s": idle,
            "burst_mib": burst,
            "origins": sorted(set(vm.origin for vm in vms)),
            "start_ms": {"first": starts[0], "median_rest":
                         statistics.median(starts[1:]) if n > 1 else None},
            "pss_mib_per_vm": per_vm("Pss"),
            "pss_anon_mib_per_vm": per_vm("Pss_Anon"),
            "pss_file_mib_per_vm": per_vm("Pss_File"),
            "pss_shmem_mib_per_vm": per_vm("Pss_Shmem"),
            "rss_mib_per_vm": per_vm("Rss"),
            "host_memavailable_drop_mib_per_vm": round((avail0 - avail1) / n, 1),
            "idle_cpu_percent_per_vm": round(100.0 * (sum(c1) - sum(c0)) /
                                             window / n, 2),
        }
    finally:
        for vm in vms:
            vm.close()
        m.close()


def max_vms(aeth, cap, keep_free_mb, budget_s, tmp):
    m = aeth.VMM(state_dir=os.path.join(tmp, "x"), image_dir=image_dir(),
                 boot_timeout=60, snapshots=True, jail="on")
    vms, starts = [], []
    why = None
    t0 = time.monotonic()
    avail0 = meminfo("MemAvailable")
    try:
        while len(vms) < cap:
            if budget_s and time.monotonic() - t0 > budget_s:
                why = "the time budget (--budget-s %d): no start failed" % budget_s
                break
            if meminfo("MemAvailable") < keep_free_mb + 256:
                why = ("host memory: MemAvailable %.0f MiB, the guard keeps %d"
                       % (meminfo("MemAvailable"), keep_free_mb))
                break
            try:
                vm = aeth.VM(vmm=m, name="max-%d" % len(vms), memory_mb=256)
            except aeth.AetheriumError as e:
                why = "VM %d did not start: %s" % (len(vms) + 1, e)
                break
            vms.append(vm)
            starts.append(vm.start_ms)
            if len(vms) % 25 == 0:
                print("%d VMs, last start %d ms, MemAvailable %.0f MiB, load %s"
                      % (len(vms), vm.start_ms, meminfo("MemAvailable"),
                         open("/proc/loadavg").read().split()[0]), file=sys.stderr)
        else:
            why = "the cap (--cap %d)" % cap
        # all still answering?
        alive = sum(1 for vm in vms if vm.status == "running")
        pss = [rollup(vm.pid).get("Pss", 0.0) for vm in vms[:50]]
        used = (avail0 - meminfo("MemAvailable")) / max(len(vms), 1)
        return {"vms_at_once": len(vms), "still_running": alive,
                "stopped_by": why, "elapsed_s": round(time.monotonic() - t0, 1),
                "start_ms": {"first": starts[0] if starts else None,
                             "median": statistics.median(starts) if starts else None,
                             "last": starts[-1] if starts else None},
                "memavailable_mib_at_end": round(meminfo("MemAvailable")),
                "pss_mib_first50_mean": round(statistics.mean(pss), 1) if pss else None,
                "host_memavailable_drop_mib_per_vm": round(used, 1),
                "memory_bound_estimate": int((avail0 - keep_free_mb) / used)
                if used > 0 else None,
                "loadavg_at_end": open("/proc/loadavg").read().split()[:3]}
    finally:
        for vm in vms:
            vm.close()
        m.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("-n", type=int, default=10)
    p.add_argument("--idle", type=int, default=60)
    p.add_argument("--burst", type=int, default=0,
                   help="each VM writes and frees this many MiB (a tmpfs "
                        "file) before idling")
    p.add_argument("--mode", default="both", choices=("restore", "cold", "both"))
    p.add_argument("--max", action="store_true")
    p.add_argument("--cap", type=int, default=2000)
    p.add_argument("--keep-free-mb", type=int, default=2048)
    p.add_argument("--budget-s", type=int, default=0)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    aeth = binding(a.build)
    tmp = tempfile.mkdtemp(prefix="aeth-dens-", dir="/tmp")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        if a.max:
            res = {"max": max_vms(aeth, a.cap, a.keep_free_mb, a.budget_s, tmp)}
            r = res["max"]
            print("VMs of 256 MiB running at once: %d (%d still answering); "
                  "stopped by: %s" % (r["vms_at_once"], r["still_running"],
                                      r["stopped_by"]))
            print("starts: first %s ms, median %s ms, last %s ms; MemAvailable "
                  "at the end %s MiB; load %s" % (
                      r["start_ms"]["first"], r["start_ms"]["median"],
                      r["start_ms"]["last"], r["memavailable_mib_at_end"],
                      " ".join(r["loadavg_at_end"])))
            print("host memory per VM %s MiB: memory alone would allow about "
                  "%s VMs" % (r["host_memavailable_drop_mib_per_vm"],
                              r["memory_bound_estimate"]))
        else:
            modes = ["restore", "cold"] if a.mode == "both" else [a.mode]
            res = {m: measure(aeth, m, a.n, a.idle, tmp, a.burst) for m in modes}
            print("%d idle VMs of 256 MiB each, after %d s, per VM:" % (a.n, a.idle))
            print("%-10s %8s %8s %8s %8s %8s %12s %8s" % (
                "made", "PSS", "anon", "file", "shmem", "RSS", "MemAvail -",
                "CPU %"))
            for m, r in res.items():
                print("%-10s %8.1f %8.1f %8.1f %8.1f %8.1f %12.1f %8.2f" % (
                    m, r["pss_mib_per_vm"], r["pss_anon_mib_per_vm"],
                    r["pss_file_mib_per_vm"], r["pss_shmem_mib_per_vm"],
                    r["rss_mib_per_vm"], r["host_memavailable_drop_mib_per_vm"],
                    r["idle_cpu_percent_per_vm"]))
            print("(MiB; CPU in % of one core)")
        print(json.dumps(res))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
