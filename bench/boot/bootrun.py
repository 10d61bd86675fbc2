#!/usr/bin/python3
"""Boot the Aetherium image with bare QEMU (no library) N times and time it.

Each boot runs the image's stand-in init (rdinit=/sbin/aeth-boot-probe), which
loads the virtio modules like the agent does and writes "AETH-BOOT-OK <uptime>"
on the virtio-serial port named "agent" and on the serial console, then powers
off. We listen on the port's Unix socket (QEMU connects to us), so the time is
taken on the host: QEMU start -> first byte of the marker on the port.

Usage: bootrun.py --kernel vmlinux --initrd initrd.cpio [-n 10] [--deadline 30]
       [--append 'extra kernel args'] [--machine 'extra,-M,opts'] [--cpu max]
       [--mem 256] [--max-ports 2] [--logdir DIR] [--json] [--no-probe]
       [--no-tsc-khz]
tsc_early_khz=<host TSC kHz> is added unless --no-tsc-khz (see docs/image.md).
Prints one line per boot, then a summary table, or JSON with --json.
"""
import argparse
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BASE_APPEND = "console=ttyS0 panic=-1 quiet"


def host_tsc_khz():
    """The host's TSC rate in kHz: under TCG the guest's rdtsc runs at it, and
    telling the guest (tsc_early_khz=) avoids its PIT calibration, which fails
    under load and then hangs the boot (docs/image.md)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(round(float(line.split(":")[1]) * 1000))
    except (OSError, ValueError):
        pass
    return 2000000


def proc_cpu_s(pid):
    """CPU time (user+sys) QEMU used so far: unlike wall time, it hardly
    depends on what else the machine runs, so options compare fairly on a
    busy box."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError):
        return None


def qemu_cmd(a, sock, serial_log):
    machine = "microvm,x-option-roms=off,isa-serial=on"
    if a.machine:
        machine += "," + a.machine
    append = BASE_APPEND
    if not a.no_probe:
        append += " rdinit=/sbin/aeth-boot-probe"
    if not a.no_tsc_khz:
        append += " tsc_early_khz=%d" % host_tsc_khz()
    if a.append:
        append += " " + a.append
    cmd = [a.qemu, "-M", machine, "-accel", "tcg,thread=multi", "-cpu", a.cpu,
           "-m", str(a.mem), "-smp", str(a.smp), "-nodefaults", "-no-user-config",
           "-nographic", "-no-reboot",
           "-kernel", a.kernel, "-initrd", a.initrd, "-append", append,
           "-chardev", "file,id=ser0,path=" + serial_log, "-serial", "chardev:ser0",
           "-device", "virtio-serial-device" + (",max_ports=%d" % a.max_ports if a.max_ports else ""),
           "-chardev", "socket,id=c0,path=" + sock,
           "-device", "virtserialport,chardev=c0,name=agent"]
    return cmd + shlex.split(a.qemu_extra or "")


