#!/usr/bin/python3
"""aeth-jailer on its own, with a shell or Python in place of QEMU: what a
VMM gets (lib/jail/jail.h is the contract, docs/security.md the why).

- As root: the "VMM" runs as the given uid/gid, without capabilities,
  with no_new_privs, as PID 1 of its own pid namespace, in its own
  network namespace, with a read-only root holding /usr, /etc/ld.so.cache
  and five device nodes, /var/tmp = the overlay dir (writable, TMPDIR),
  host name "aetherium", and an environment of TMPDIR, PATH and
  AETH_VM_DIR only (a secret in the jailer's caller's environment does
  not reach it); descriptors 4.. are passed, nothing else.
- Bad command lines are refused on the status pipe with the reason.
- With an egress rule the jailer stays as the relay: same uid, chrooted,
  no capabilities, only AETH_VM_DIR in its environment; the VMM reaches
  the allowed host port and not the next one, nor other addresses.
- Not root: the same confinement in a user namespace (uid kept).
"""
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("AETH_BUILD_ROOT", os.getcwd())
JAILER = os.environ.get("AETH_JAILER", os.path.join(BUILD, "lib", "jail", "aeth-jailer"))
UID = 1900065001
tmp = tempfile.mkdtemp(prefix="aeth-jt-")
procs = []
relays = []  # our children that stay as relays


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    cleanup()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        die(msg)
    print("ok - " + msg)


def cleanup():
    for p in procs:
        try:
            os.kill(p, 9)
        except OSError:
            pass
    shutil.rmtree(tmp, ignore_errors=True)


def dirs(name, owner=UID):
    root = os.path.join(tmp, name, "root")
    over = os.path.join(tmp, name, "tmp")
    os.makedirs(root, mode=0o700)
    os.makedirs(over, mode=0o700)
    os.chown(over, owner, owner)
    return root, over


def jail(args, user=None, env=None):
    """Run aeth-jailer ARGS with fd 3 the status pipe and fd 4 a pipe the
    'VMM' writes its findings to. (status line, VMM output)."""
    st_r, st_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(st_w, 3)
            os.dup2(out_w, 4)
            for fd in (st_r, st_w, out_r, out_w):
                if fd > 4:
                    os.close(fd)
            os.closerange(5, 1024)
            if user:
                pw = pwd.getpwnam(user)
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
            os.execve(JAILER, [JAILER] + args, env or {"SECRET": "db-password"})
        finally:
            os._exit(127)
    os.close(st_w)
    os.close(out_w)
    status = b""
    while True:
        b = os.read(st_r, 1024)
        if not b:
            break
        status += b
    os.close(st_r)
    status = status.decode().strip()
    parts = status.split()
    if len(parts) == 3 and parts[0] == "ok" and parts[2] != "0":
        relays.append(pid)  # it stays as the relay: reaped at the end
    else:
        os.waitpid(pid, 0)
    return status, out_r


def read_all(fd, timeout=30):
    data = b""
    end = time.time() + timeout
    while time.time() < end:
        b = os.read(fd, 65536)
        if not b:
            break
        data += b
    os.close(fd)
    return data.decode()


PROBE = r"""
exec 1>&4 2>&4
echo "uid=$(id -u) gid=$(id -g)"
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|NSpid):' /proc/$$/status
echo "pid1=$(tr '\0' ' ' < /proc/1/cmdline)"
echo "host=$(hostname)"
echo "root=$(ls / | tr '\n' ' ')"
echo "etc=$(ls /etc | tr '\n' ' ')"
echo "dev=$(ls /dev | tr '\n' ' ')"
echo "net=$(ls /sys/class/net 2>/dev/null | tr '\n' ' ')$(cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "env=$(env | sort | tr '\n' ' ')"
ls /proc/$$/fd > /var/tmp/fds
echo "fds=$(tr '\n' ' ' < /var/tmp/fds)"
touch /x 2>/dev/null && echo "rootwrite=yes" || echo "rootwrite=no"
echo hi > /var/tmp/f && echo "tmpwrite=yes" || echo "tmpwrite=no"
test -e /root || test -e /home || test -e /run && echo "hostdirs=yes" || echo "hostdirs=no"
"""


def field(out, key):
    for line in out.splitlines():
        if line.startswith(key + "=") or line.startswith(key + ":"):
            return line.split("=" if "=" in line[:len(key) + 1] else ":", 1)[1].strip()
    return None


