#!/usr/bin/python3
"""The seed demo's git-clone workflow with the Python binding.

Creates a VM with user-mode networking, clones REPO_URL inside it, runs a
few commands, copies one file of the clone out to the host and deletes
the VM (also when something fails).  Needs a guest root filesystem with
git (scripts/build-image.sh --rootfs).

    PYTHONPATH=bindings/python AETH_LIBRARY=build/lib/libaetherium.so.0 \\
        /usr/bin/python3 examples/git_workflow.py git://10.0.2.2:9418/demo.git

A guest reaches only what its network rules allow (docs/security.md); the
rule for REPO_URL is derived from it unless --allow says otherwise. Inside
the guest the host is 10.0.2.2, so a repository served on the host's
127.0.0.1 (git daemon, git http-backend) is reachable there through the
rule "host:PORT".
"""
import argparse
import ipaddress
import os
import sys
import time
import urllib.parse

import aetherium


def run(vm, argv, **kw):
    t0 = time.monotonic()
    r = vm.exec(argv, **kw)
    print("$ %s  -> exit %s in %.2fs" % (" ".join(argv), r.exit_code,
                                         time.monotonic() - t0))
    if r.stdout:
        print(r.stdout.rstrip())
    if r.exit_code != 0:
        raise SystemExit("command failed: %s\n%s" % (" ".join(argv), r.stderr))
    return r


def rules_for(url):
    """The egress rules a clone of `url` needs."""
    u = urllib.parse.urlsplit(url)
    port = u.port or {"git": 9418, "http": 80, "https": 443}.get(u.scheme, 22)
    if u.hostname == "10.0.2.2":
        return ["host:%d" % port]
    try:
        ipaddress.IPv4Address(u.hostname)
        return ["%s:%d" % (u.hostname, port)]
    except ValueError:  # a name: resolved in the guest, a public address
        return ["*:%d" % port, "dns"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo_url", help="git URL the guest can reach, e.g. "
                    "git://10.0.2.2:9418/demo.git")
    ap.add_argument("--file", default="README.md",
                    help="file of the clone to copy out (default README.md)")
    ap.add_argument("--out", default=None,
                    help="where to write it on the host (default: stdout)")
    ap.add_argument("--rootfs", default=None,
                    help="guest root filesystem with git (default: "
                    "<image_dir>/rootfs.ext4)")
    ap.add_argument("--memory-mb", type=int, default=512)
    ap.add_argument("--allow", action="append", default=None,
                    help="an egress rule for the guest (repeatable; default: "
                    "what REPO_URL needs, e.g. host:9418)")
    args = ap.parse_args(argv)

    rootfs = args.rootfs
    if rootfs is None:
        image_dir = os.environ.get("AETH_IMAGE_DIR") or os.path.expanduser(
            "~/.cache/aetherium/image")
        rootfs = os.path.join(image_dir, "rootfs.ext4")
    t0 = time.monotonic()
    with aetherium.VMM() as vmm, \
         aetherium.VM(name="git-demo", vcpus=1, memory_mb=args.memory_mb,
                      network=True, allow=args.allow or rules_for(args.repo_url),
                      rootfs_path=rootfs, vmm=vmm) as vm:
        print("VM %s running (%s, %s) after %.1fs" % (
            vm.id, vm.backend, vm.accel, time.monotonic() - t0))
        run(vm, ["git", "--version"])
        run(vm, ["git", "clone", args.repo_url, "/root/repo"], timeout=300)
        run(vm, ["git", "-C", "/root/repo", "log", "--oneline", "-n", "5"])
        run(vm, ["ls", "-la", "/root/repo"])
        data = vm.get_file("/root/repo/" + args.file)
        if args.out:
            with open(args.out, "wb") as f:
                f.write(data)
            print("copied %s (%d bytes) to %s" % (args.file, len(data), args.out))
        else:
            sys.stdout.write(data.decode("utf-8", "replace"))
    print("VM deleted; total %.1fs" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