def one_boot(a, idx, logdir):
    tmp = tempfile.mkdtemp(prefix="aeth-boot-")
    sock = os.path.join(tmp, "agent.sock")
    serial_log = os.path.join(logdir, "boot-%03d.log" % idx) if logdir else os.path.join(tmp, "serial.log")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock)
    srv.listen(1)
    cmd = qemu_cmd(a, sock, serial_log)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    res = {"boot": idx, "ok": False, "time_to_init_s": None, "guest_uptime_s": None,
           "qemu_cpu_s": None,
           "exit_s": None, "serial_log": serial_log if logdir else None}
    conn = None
    try:
        deadline = t0 + a.deadline
        srv.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            conn = None
        buf = b""
        while conn is not None and b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            conn.settimeout(left)
            try:
                chunk = conn.recv(256)
            except socket.timeout:
                break
            if not chunk:
                break
            if not buf:
                res["time_to_init_s"] = round(time.monotonic() - t0, 3)
                res["qemu_cpu_s"] = proc_cpu_s(proc.pid)
            buf += chunk
        line = buf.decode(errors="replace").strip()
        if line.startswith("AETH-BOOT-OK"):
            res["ok"] = True
            try:
                res["guest_uptime_s"] = float(line.split()[1])
            except (IndexError, ValueError):
                pass
        else:
            res["time_to_init_s"] = None
            res["qemu_cpu_s"] = None
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()) if res["ok"] else 0.01)
            res["exit_s"] = round(time.monotonic() - t0, 3)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        if err and not res["ok"]:
            res["qemu_stderr"] = err[-500:]
        if conn:
            conn.close()
        srv.close()
        if not res["ok"]:
            try:
                with open(serial_log, errors="replace") as f:
                    res["serial_tail"] = [l.rstrip() for l in f.readlines()[-4:]]
            except OSError:
                pass
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("-n", type=int, default=10)
    p.add_argument("--deadline", type=float, default=30.0)
    p.add_argument("--append", default="")
    p.add_argument("--machine", default="")
    p.add_argument("--cpu", default="max")
    p.add_argument("--mem", type=int, default=256)
    p.add_argument("--smp", type=int, default=1)
    p.add_argument("--max-ports", type=int, default=2)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--qemu-extra", default="")
    p.add_argument("--logdir", default="")
    p.add_argument("--label", default="")
    p.add_argument("--no-probe", action="store_true",
                   help="do not add rdinit=/sbin/aeth-boot-probe (image's /init must write the marker)")
    p.add_argument("--no-tsc-khz", action="store_true",
                   help="do not add tsc_early_khz=<host TSC kHz> (reproduces the TCG boot hang)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.logdir:
        os.makedirs(a.logdir, exist_ok=True)
    results = []
    for i in range(a.n):
        r = one_boot(a, i, a.logdir)
        results.append(r)
        if not a.json:
            print("boot %2d: %s" % (i, ("init %.3f s (guest uptime %.2f s, QEMU cpu %.2f s)" % (
                r["time_to_init_s"], r["guest_uptime_s"] or 0, r["qemu_cpu_s"] or 0)) if r["ok"]
                else "HUNG/FAILED after %.0f s; serial ends: %s" % (
                    a.deadline, " | ".join(r.get("serial_tail", [])))), flush=True)
    ok = [r["time_to_init_s"] for r in results if r["ok"]]
    up = [r["guest_uptime_s"] for r in results if r["ok"] and r["guest_uptime_s"] is not None]
    cpu = [r["qemu_cpu_s"] for r in results if r["ok"] and r["qemu_cpu_s"] is not None]
    summary = {
        "label": a.label, "boots": a.n, "ok": len(ok), "failed": a.n - len(ok),
        "median_s": round(statistics.median(ok), 3) if ok else None,
        "min_s": min(ok) if ok else None, "max_s": max(ok) if ok else None,
        "mean_s": round(statistics.mean(ok), 3) if ok else None,
        "median_guest_uptime_s": round(statistics.median(up), 3) if up else None,
        "median_qemu_cpu_s": round(statistics.median(cpu), 3) if cpu else None,
        "loadavg_1m": os.getloadavg()[0],
        "qemu": qemu_cmd(a, "SOCK", "SERIAL_LOG"),
    }
    if a.json:
        print(json.dumps({"summary": summary, "boots": results}, indent=2))
    else:
        print("%-24s %5s %6s %8s %8s %8s %12s %8s" % ("label", "boots", "ok", "median", "min", "max", "guest-uptime", "cpu"))
        f = lambda v: "-" if v is None else "%.3f" % v
        print("%-24s %5d %6d %8s %8s %8s %12s %8s" % (
            a.label or "bare-qemu", a.n, len(ok), f(summary["median_s"]), f(summary["min_s"]),
            f(summary["max_s"]), f(summary["median_guest_uptime_s"]), f(summary["median_qemu_cpu_s"])))
    return 0 if len(ok) == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
