#!/usr/bin/python3
"""Escape suite: a hostile submitter names host files and devices.

Before, vm:create took "rootfs": "/some/host/file", checked it with
access(R_OK) as root and gave it to QEMU's -drive: a guest left in its
initramfs read the file with `head -c 120 /dev/vda` (a root-only 0600
file, a block device, PostgreSQL's data files were all accepted).

Here, with a real worker and Redis/PostgreSQL, without booting anything
that should not boot:
- payloads naming a host path (a root-only 0600 file, a block device, a
  symlink, a relative path) are refused at submit, and refused by the
  worker too when they are put in the queue directly, bypassing the
  client; no VM boots, the secret never reaches a guest;
- the operator's catalogue cannot be turned against the host either: an
  image whose root disk is a symbolic link (to a file the operator did
  not mean) or a device node is refused when the VM starts, saying why;
- a state dir made by someone else (mode 0777, another owner, a
  symlink) is refused by aeth-worker with the problem and the fix.
"""
import json
import os
import shutil
import stat
import subprocess

from escape import (Worker, check, create_vm, die, enqueue, psql, start, state_dir,
                    submit, tmp)
from e2e_support import WORKER, image_dir


def block_device():
    for name in sorted(os.listdir("/dev")):
        p = os.path.join("/dev", name)
        try:
            if stat.S_ISBLK(os.stat(p).st_mode):
                return p
        except OSError:
            pass
    return None


def main():
    url, redis, env = start()
    secret = os.path.join(tmp, "secret")
    with open(secret, "w") as f:
        f.write("ROOT-ONLY-SECRET\n")
    os.chmod(secret, 0o600)
    link = os.path.join(tmp, "innocent.ext4")
    os.symlink(secret, link)
    dev = block_device()
    if not dev:
        die("no block device in /dev to try (there always is one on these "
            "machines: the root disk)")

    # a catalogue in an image dir of the operator's: "linked" has a root
    # disk that is a symlink, "device" one that is a device node
    img = os.path.join(tmp, "images")
    os.makedirs(img)
    for f in ("vmlinux", "initrd.cpio"):
        src = os.path.join(image_dir(), f)
        try:
            os.link(src, os.path.join(img, f))
        except OSError:
            shutil.copy(src, os.path.join(img, f))
    os.symlink(secret, os.path.join(img, "linked.ext4"))
    os.mknod(os.path.join(img, "device.ext4"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    cfg = ("vmm:\n  image_dir: %s\nimages:\n"
           "  linked: {rootfs: linked.ext4}\n"
           "  device: {rootfs: device.ext4}\n" % img)
    w = Worker("esc-files", env, config=cfg)

    for path in (secret, dev, link, "disk.ext4"):
        r = submit(env, "-type", "vm:create", "-payload",
                   json.dumps({"name": "steal", "rootfs": path}), expect=1)
        check('"rootfs" takes true or false, not a path' in r.stderr,
              "payload rootfs %s: refused at submit" % path)
        r = submit(env, "-type", "vm:create", "-name", "steal", "-rootfs", path,
                   expect=1)
        check("give default (the image's root disk) or none" in r.stderr,
              "aeth-submit -rootfs %s: refused" % path)
    # straight into the queue: the worker refuses it as well
    tid = enqueue(env, "default", "vm:create",
                  json.dumps({"name": "steal", "rootfs": secret}))
    w.wait_for(r"%s.*not a path" % tid)
    check(True, "a rootfs path put in the queue directly: the worker refuses it too")
    for image, why in (("linked", "symbolic link"), ("device", "not a regular file")):
        t = create_vm(env, "steal-" + image, "-image", image, "-rootfs", "default",
                      expect=1)
        check(t["status"] == "failed" and why in t["error"] and
              t["retry_count"] == 0,
              "catalogue image %s: refused at start (%s)" % (image, t["error"][:160]))
    check(psql(url, "SELECT count(*) FROM vms WHERE status = 'running'") == "0",
          "no VM runs")
    w.stop()

    # hostile state dirs: made by someone else before the worker starts
    cases = []
    d = os.path.join(tmp, "open")
    os.mkdir(d)
    os.chmod(d, 0o777)
    cases.append((d, "has mode 0777"))
    d = os.path.join(tmp, "theirs")
    os.mkdir(d, 0o700)
    os.chown(d, 65534, 65534)
    cases.append((d, "belongs to uid 65534"))
    d = os.path.join(tmp, "link")
    os.symlink(state_dir, d)
    cases.append((d, "is a symbolic link"))
    for d, why in cases:
        e = dict(env, AETH_STATE_DIR=d)
        r = subprocess.run([WORKER, "-id", "esc-dir", "-concurrency", "1"], env=e,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode != 0 and why in r.stderr and "state dir" in r.stderr,
              "state dir %s: refused (%s)" % (os.path.basename(d),
                                              r.stderr.strip().splitlines()[-1][:140]
                                              if r.stderr.strip() else "no message"))
    print("host file escape checks passed")


if __name__ == "__main__":
    main()
