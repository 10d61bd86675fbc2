#!/usr/bin/python3
"""A strict local stand-in for Firecracker's `jailer`, for tests.

Firecracker cannot run on our machines (docs/firecracker.md), and neither
can its jailer's product, so the jailer path of the backend is tested
against this program. It follows Firecracker's docs/jailer.md and
src/jailer (main.rs, env.rs, cgroup.rs, chroot.rs; utils/arg_parser.rs and
validators.rs for the command line), step by step and with the same
error texts, and does for real what can be done here as root:

- the command line: exactly the jailer's flags (--id, --exec-file, --uid,
  --gid required; --chroot-base-dir default /srv/jailer, --netns,
  --daemonize, --new-pid-ns, --cgroup and --resource-limit repeatable,
  --cgroup-version default 1, --parent-cgroup, --version, --help), values
  never starting with "--", everything after "--" for the exec file;
- the checks: id of 1..64 alphanumerics and '-', exec file and chroot base
  canonicalized and existing, uid/gid u32, cgroup version, cgroup
  `<file>=<value>` syntax and file names, parent cgroup relative without
  '.' or '..', controllers present in /proc/mounts, resource limits;
- the work: closes inherited descriptors, clears the environment, creates
  <base>/<exec file name>/<id>/root, copies the exec file there (refusing
  a hard link), sets RLIMIT_NOFILE (2048 by default) and the given limits,
  creates <controller mount>/<parent cgroup>/<id> for each controller,
  writes the values (v1: inheriting the parent's value first, as the
  jailer does) and its pid to tasks / cgroup.procs, joins --netns, makes a
  mount namespace, pivot_root()s into the root, creates /dev, /dev/net
  and /run (0700, owned by uid:gid), mknod()s /dev/net/tun, /dev/kvm
  (/dev/urandom, /dev/userfaultfd), chowns them, daemonizes if asked,
  forks into a new pid namespace if asked (the child's pid in
  /<exec file name>.pid; else its own pid there), drops to gid/uid
  (setgroups([]) first) and execs /<exec file name> --id <id>
  --start-time-us N --start-time-cpu-us N --parent-cpu-time-us N <extra>.

What differs, because the exec file here is a Python program (the
Firecracker stand-in) and not a static binary:
- Inside the mount namespace, before pivot_root, it bind-mounts the
  host's /usr read-only at <root>/usr and makes the merged-/usr links
  bin, lib, lib64, sbin in the root, so that /usr/bin/python3 runs there;
  and it bind-mounts, read-only, below <root>/.standin/: the API spec
  (firecracker-api.yaml) and the guest program (the aeth-agent, from
  AETH_FC_STANDIN_GUEST or $AETH_BUILD_ROOT/agent/aeth-agent). A real
  jail has none of these; the Firecracker stand-in refuses API paths
  below them (AETH_FC_STANDIN_JAILED=1), as a real jailed Firecracker
  would find nothing there.
- The environment is cleared except the AETH_FC_STANDIN_* knobs (and
  AETH_BUILD_ROOT), which the tests use; it then sets
  AETH_FC_STANDIN_JAILED, _SPEC and _GUEST for the jailed stand-in.
- AETH_FC_STANDIN_LOG (a host path) is opened before the chroot and
  passed as AETH_FC_STANDIN_LOG_FD; the jailer's own line in that log
  (`{"jailer": ...}`) records its command line, uid, gid, chroot and the
  cgroup files it wrote.
- clone(CLONE_NEWPID) is unshare(CLONE_NEWPID) + fork(); the effect is
  the same (the child is pid 1 of a new pid namespace).
"""

import ctypes
import json
import os
import re
import resource
import shutil
import stat
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_PATH = os.path.join(os.path.dirname(HERE), "firecracker-api.yaml")
VERSION = "1.17.0-dev"
PROC_MOUNTS = "/proc/mounts"

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_SLAVE = 1 << 19
MNT_DETACH = 2
SYS_PIVOT_ROOT = 155

# name: (takes a value, required, repeatable, default)
ARGS = {
    "id": (True, True, False, None),
    "exec-file": (True, True, False, None),
    "uid": (True, True, False, None),
    "gid": (True, True, False, None),
    "chroot-base-dir": (True, False, False, "/srv/jailer"),
    "netns": (True, False, False, None),
    "daemonize": (False, False, False, None),
    "new-pid-ns": (False, False, False, None),
    "cgroup": (True, False, True, None),
    "resource-limit": (True, False, True, None),
    "cgroup-version": (True, False, False, "1"),
    "parent-cgroup": (True, False, False, None),
    "version": (False, False, False, None),
}
# What the tests' knobs and the stand-in plumbing need through the jail.
KEPT_ENV = re.compile(r"^(AETH_FC_STANDIN_\w+|AETH_BUILD_ROOT)$")

