#!/usr/bin/python3
"""Library boot-to-agent-ready vs bare QEMU boot-to-init of the same image,
with the VMM jail on (as a worker run as root) and off.

Runs bench/boot/bootrun.py (bare QEMU, same kernel, initramfs, machine and
kernel command line; its stand-in init writes a marker on the agent port)
and build/bench/vm/bench_vm (aeth_vm_create + aeth_vm_start until the agent
answered hello; then `true` exec round trips) with -j on and -j off,
alternately in rounds, so machine load hits all alike. Prints a table and
writes JSON: boot_ratio is jailed library / bare QEMU, jail_ratio jailed /
unjailed library (the cost of confinement).

Usage: compare.py [--build DIR] [-n BOOTS] [-e EXECS] [--json OUT]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("-n", type=int, default=5)
    p.add_argument("-e", type=int, default=20)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    img = os.environ.get("AETH_IMAGE_DIR") or os.path.expanduser("~/.cache/aetherium/image")
    env = dict(os.environ, AETH_JAILER=os.path.join(a.build, "lib/jail/aeth-jailer"))
    bare, lib, free, execs, free_execs = [], [], [], [], []
    for i in range(a.n):
        # The library first: its JSON names the kernel command line it gave
        # the guest, and bare QEMU boots with exactly that one.
        runs = {}
        for jail in (("on", "off") if i % 2 == 0 else ("off", "on")):
            out = subprocess.run(
                [os.path.join(a.build, "bench/vm/bench_vm"), "-n", "1",
                 "-e", str(a.e if i == 0 else 1), "-j", jail],
                check=True, capture_output=True, text=True, env=env).stdout
            runs[jail] = json.loads(out)
        r = runs["on"]
        if not r.get("jailed") or runs["off"].get("jailed"):
            sys.exit("bench_vm did not run jailed and unjailed as asked: %s" % runs)
        lib.extend(r["boot_ms"])
        free.extend(runs["off"]["boot_ms"])
        if i == 0:
            execs = r["exec_true_ms"]
            free_execs = runs["off"]["exec_true_ms"]
            accel = r["accel"]
        out = subprocess.run(
            ["/usr/bin/python3", os.path.join(ROOT, "bench/boot/bootrun.py"),
             "--kernel", os.path.join(img, "vmlinux"),
             "--initrd", os.path.join(img, "initrd.cpio"),
             "-n", "1", "--json", "--no-tsc-khz", "--append", r["cmdline"]],
            check=True, capture_output=True, text=True).stdout
        b = json.loads(out)["summary"]["median_s"]
        if b is None:
            sys.exit("bare boot failed: " + out)
        bare.append(b * 1000.0)
        print("round %d: bare %.0f ms, library %.0f ms jailed, %.0f ms not" %
              (i, bare[-1], lib[-1], free[-1]), file=sys.stderr)
    res = {
        "accel": accel,
        "boots": a.n,
        "bare_qemu_boot_ms": bare,
        "library_boot_ms": lib,
        "bare_qemu_boot_median_ms": statistics.median(bare),
        "library_boot_median_ms": statistics.median(lib),
        "unjailed_boot_ms": free,
        "unjailed_boot_median_ms": statistics.median(free),
        "boot_ratio": statistics.median(lib) / statistics.median(bare),
        "jail_ratio": statistics.median(lib) / statistics.median(free),
        "exec_true_ms": execs,
        "exec_true_median_ms": statistics.median(execs) if execs else None,
        "unjailed_exec_true_median_ms":
            statistics.median(free_execs) if free_execs else None,
    }
    print("%-38s %10s %10s" % ("measure", "median", "ratio"))
    print("%-38s %8.0f ms %10s" % ("bare QEMU boot to init", res["bare_qemu_boot_median_ms"], "1.00"))
    print("%-38s %8.0f ms %10.3f" % ("library boot to agent ready, jailed",
                                     res["library_boot_median_ms"], res["boot_ratio"]))
    print("%-38s %8.0f ms %10.3f" % ("the same without the jail",
                                     res["unjailed_boot_median_ms"],
                                     res["unjailed_boot_median_ms"] /
                                     res["bare_qemu_boot_median_ms"]))
    print("%-38s %10s %10.3f" % ("jailed / unjailed boot", "", res["jail_ratio"]))
    if execs:
        print("%-38s %8.1f ms" % ("exec `true` round trip, jailed", res["exec_true_median_ms"]))
    if free_execs:
        print("%-38s %8.1f ms" % ("exec `true` round trip, unjailed",
                                  res["unjailed_exec_true_median_ms"]))
    text = json.dumps(res, indent=2)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