def main():
    if not os.access(JAILER, os.X_OK):
        die("%s not built" % JAILER)
    vm_id = "0b6f3f0e-4a43-4c1e-9d55-3c2f1e0a9b7d"
    root, over = dirs("a")
    status, out = jail(["--id", vm_id, "--exec", "/bin/sh", "--root", root,
                        "--tmp", over, "--uid", str(UID), "--gid", str(UID),
                        "--vm-dir", "/srv/vm", "--fds", "1", "--", "sh", "-c", PROBE])
    o = read_all(out)
    print(o)
    check(status.startswith("ok ") and status.endswith(" 0"),
          "status: %s (no relay without rules)" % status)
    check(field(o, "uid") == "%d gid=%d" % (UID, UID), "runs as uid/gid %d" % UID)
    for cap in ("CapEff", "CapPrm", "CapBnd"):
        check(field(o, cap) == "0000000000000000", "%s is empty" % cap)
    check(field(o, "NoNewPrivs") == "1", "no_new_privs")
    check(field(o, "NSpid").split()[-1] == "1" and
          field(o, "pid1").startswith("sh -c"), "PID 1 of its own pid namespace")
    check(field(o, "host") == "aetherium", "its own UTS namespace")
    seen = set(field(o, "root").split())
    check({"dev", "etc", "proc", "usr", "var"} <= seen <=
          {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin",
           "usr", "var"}, "its root: %s" % field(o, "root"))
    check(field(o, "etc") == "ld.so.cache", "its /etc: ld.so.cache only")
    check(field(o, "dev").split() == ["full", "null", "random", "urandom", "zero"],
          "its /dev: %s" % field(o, "dev"))
    check(field(o, "net").split() == ["lo"], "its network namespace has only lo")
    env = dict(kv.split("=", 1) for kv in field(o, "env").split())
    env.pop("PWD", None)  # the shell sets it
    check(env == {"TMPDIR": "/var/tmp", "PATH": "/usr/bin:/bin",
                  "AETH_VM_DIR": "/srv/vm"},
          "its environment: %s (the caller's SECRET is not there)" % sorted(env))
    fds = sorted(int(f) for f in field(o, "fds").split())
    check([f for f in fds if f < 10] == [0, 1, 2, 4],  # dash keeps 10+ for itself
          "its descriptors: 0-2 and the one passed (the status pipe 3 is not): "
          "%s" % fds)
    check(field(o, "rootwrite") == "no" and field(o, "tmpwrite") == "yes",
          "/ is read-only, /var/tmp (the overlay dir) writable")
    check(field(o, "hostdirs") == "no", "no /root, /home or /run")
    check(os.path.exists(os.path.join(over, "f")), "what it wrote is in the overlay dir")

    # refused command lines
    r2, _ = dirs("b")
    for args, why in (
            (["--id", vm_id, "--exec", "/bin/sh", "--root", r2, "--tmp", over,
              "--fds", "0", "--", "true"], "--uid and --gid must name"),
            (["--id", vm_id, "--exec", "/bin/sh", "--root", r2, "--tmp", over,
              "--uid", "0", "--gid", "0", "--fds", "0", "--", "true"],
             "--uid and --gid must name"),
            (["--bogus", "1"], "unknown option --bogus"),
            (["--id", vm_id, "--exec", "sh", "--root", r2, "--tmp", over, "--uid",
              str(UID), "--gid", str(UID), "--", "true"], "absolute"),
            (["--id", vm_id, "--exec", "/bin/sh", "--root", r2, "--tmp", over,
              "--uid", str(UID), "--gid", str(UID), "--allow", "host:99999",
              "--", "true"], "port must be a number"),
            (["--id", vm_id, "--exec", "/bin/sh", "--root", r2, "--tmp", over,
              "--uid", str(UID), "--gid", str(UID), "--fds", "99", "--", "true"],
             "--fds")):
        status, out = jail(args)
        os.close(out)
        check(status.startswith("error ") and why in status,
              "refused: %s -> %s" % (" ".join(args[:2]), status))

    # the relay: one allowed host port, the next refused
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    nxt = socket.socket()
    nxt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        nxt.bind(("127.0.0.1", port + 1))
        nxt.listen(4)
    except OSError:
        nxt = None
    accepted = []

    def serve(s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            accepted.append(s.getsockname()[1])
            c.sendall(b"hello from the host\n")
            c.close()
    threading.Thread(target=serve, args=(srv,), daemon=True).start()
    if nxt:
        threading.Thread(target=serve, args=(nxt,), daemon=True).start()
    client = r"""
import os, socket, sys
out = os.fdopen(4, "w")
def try_(addr, port):
    try:
        s = socket.create_connection((addr, port), 3)
        out.write("%s:%d got %r\n" % (addr, port, s.recv(100)))
    except OSError as e:
        out.write("%s:%d refused %s\n" % (addr, port, e.__class__.__name__))
for a, p in (("127.0.0.1", P), ("127.0.0.1", P + 1), ("10.9.8.7", P)):
    try_(a, p)
out.close()
import time
while not os.path.exists("/var/tmp/done"):  # the test looks at the relay
    time.sleep(0.05)
""".replace("P", str(port))
    r3, o3 = dirs("c")
    status, out = jail(["--id", vm_id, "--exec", "/usr/bin/python3", "--root", r3,
                        "--tmp", o3, "--uid", str(UID), "--gid", str(UID),
                        "--vm-dir", "/srv/vm3", "--allow", "host:%d" % port,
                        "--fds", "1", "--", "python3", "-c", client])
    parts = status.split()
    check(status.startswith("ok ") and len(parts) == 3 and int(parts[2]) > 0,
          "with a rule the jailer stays as the relay: %s" % status)
    relay = int(parts[2])
    procs.append(relay)
    rs = open("/proc/%d/status" % relay).read()
    check("Uid:\t%d" % UID in rs and "CapEff:\t0000000000000000" in rs and
          "CapBnd:\t0000000000000000" in rs, "the relay: the VM's uid, no capabilities")
    check(os.listdir("/proc/%d/root" % relay) == [], "the relay is chrooted (empty)")
    renv = open("/proc/%d/environ" % relay, "rb").read().split(b"\0")
    check(not any(b"SECRET" in e or b"db-password" in e for e in renv),
          "the relay's environment (even its initial memory) holds nothing of "
          "the caller's: %s" % [e for e in renv if e])
    o = read_all(out)
    print(o)
    open(os.path.join(o3, "done"), "w").close()
    check("127.0.0.1:%d got b'hello from the host\\n'" % port in o,
          "the allowed host port answers through the relay")
    check("127.0.0.1:%d refused" % (port + 1) in o and (port + 1) not in accepted,
          "the next port is refused; its server saw nothing")
    check("10.9.8.7:%d refused" % port in o, "another address on the port: refused")
    end = time.time() + 10  # the relay ends with its VMM
    while time.time() < end and os.waitpid(relay, os.WNOHANG) == (0, 0):
        time.sleep(0.05)
    check(not os.path.exists("/proc/%d" % relay), "the relay ended with its VMM")

    # --ram-discard private: fallocate(PUNCH_HOLE|KEEP_SIZE) is a no-op that
    # succeeds (a restored VM's sealed memfd), other fallocate modes work
    punch = r"""
exec 1>&4 2>&4
printf 'ABCDEFGH%.0s' $(seq 1024) > /var/tmp/p
fallocate -p -o 0 -l 4096 /var/tmp/p && echo "punch=ok"
echo "head=$(head -c 4 /var/tmp/p | od -An -tx1 | tr -d ' ')"
fallocate -l 65536 /var/tmp/g && echo "alloc=$(stat -c %s /var/tmp/g)"
"""
    for discard, head in ((True, "41424344"), (False, "00000000")):
        r5, o5 = dirs("e" if discard else "f")
        status, out = jail(["--id", vm_id, "--exec", "/bin/sh", "--root", r5,
                            "--tmp", o5, "--uid", str(UID), "--gid", str(UID),
                            "--fds", "1"] +
                           (["--ram-discard", "private"] if discard else []) +
                           ["--", "sh", "-c", punch])
        o = read_all(out)
        print(o)
        check(status.startswith("ok ") and field(o, "punch") == "ok" and
              field(o, "head") == head and field(o, "alloc") == "65536",
              "--ram-discard private %s: a hole punched reads %s, other "
              "fallocate works: %s" % ("on" if discard else "off", head, o))
    status, out = jail(["--ram-discard", "shared"])
    os.close(out)
    check(status.startswith("error ") and "only 'private'" in status,
          "refused: --ram-discard shared -> %s" % status)

    # not root: a user namespace, the caller's uid
    r4, o4 = dirs("d", owner=65534)
    os.chmod(os.path.join(tmp, "d"), 0o755)
    os.chmod(tmp, 0o755)
    os.chown(r4, 65534, 65534)
    status, out = jail(["--id", vm_id, "--exec", "/bin/sh", "--root", r4, "--tmp", o4,
                        "--fds", "1", "--", "sh", "-c", PROBE], user="nobody")
    o = read_all(out)
    print(o)
    check(status.startswith("ok "), "not root: started in a user namespace (%s)" % status)
    check(field(o, "CapEff") == "0000000000000000" and field(o, "NoNewPrivs") == "1"
          and field(o, "NSpid").split()[-1] == "1" and
          field(o, "net").split() == ["lo"] and field(o, "etc") == "ld.so.cache",
          "not root: no capabilities, its own pid and network namespaces, the "
          "minimal root")
    cleanup()
    print("jailer checks passed")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        cleanup()
        raise
