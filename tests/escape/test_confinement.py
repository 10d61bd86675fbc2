#!/usr/bin/python3
"""Escape suite: the VMM a guest would break into is confined.

Before, QEMU ran as the worker's uid (root in the documented set-up) with
every capability, no seccomp, the host's namespaces and no limits: a guest
that escaped QEMU owned the host.

Here, with a real worker and a TCG guest (one with a network profile, so
the jailer stays as its relay), from the host's /proc:
- QEMU: a non-root uid of its own, no capabilities (effective, permitted,
  bounding), no_new_privs, a seccomp filter; its own pid, network, mount,
  IPC and UTS namespaces (PID 1 of its pid namespace); a root that holds
  /usr and a few device nodes but not the host's /etc/passwd, /root,
  /run or the image directory;
- the relay (aeth-jailer): the same uid, no capabilities, chrooted;
- the VM's cgroup: memory = guest + 256 MiB, CPU = vCPUs + half a core,
  pids 256, and QEMU in it;
- after vm:delete: no process, cgroup, overlay directory or uid left.
"""
import glob
import os

from escape import (Worker, check, create_vm, die, qemu_pid, start,  # noqa: F401
                    state_dir, status_fields, submit, vm_id_of, vm_processes)

MIB = 1024 * 1024


def cgroup_dirs(pid):
    """controller -> directory of `pid`'s cgroups (v1 and v2)."""
    out = {}
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            mnt = pre.split()[4]
            typ, _, opts = post.split()[:3]
            if typ == "cgroup":
                for c in opts.split(","):
                    mounts.setdefault(c, mnt)
            elif typ == "cgroup2":
                mounts.setdefault("", mnt)
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            for c in ctls.split(",") if ctls else [""]:
                if c in mounts:
                    out[c] = mounts[c] + path
    return out


def read(path):
    with open(path) as f:
        return f.read().strip()


def main():
    url, redis, env = start()
    Worker("esc-jail", env, config="network:\n  profiles:\n    one:\n"
           "      allow: [\"host:9\"]\n")
    vm = vm_id_of(create_vm(env, "jailed", "-net", "one", "-memory", "256",
                            "-vcpus", "1"))
    pid = qemu_pid(vm)
    st = status_fields(pid)
    uid = int(st["Uid"].split()[0])
    check(all(int(u) == uid for u in st["Uid"].split()) and uid != 0 and
          all(int(g) == uid for g in st["Gid"].split()),
          "QEMU runs as uid/gid %d, not root" % uid)
    check(st["CapEff"] == st["CapPrm"] == st["CapBnd"] == st["CapInh"] ==
          st["CapAmb"] == "0000000000000000", "QEMU has no capabilities, "
          "bounding set included")
    check(st["NoNewPrivs"] == "1" and st["Seccomp"] == "2",
          "QEMU has no_new_privs and a seccomp filter (Seccomp: 2)")
    check(st["NSpid"].split()[-1] == "1", "QEMU is PID 1 of its own pid namespace")
    for ns in ("pid", "net", "mnt", "ipc", "uts"):
        mine = os.readlink("/proc/self/ns/%s" % ns)
        its = os.readlink("/proc/%d/ns/%s" % (pid, ns))
        check(mine != its, "QEMU has its own %s namespace (%s)" % (ns, its))
    root = "/proc/%d/root" % pid
    seen = sorted(os.listdir(root))
    check(set(seen) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32",
                        "proc", "sbin", "usr", "var"},
          "QEMU's root holds only %s" % ", ".join(seen))
    check(os.listdir(root + "/etc") == ["ld.so.cache"] and
          not os.path.exists(root + "/root") and not os.path.exists(root + "/run"),
          "no /etc/passwd, /root or /run in it")
    check(sorted(os.listdir(root + "/dev")) == ["full", "null", "random", "urandom",
                                                "zero"],
          "its /dev has null, zero, full, random, urandom only")

    qenv = sorted(e.split(b"=", 1)[0].decode() for e in
                  open("/proc/%d/environ" % pid, "rb").read().split(b"\0") if e)
    check(qenv == ["AETH_VM_DIR", "PATH", "TMPDIR"], "QEMU's environment: %s "
          "(none of the worker's: no database or Redis URL)" % qenv)
    relays = [p for p in vm_processes() if p != pid]
    check(len(relays) == 1, "one relay process (aeth-jailer) for the profile")
    rs = status_fields(relays[0])
    check(int(rs["Uid"].split()[0]) == uid and rs["CapEff"] == "0000000000000000"
          and rs["CapBnd"] == "0000000000000000" and rs["NoNewPrivs"] == "1",
          "the relay runs as the VM's uid without capabilities")
    check(os.listdir("/proc/%d/root" % relays[0]) == [],
          "the relay is chrooted in an empty directory")
    renv = open("/proc/%d/environ" % relays[0], "rb").read()
    check(b"DATABASE" not in renv and b"REDIS" not in renv,
          "the relay holds none of the worker's environment")

    cg = cgroup_dirs(pid)
    mem = cg.get("memory", cg.get(""))
    if not mem:
        die("no memory cgroup for QEMU: %s" % cg)
    check(vm in mem, "QEMU is in the VM's own cgroup %s" % mem)
    limit = read(mem + "/memory.limit_in_bytes") if os.path.exists(
        mem + "/memory.limit_in_bytes") else read(mem + "/memory.max")
    check(int(limit) == (256 + 256) * MIB, "memory limit %s = guest 256 MiB + "
          "256 MiB for QEMU" % limit)
    cpu = cg.get("cpu", cg.get(""))
    quota = (read(cpu + "/cpu.cfs_quota_us") if os.path.exists(
        cpu + "/cpu.cfs_quota_us") else read(cpu + "/cpu.max").split()[0])
    check(int(quota) == 150000, "CPU quota %s us per 100 ms: 1 vCPU + half a core"
          % quota)
    pids = cg.get("pids", cg.get(""))
    check(read(pids + "/pids.max") == "256", "pids.max 256")
    uids = os.path.join(state_dir, "uids", str(uid))
    overlay = glob.glob("/var/tmp/aetherium*/%s" % vm)
    check(os.path.exists(uids) and overlay, "its uid (%s) and overlay directory "
          "(%s) are reserved" % (uids, overlay))

    submit(env, "-type", "vm:delete", "-vm-id", vm, "-wait")
    check(not vm_processes(), "after vm:delete: no QEMU, no relay")
    check(not any(os.path.exists(d) for d in cg.values() if vm in d),
          "no cgroup of the VM left")
    check(not os.path.exists(uids) and not any(os.path.exists(o) for o in overlay),
          "no uid reservation or overlay directory left")
    print("confinement checks passed")


if __name__ == "__main__":
    main()