LIBC = ctypes.CDLL(None, use_errno=True)


class JailerError(Exception):
    """Printed like the jailer prints its errors (Display), exit 1."""


def os_error(e):
    """Rust's io::Error Display: "<strerror> (os error N)"."""
    return "%s (os error %d)" % (os.strerror(e.errno), e.errno)


def check_libc(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise JailerError("%s: %s (os error %d)" % (what, os.strerror(err), err))


# ---- command line (utils/src/arg_parser.rs) ----

def parse_args(argv):
    def fail(msg):
        raise JailerError("Failed to parse arguments: " + msg)

    if "--" in argv:
        i = argv.index("--")
        args, extra = argv[:i], argv[i + 1:]
    else:
        args, extra = argv, []
    if "--help" in args or "-h" in args:
        print("Jailer v%s (aetherium test stand-in)\n" % VERSION)
        print("flags: " + " ".join("--" + a for a in ARGS))
        print("\nAny arguments after the -- separator will be supplied to "
              "the jailed binary.\n")
        sys.exit(0)
    if "--version" in args:
        print("Jailer v%s (aetherium test stand-in)\n" % VERSION)
        sys.exit(0)
    vals = {}
    it = iter(args)
    for arg in it:
        if not arg.startswith("--"):
            fail("Found argument '%s' which wasn't expected, or isn't valid "
                 "in this context." % arg)
        name = arg[2:]
        if name not in ARGS:
            fail("Found argument '%s' which wasn't expected, or isn't valid "
                 "in this context." % name)
        takes, _, multiple, _ = ARGS[name]
        if not multiple and name in vals:
            fail("The argument '%s' was provided more than once." % name)
        if not takes:
            vals[name] = True
            continue
        value = next(it, None)
        if value is None or value.startswith("--"):
            fail("The argument '%s' requires a value, but none was "
                 "supplied." % name)
        if multiple:
            vals.setdefault(name, []).append(value)
        else:
            vals[name] = value
    for name, (_, required, _, default) in ARGS.items():
        if required and name not in vals:
            fail("Argument '%s' required, but not found." % name)
        if default is not None and name not in vals:
            vals[name] = default
    return vals, extra


# ---- validation (env.rs Env::new) ----

def validate_id(vm_id):
    if not 1 <= len(vm_id) <= 64:
        raise JailerError("Invalid instance ID: Invalid len (%d);  the length "
                          "must be between 1 and 64" % len(vm_id))
    for i, c in enumerate(vm_id):
        if not (c == "-" or c.isalnum()):
            raise JailerError("Invalid instance ID: Invalid char (%s) at "
                              "position %d" % (c, i))


def canonicalize(path):
    try:
        os.stat(path)
    except OSError as e:
        raise JailerError("Failed to canonicalize path %s: %s" %
                          (path, os_error(e)))
    return os.path.realpath(path)


def bad_components(path):
    parts = path.split("/")
    return path.startswith("/") or any(p in (".", "..") for p in parts)


def cgroup_mounts(version):
    """Hierarchies as cgroup.rs finds them in /proc/mounts."""
    rx = re.compile(r"^([a-z2]*)\s(?P<dir>.*)\scgroup(?P<ver>2?)\s"
                    r"(?P<options>.*)\s0\s0$")
    unified, v1 = None, []
    with open(PROC_MOUNTS, encoding="utf-8") as f:
        for line in f:
            m = rx.match(line.rstrip("\n"))
            if not m:
                continue
            if version == 2 and m.group("ver") == "2":
                unified = m.group("dir")
                break
            if version == 1 and m.group("ver") == "":
                v1.append((m.group("dir"), m.group("options").split(",")))
    if unified is None and not v1:
        raise JailerError("Hierarchy not found: No hierarchy found for this "
                          "cgroup version.")
    return unified, v1


def controller_of(cg_file):
    parts = cg_file.split(".")
    if len(parts) < 2:
        raise JailerError("Cgroup invalid file: %s" % cg_file)
    return parts[0]


def plan_cgroups(vals, vm_id, parent):
    """[(location, [(file, value)], version)] as cgroup.rs builds them."""
    try:
        version = int(vals["cgroup-version"])
        if not 0 <= version <= 255:
            raise ValueError
    except ValueError:
        raise JailerError("%s is an invalid cgroup version specifier" %
                          vals["cgroup-version"])
    args = vals.get("cgroup", [])
    if not args and version == 2:
        unified, _ = cgroup_mounts(2)
        if unified is None:
            raise JailerError("Hierarchy not found: cgroupsv2 hierarchy missing")
        return [], version, os.path.join(unified, parent)
    if not args:
        return [], version, None
    unified, v1 = cgroup_mounts(version)
    if version not in (1, 2):
        raise JailerError("%s is an invalid cgroup version specifier" % version)
    groups = {}
    for cg in args:
        aux = cg.split("=")
        if len(aux) != 2 or not aux[1]:
            raise JailerError("Invalid format for cgroups: %s" % cg)
        if bad_components(aux[0]):
            raise JailerError("Cgroup invalid file: %s" % cg)
        ctl = controller_of(aux[0])
        if version == 1:
            mount = next((d for d, opts in v1 if ctl in opts), None)
            if mount is None:
                raise JailerError("Controller %s is unavailable" % ctl)
            key = ctl
        else:
            if unified is None:
                raise JailerError("Hierarchy not found: cgroupsv2 hierarchy "
                                  "missing")
            try:
                with open(os.path.join(unified, "cgroup.controllers")) as f:
                    available = f.read().split()
            except OSError:
                available = []
            if ctl not in available:
                raise JailerError("Controller %s is unavailable" % ctl)
            mount, key = unified, "unified"
        loc = os.path.join(mount, parent, vm_id)
        groups.setdefault(key, (loc, []))[1].append((aux[0], aux[1]))
    return list(groups.values()), version, None


def parse_limits(vals):
    limits = {"no-file": 2048}
    for arg in vals.get("resource-limit", []):
        if "=" not in arg:
            raise JailerError("Invalid format for resources limits: %s" % arg)
        name, value = arg.split("=", 1)
        if not value.isdigit():
            raise JailerError("Invalid limit value for resource: %s: invalid "
                              "digit found in string" % value)
        if name not in ("fsize", "no-file"):
            raise JailerError("Invalid resource argument: %s" % name)
        limits[name] = int(value)
    return limits


# ---- the work (env.rs Env::run, cgroup.rs, chroot.rs) ----

def write_special(path, value):
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write("%s\n" % value)
    except OSError as e:
        raise JailerError("Failed to write to %s: %s" % (path, os_error(e)))


def read_special(path):
    try:
        with open(path, encoding="utf-8") as f:
            line = f.read()
    except OSError as e:
        raise JailerError("Failed to read file %s into a string: %s" %
                          (path, os_error(e)))
    return line[:-1] if line.endswith("\n") else line


def inherit_from_parent(location, cg_file, depth):
    parent_file = os.path.join(os.path.dirname(location), cg_file)
    line = read_special(parent_file)
    if not line and depth > 0:
        try:
            inherit_from_parent(os.path.dirname(location), cg_file, depth - 1)
        except JailerError:
            pass
        line = read_special(parent_file)
    if not line:
        raise JailerError("Failed to inherit cgroups configurations from file "
                          "%s in path %s" % (cg_file, location))
    write_special(os.path.join(location, cg_file), line)


def enable_subtree(path, ctl):
    ctrl = os.path.join(path, "cgroup.subtree_control")
    if not os.path.exists(ctrl):
        return
    parent = os.path.dirname(path)
    if parent != path:
        enable_subtree(parent, ctl)
    write_special(ctrl, "+" + ctl)


def setup_cgroups(groups, version, parent, move_to):
    written = []
    if move_to is not None:
        if os.path.exists(move_to):
            write_special(os.path.join(move_to, "cgroup.procs"), os.getpid())
        return written
    depth = len([p for p in parent.split("/") if p])
    for loc, props in groups:
        try:
            os.makedirs(loc, exist_ok=True)
        except OSError as e:
            raise JailerError("Failed to create directory %s: %s" %
                              (loc, os_error(e)))
        enabled = set()
        for cg_file, value in props:
            if version == 1:
                inherit_from_parent(loc, cg_file, depth)
            else:
                ctl = controller_of(cg_file)
                if ctl not in enabled:
                    enable_subtree(os.path.dirname(loc), ctl)
                    enabled.add(ctl)
            write_special(os.path.join(loc, cg_file), value)
            written.append("%s=%s" % (os.path.join(loc, cg_file), value))
    for loc, _ in groups:
        write_special(os.path.join(loc, "tasks" if version == 1 else
                                   "cgroup.procs"), os.getpid())
    return written


def copy_exec(exec_path, chroot_dir, uid, gid):
    name = os.path.basename(exec_path)
    dst = os.path.join(chroot_dir, name)
    try:
        src = os.open(exec_path, os.O_RDONLY)
    except OSError as e:
        raise JailerError("Failed to open %s: %s" % (exec_path, os_error(e)))
    mode = os.fstat(src).st_mode
    try:
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, mode)
    except OSError as e:
        raise JailerError("Failed to open %s: %s" % (dst, os_error(e)))
    if os.fstat(out).st_nlink > 1:
        raise JailerError("Detected hard link at: %s" % dst)
    os.fchown(out, uid, gid)
    with os.fdopen(src, "rb") as fin, os.fdopen(out, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return name


def standin_plumbing(root, guest):
    """What Python needs in the jail (see the module doc): in our mount
    namespace only, read-only."""
    def bind(src, dst, is_file=False):
        if is_file:
            open(dst, "a").close()
        else:
            os.makedirs(dst, exist_ok=True)
        check_libc(LIBC.mount(src.encode(), dst.encode(), None,
                              MS_BIND | MS_REC, None), "stand-in bind " + src)
        check_libc(LIBC.mount(None, dst.encode(), None,
                              MS_REMOUNT | MS_BIND | MS_RDONLY, None),
                   "stand-in read-only " + dst)

    bind("/usr", os.path.join(root, "usr"))
    for d in ("bin", "lib", "lib64", "sbin"):
        host, inside = "/" + d, os.path.join(root, d)
        if os.path.islink(host) and not os.path.lexists(inside):
            os.symlink(os.readlink(host), inside)
        elif os.path.isdir(host) and not os.path.islink(host):
            bind(host, inside)
    plumbing = os.path.join(root, ".standin")
    os.makedirs(plumbing, exist_ok=True)
    os.chmod(plumbing, 0o755)  # whatever our umask: the VM's uid reads it
    bind(SPEC_PATH, os.path.join(plumbing, "firecracker-api.yaml"), True)
    bind(guest[0], os.path.join(plumbing, "guest"), True)


def pivot(root, guest):
    check_libc(LIBC.unshare(CLONE_NEWNS),
               "Failed to unshare into new mount namespace")
    check_libc(LIBC.mount(None, b"/", None, MS_SLAVE | MS_REC, None),
               "Failed to change the propagation type to slave")
    check_libc(LIBC.mount(root.encode(), root.encode(), None,
                          MS_BIND | MS_REC, None),
               "Failed to bind mount the jail root directory")
    standin_plumbing(root, guest)
    os.chdir(root)
    try:
        os.mkdir("old_root", 0o600)
    except OSError as e:
        raise JailerError("Failed to create the jail root directory before "
                          "pivoting root: %s" % os_error(e))
    check_libc(LIBC.syscall(SYS_PIVOT_ROOT, b".", b"old_root"),
               "Failed to pivot root")
    os.chdir("/")
    check_libc(LIBC.umount2(b"old_root", MNT_DETACH),
               "Failed to unmount the old jail root")
    os.rmdir("old_root")
    os.chroot(".")


def mknod_own(path, major, minor, uid, gid):
    try:
        os.mknod(path, stat.S_IFCHR | stat.S_IRUSR | stat.S_IWUSR,
                 os.makedev(major, minor))
    except OSError as e:
        raise JailerError("Failed to create %s via mknod inside the jail: %s" %
                          (path, os_error(e)))
    os.chown(path, uid, gid)


def uffd_minor():
    try:
        with open("/proc/misc", encoding="utf-8") as f:
            for line in f:
                dev = line.split()
                if len(dev) >= 2 and dev[1] == "userfaultfd":
                    return int(dev[0])
    except (OSError, ValueError):
        pass
    return None


def log_line(fd, entry):
    if fd is not None:
        os.write(fd, (json.dumps(entry) + "\n").encode())


def main():
    start_us = int(time.monotonic() * 1e6)
    start_cpu_us = int(time.process_time() * 1e6)
    # sanitize_process(): no inherited descriptors, no environment
    os.closerange(3, 1 << 20)
    kept = {k: v for k, v in os.environ.items() if KEPT_ENV.match(k)}
    os.environ.clear()
    try:
        vals, extra = parse_args(sys.argv[1:])
        vm_id = vals["id"]
        validate_id(vm_id)
        exec_path = canonicalize(vals["exec-file"])
        if not os.path.isfile(exec_path):
            raise JailerError("%s is not a file" % exec_path)
        exec_name = os.path.basename(exec_path)
        base = canonicalize(vals["chroot-base-dir"])
        if not os.path.isdir(base):
            raise JailerError("%s is not a directory" % base)
        chroot_dir = os.path.join(base, exec_name, vm_id, "root")
        ids = {}
        for key in ("uid", "gid"):
            v = vals[key]
            if not v.isdigit() or int(v) > 0xffffffff:
                raise JailerError("Invalid %s: %s" % (key, v))
            ids[key] = int(v)
        uid, gid = ids["uid"], ids["gid"]
        parent = vals.get("parent-cgroup", exec_name)
        if bad_components(parent):
            raise JailerError("Parent cgroup path is invalid. Path should not "
                              "be absolute or contain '..' or '.'")
        groups, cg_version, move_to = plan_cgroups(vals, vm_id, parent)
        limits = parse_limits(vals)
        minor = uffd_minor()
        guest = (kept.get("AETH_FC_STANDIN_GUEST") or
                 "%s/agent/aeth-agent --stdio" %
                 kept.get("AETH_BUILD_ROOT", "build")).split()
        try:
            os.makedirs(chroot_dir, exist_ok=True)
        except OSError as e:
            raise JailerError("Failed to create directory %s: %s" %
                              (chroot_dir, os_error(e)))
        # Env::run()
        copy_exec(exec_path, chroot_dir, uid, gid)
        if "netns" in vals:
            try:
                ns = os.open(vals["netns"], os.O_RDONLY)
            except OSError as e:
                raise JailerError("Failed to open file %s: %s" %
                                  (vals["netns"], os_error(e)))
            check_libc(LIBC.setns(ns, CLONE_NEWNET),
                       "Failed to join network namespace: netns")
            os.close(ns)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits["no-file"],) * 2)
        if "fsize" in limits:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"],) * 2)
        written = setup_cgroups(groups, cg_version, parent, move_to)
        log_fd = None
        if kept.get("AETH_FC_STANDIN_LOG"):
            log_fd = os.open(kept["AETH_FC_STANDIN_LOG"],
                             os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.set_inheritable(log_fd, True)
        log_line(log_fd, {"jailer": sys.argv[1:], "uid": uid, "gid": gid,
                          "chroot": chroot_dir, "cgroup_files": written})
        dev_null = os.open("/dev/null", os.O_RDWR) if "daemonize" in vals \
            else None
        pivot(chroot_dir, guest)
        for folder in ("/", "/dev", "/dev/net", "/run"):
            os.makedirs(folder, exist_ok=True)
            os.chmod(folder, 0o700)
            os.chown(folder, uid, gid)
        mknod_own("/dev/net/tun", 10, 200, uid, gid)
        mknod_own("/dev/kvm", 10, 232, uid, gid)
        try:
            mknod_own("/dev/urandom", 1, 9, uid, gid)
        except JailerError as e:
            print("Warning! Could not create /dev/urandom device inside "
                  "jailer: %s." % e)
        if minor is not None:
            mknod_own("/dev/userfaultfd", 10, minor, uid, gid)
        if dev_null is not None:
            if os.fork():
                os._exit(0)
            os.setsid()
            if os.fork():
                os._exit(0)
            for fd in (0, 1, 2):
                os.dup2(dev_null, fd)
        env = dict(kept)
        env.pop("AETH_FC_STANDIN_LOG", None)
        env.update({"AETH_FC_STANDIN_JAILED": "1",
                    "AETH_FC_STANDIN_SPEC": "/.standin/firecracker-api.yaml",
                    "AETH_FC_STANDIN_GUEST": " ".join(["/.standin/guest"] +
                                                      guest[1:])})
        if log_fd is not None:
            env["AETH_FC_STANDIN_LOG_FD"] = str(log_fd)
        exe = "/" + exec_name
        argv = [exe, "--id", vm_id, "--start-time-us", str(start_us),
                "--start-time-cpu-us", str(int(time.process_time() * 1e6)),
                "--parent-cpu-time-us",
                str(int(time.process_time() * 1e6) - start_cpu_us)] + extra
        if "new-pid-ns" in vals:
            leader = dev_null is None and os.getsid(0) == os.getpid()
            check_libc(LIBC.unshare(CLONE_NEWPID),
                       "Failed cloning into a new child process")
            child = os.fork()
            if child:
                save_pid(exe, child)
                os._exit(0)
            if leader:
                os.setsid()
        else:
            save_pid(exe, os.getpid())
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        try:
            os.execve(exe, argv, env)
        except OSError as e:
            raise JailerError("Failed to exec into Firecracker: %s" %
                              os_error(e))
    except JailerError as e:
        sys.stderr.write("%s\n" % e)
        sys.stderr.flush()
        sys.exit(1)


def save_pid(exe, pid):
    path = exe + ".pid"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise JailerError("Failed to open file %s: %s" % (path, os_error(e)))
    os.write(fd, str(pid).encode())
    os.close(fd)


if __name__ == "__main__":
    main()
