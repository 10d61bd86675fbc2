#!/usr/bin/python3
"""tests/image: scripts/build-image.sh builds (or reuses) the guest image, and
the image is what docs/image.md says: manifest, ELF vmlinux, newc cpio with the
agent as /init, busybox, the modules listed in /etc/aeth/modules; a second run
is skipped by the manifest; the image boots under bare QEMU (TCG) and loads its
modules (boot probe, not the agent: vm_boot tests the agent).

Usage: test_image.py SOURCE_ROOT AGENT_BIN
Image dir: $AETH_IMAGE_DIR or ~/.cache/aetherium/image (the one the vm tests
use), so this is cheap when the cache is current.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_newc(path):
    """Return {name: (mode, data)} of a newc archive (what the kernel unpacks)."""
    out = {}
    data = open(path, "rb").read()
    pos = 0
    while pos + 110 <= len(data):
        hdr = data[pos:pos + 110]
        if hdr[:6] != b"070701":
            raise ValueError("bad newc magic at %d" % pos)
        field = lambda i: int(hdr[6 + 8 * i:14 + 8 * i], 16)
        mode, fsize, nsize = field(1), field(6), field(11)
        name = data[pos + 110:pos + 110 + nsize - 1].decode()
        pos = (pos + 110 + nsize + 3) & ~3
        body = data[pos:pos + fsize]
        pos = (pos + fsize + 3) & ~3
        if name == "TRAILER!!!":
            break
        out[name] = (mode, body)
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    src, agent = sys.argv[1], sys.argv[2]
    out = os.environ.get("AETH_IMAGE_DIR") or os.path.expanduser("~/.cache/aetherium/image")
    script = os.path.join(src, "scripts", "build-image.sh")
    if not os.path.exists(agent):
        print("FAIL agent binary %s missing: meson compile builds it" % agent)
        return 1

    t = time.monotonic()
    r = subprocess.run([script, "--out", out, "--agent", agent], capture_output=True, text=True)
    first_s = time.monotonic() - t
    sys.stdout.write(r.stdout)
    sys.stdout.write(r.stderr)
    check(r.returncode == 0, "build-image.sh exits 0 (%.1f s)" % first_s)
    if r.returncode != 0:
        return 1

    m = json.load(open(os.path.join(out, "manifest.json")))
    for k in ("kernel_version", "kernel_package", "agent_sha256", "inputs_hash", "files", "modules"):
        check(k in m, "manifest has %s" % k)
    check(m["agent_sha256"] == sha256(agent), "manifest agent_sha256 is the agent's")
    for f in ("vmlinux", "initrd.cpio"):
        p = os.path.join(out, f)
        check(os.path.exists(p) and m["files"][f]["size"] == os.path.getsize(p),
              "%s exists with the manifest's size" % f)
    with open(os.path.join(out, "vmlinux"), "rb") as f:
        head = f.read(20)
    check(head[:4] == b"\x7fELF" and head[4] == 2 and head[18] == 62,
          "vmlinux is an x86-64 ELF64")
    check(m["files"]["initrd.cpio"]["sha256"] == sha256(os.path.join(out, "initrd.cpio")),
          "initrd.cpio sha256 matches the manifest")

    cpio = read_newc(os.path.join(out, "initrd.cpio"))
    check("init" in cpio and cpio["init"][0] & 0o111
          and hashlib.sha256(cpio["init"][1]).hexdigest() == m["agent_sha256"],
          "cpio /init is the agent, executable")
    check("bin/busybox" in cpio and cpio["bin/busybox"][1][:4] == b"\x7fELF", "cpio has /bin/busybox")
    for applet in ("bin/sh", "bin/ls", "bin/cat", "sbin/ip", "sbin/ifconfig", "sbin/route", "bin/wget"):
        e = cpio.get(applet)
        check(e is not None and (e[0] & 0o170000) == 0o120000 and e[1] == b"/bin/busybox",
              "cpio /%s -> /bin/busybox" % applet)
    for d in ("proc", "sys", "dev", "tmp", "root", "etc/aeth", "lib/modules/aeth"):
        check(d in cpio and (cpio[d][0] & 0o170000) == 0o040000, "cpio has dir /%s" % d)
    check("dev/console" in cpio and (cpio["dev/console"][0] & 0o170000) == 0o020000,
          "cpio has /dev/console char device")
    for f in ("etc/passwd", "etc/group", "etc/resolv.conf"):
        check(f in cpio, "cpio has /%s" % f)
    listed = [l for l in cpio.get("etc/aeth/modules", (0, b""))[1].decode().splitlines() if l]
    check(len(listed) == len(m["modules"]) and len(listed) > 0,
          "/etc/aeth/modules lists the manifest's %d modules" % len(m["modules"]))
    for p in listed:
        check(p.lstrip("/") in cpio and cpio[p.lstrip("/")][1][:4] == b"\x7fELF",
              "module %s is in the cpio" % p)
    names = [os.path.basename(p)[:-3] for p in listed]
    for need in ("virtio", "virtio_ring", "virtio_mmio", "virtio_console", "virtio_blk", "virtio_net",
                 "vmw_vsock_virtio_transport"):
        check(need in names, "module %s listed" % need)
    if "virtio" in names and "virtio_mmio" in names and "virtio_console" in names:
        check(names.index("virtio") < names.index("virtio_mmio") < names.index("virtio_console"),
              "modules in dependency order")

    t = time.monotonic()
    r = subprocess.run([script, "--out", out, "--agent", agent], capture_output=True, text=True)
    again_s = time.monotonic() - t
    check(r.returncode == 0 and "up to date" in r.stdout,
          "second build is skipped via the manifest (%.1f s)" % again_s)

    # One real boot with the probe: modules load, the virtio-serial port named
    # "agent" works. Bare QEMU, TCG, with the recommended tsc_early_khz.
    bootrun = os.path.join(src, "bench", "boot", "bootrun.py")
    r = subprocess.run(["/usr/bin/python3", bootrun, "--kernel", os.path.join(out, "vmlinux"),
                        "--initrd", os.path.join(out, "initrd.cpio"), "-n", "1",
                        "--deadline", "120", "--json"], capture_output=True, text=True)
    try:
        res = json.loads(r.stdout)
        ok = res["summary"]["ok"] == 1
        detail = "%.2f s to init" % res["boots"][0]["time_to_init_s"] if ok else json.dumps(res["boots"][0])
    except (ValueError, KeyError, TypeError):
        ok, detail = False, r.stdout[-500:] + r.stderr[-500:]
    check(ok, "image boots under bare QEMU and the probe answers on the agent port (%s)" % detail)

    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
