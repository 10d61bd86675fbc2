#!/usr/bin/python3
"""VM from a snapshot to agent-ready, against a cold boot of the same shape.

    snapshot.py [--build DIR] [-n ROUNDS] [--json OUT]

Each round runs, one after the other so machine load hits all alike:
build/bench/vm/bench_vm -s on -n 3 (in a fresh state dir: the first start
makes the snapshot, the other two restore from it), bench_vm -s off -n 1
(a cold boot through the library: same shape, jail on) and
bench/boot/bootrun.py -n 1 (bare QEMU booting the same kernel and
initramfs to its init, no library). Times are aeth_vm_start() until the
agent answered and took its identity (docs/protocol.md "setup").
restore_ratio = median restore / median cold boot (goal <= 0.1);
restore_vs_bare = median restore / median bare QEMU boot.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench_vm(build, env, *args):
    out = subprocess.run([os.path.join(build, "bench/vm/bench_vm")] + list(args),
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("-n", type=int, default=5)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    img = os.environ.get("AETH_IMAGE_DIR") or os.path.expanduser("~/.cache/aetherium/image")
    env = dict(os.environ, AETH_JAILER=os.path.join(a.build, "lib/jail/aeth-jailer"))
    restores, makes, colds, bares = [], [], [], []
    for i in range(a.n):
        r = bench_vm(a.build, env, "-n", "3", "-e", "1", "-s", "on")
        if r["origin"] != ["snapshot"] * 3:
            sys.exit("bench_vm -s on did not restore: %s" % r)
        makes.append(r["boot_ms"][0])
        restores.extend(r["boot_ms"][1:])
        c = bench_vm(a.build, env, "-n", "1", "-e", "1", "-s", "off")
        colds.extend(c["boot_ms"])
        b = subprocess.run(
            ["/usr/bin/python3", os.path.join(ROOT, "bench/boot/bootrun.py"),
             "--kernel", os.path.join(img, "vmlinux"),
             "--initrd", os.path.join(img, "initrd.cpio"),
             "-n", "1", "--json", "--no-tsc-khz", "--append", c["cmdline"]],
            check=True, capture_output=True, text=True).stdout
        bs = json.loads(b)["summary"]["median_s"]
        if bs is not None:
            bares.append(bs * 1000)
        print("round %d: first start (makes the snapshot) %d ms, restores %s ms, "
              "cold %s ms, bare QEMU %s ms" % (i + 1, r["boot_ms"][0],
                                               r["boot_ms"][1:], c["boot_ms"],
                                               round(bs * 1000) if bs else "-"),
              file=sys.stderr)
    res = {"rounds": a.n, "restore_ms": restores, "make_snapshot_ms": makes,
           "cold_ms": colds, "bare_qemu_ms": bares,
           "restore_median_ms": statistics.median(restores),
           "cold_median_ms": statistics.median(colds),
           "bare_qemu_median_ms": statistics.median(bares) if bares else None,
           "make_snapshot_median_ms": statistics.median(makes)}
    res["restore_ratio"] = round(res["restore_median_ms"] / res["cold_median_ms"], 3)
    if bares:
        res["restore_vs_bare"] = round(res["restore_median_ms"] /
                                       res["bare_qemu_median_ms"], 3)
    print("%-44s %10s" % ("", "median ms"))
    for k, label in (("restore_median_ms", "restore to agent-ready (snapshot)"),
                     ("cold_median_ms", "cold boot to agent-ready (library)"),
                     ("bare_qemu_median_ms", "bare QEMU boot to init"),
                     ("make_snapshot_median_ms", "first start of a shape (makes it)")):
        print("%-44s %10s" % (label, "-" if res[k] is None else "%.0f" % res[k]))
    print("restore / cold boot: %.3f (goal <= 0.1); restore / bare QEMU: %s" %
          (res["restore_ratio"], res.get("restore_vs_bare", "-")))
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
