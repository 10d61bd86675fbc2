#!/usr/bin/python3
"""The seed's "Example Workflow: Git Clone" through the two CLIs, for real.

These machines have no internet, so the repository is a local bare repo
served by `git daemon` on the host's loopback. The worker's network
profile "git" allows that one port ("host:PORT"); the guest reaches it at
10.0.2.2 through QEMU user-mode networking and the jailer's relay, and
runs the git of the Debian root disk (-rootfs default = the default
image's rootfs.ext4):

    aeth-submit -type vm:create -name git-demo -net git -rootfs default -wait
    aeth-submit -type vm:execute -vm-id ID -cmd git -args "clone git://10.0.2.2:PORT/repo.git" -wait
    aeth-submit -type vm:execute -vm-id ID -cmd ls -args "-la repo" -wait
    aeth-submit -type vm:delete -vm-id ID -wait

then checks the vms and executions rows. Before that, without booting: a
-net that is no profile, a profile the worker lacks and a -rootfs path
fail at once with a clear error. One VM boot in all.

Needs: AETH_TEST_DATABASE_URL (scripts/services.sh start; eval "$(scripts/
services.sh env)"), redis-server, git, qemu-system-x86_64, and the guest
image WITH the root disk: scripts/build-image.sh --rootfs (scripts/test.sh
builds it). Without rootfs.ext4 this test FAILS saying so; it never skips.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import time

from e2e_support import (UUID_RE, Worker, check, cleanups, die, image_dir,
                         procs, psql, start_services, state_dir, submit,
                         task_row, tmp, vm_processes)

FILES = {
    "README.md": "# repo\nserved by git daemon on the host\n",
    "src/main.c": "int main(void) { return 0; }\n",
    "docs/notes.txt": "cloned inside a microVM\n",
}


def git(*args, cwd=None):
    r = subprocess.run(["git"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        die("git %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_repo():
    """A bare repo with FILES at <tmp>/srv/repo.git, served by git daemon
    on 127.0.0.1:<free port> (stopped at exit, also on failure)."""
    if not shutil.which("git"):
        die("git not found: apt-get install git (scripts/setup.sh)")
    work = os.path.join(tmp, "work")
    for name, text in FILES.items():
        path = os.path.join(work, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q",
        "-m", "first commit from the host", cwd=work)
    base = os.path.join(tmp, "srv")
    os.makedirs(base)
    git("clone", "-q", "--bare", work, os.path.join(base, "repo.git"))
    port = free_port()
    d = subprocess.Popen(["git", "daemon", "--reuseaddr", "--base-path=" + base,
                          "--export-all", "--listen=127.0.0.1", "--port=%d" % port,
                          base], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    procs.append(d)

    def stop_daemon():  # git daemon forks a child per connection: end the group
        # also when `d` is gone already: e2e_support's cleanup kills the
        # processes it knows (this `git` wrapper) before it runs cleanups,
        # and the git-daemon under it would be left running
        try:
            os.killpg(d.pid, 15)
        except ProcessLookupError:
            pass
        d.wait(10)
    cleanups.insert(0, stop_daemon)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if d.poll() is not None or time.monotonic() > deadline:
                die("git daemon did not start: %s" % d.stderr.read().decode())
            time.sleep(0.05)
    # the host itself can clone it: the server is right before the VM uses it
    git("clone", "-q", "git://127.0.0.1:%d/repo.git" % port, os.path.join(tmp, "hostclone"))
    return port, stop_daemon



def timed(env, *args, expect=0, timeout=300):
    t0 = time.monotonic()
    r = submit(env, *args, expect=expect, timeout=timeout)
    return r, time.monotonic() - t0


def main():
    url, redis, env = start_services(rootfs=True)
    rootfs = os.path.join(image_dir(), "rootfs.ext4")
    port, stop_daemon = serve_repo()
    check(True, "git daemon serves repo.git on 127.0.0.1:%d" % port)
    # the operator's network profile: the guest may reach the git daemon's
    # port on this host, nothing else (docs/security.md)
    w = Worker("git-w1", env, config="network:\n  profiles:\n    git:\n"
               "      allow: [\"host:%d\"]\n" % port)

    # ---- refused at once, no boot ----
    r = submit(env, "-type", "vm:create", "-name", "bad-net", "-net", "bad net!",
               expect=1)
    tid = re.search(UUID_RE, r.stderr).group(0)
    check('"network" must be "none" (default), "tap" or the name' in r.stderr and
          task_row(url, tid)["status"] == "failed",
          "a -net that is no profile name: rejected at submit, failed row (%s)" %
          r.stderr.strip())
    r = submit(env, "-type", "vm:create", "-name", "bad-net", "-net", "bogus",
               "-wait", "-timeout", "60s", "-json", expect=1)
    t = json.loads(r.stdout)
    check(t["status"] == "failed" and 'no network profile "bogus"' in t["error"] and
          "git" in t["error"] and t["retry_count"] == 0,
          "a profile the worker does not have: failed at once, its profiles named "
          "(%s)" % t["error"])
    r = submit(env, "-type", "vm:create", "-name", "bad-disk", "-rootfs",
               os.path.join(tmp, "my.ext4"), expect=1)
    check("give default (the image's root disk) or none" in r.stderr,
          "-rootfs PATH: refused, disks come from the worker's catalogue (%s)" %
          r.stderr.strip())
    for payload, reason in (
            ('{"name": "x", "network": "tap"}', '"network": "tap" needs "tap"'),
            ('{"name": "x", "rootfs": "rel.ext4"}', '"rootfs" takes true or false, '
             'not a path'),
            ('{"name": "x", "rootfs": 5}', '"rootfs" must be true'),
            ('{"name": "x", "rootfs": "/etc/shadow"}', "not a path"),
            ('{"name": "x", "image": "../x"}', '"image" must be the name')):
        r = submit(env, "-type", "vm:create", "-payload", payload, expect=1)
        check(reason in r.stderr, "payload %s rejected at submit: %s" % (payload, reason))
    r = submit(env, "-type", "vm:execute", "-vm-id", "x", "-cmd", "ls", "-net", "user",
               expect=2)
    check("-net, -rootfs, -image and -ttl go with -type vm:create" in r.stderr,
          "-net on vm:execute is a usage error")
    check(psql(url, "SELECT count(*) FROM vms") == "0", "nothing booted for them")

    # ---- the walkthrough ----
    r, t_create = timed(env, "-type", "vm:create", "-name", "git-demo", "-net", "git",
                        "-rootfs", "default", "-wait", "-timeout", "300s", timeout=360)
    check("✓ VM creation task submitted" in r.stdout and "Name: git-demo" in r.stdout,
          "vm:create prints the seed's lines")
    m = re.search(r"vm_id\W+(%s)" % UUID_RE, r.stdout)
    if not m:
        die("no vm_id in the vm:create output:\n" + r.stdout)
    vm_id = m.group(1)
    check(True, "VM %s running with network profile git and the root disk (%.1f s)" %
          (vm_id, t_create))
    w.wait_for(r"Creating VM: git-demo \(vcpu=1, mem=256MB\)\n  image: default, "
               r"network: git, root disk: yes\n✓ VM created: %s\n"
               r"✓ VM started" % vm_id, 5)
    check(True, "worker says which image, network and root disk")

    clone_url = "git://10.0.2.2:%d/repo.git" % port
    r, t_clone = timed(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "git",
                       "-args", "clone " + clone_url, "-wait", "-timeout", "300s",
                       timeout=360)
    check("Exit code: 0" in r.stdout and "Cloning into 'repo'" in r.stdout,
          "git clone %s inside the VM: exit 0 (%.1f s)" % (clone_url, t_clone))
    r, t_ls = timed(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "ls",
                    "-args", "-la repo", "-wait")
    check(all(n in r.stdout for n in ("README.md", "src", "docs", ".git")),
          "ls -la repo lists the cloned files (%.1f s)" % t_ls)
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "git", "-args",
               "-C repo log --oneline", "-wait", "-json")
    check("first commit from the host" in json.loads(r.stdout)["result"]["stdout"],
          "git log in the clone shows the host's commit")
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "cat", "-args",
               "repo/src/main.c", "-wait", "-json")
    check(json.loads(r.stdout)["result"]["stdout"] == FILES["src/main.c"],
          "file contents arrived intact")
    r, t_del = timed(env, "-type", "vm:delete", "-vm-id", vm_id, "-wait", "-json")
    check(json.loads(r.stdout)["result"] == {"vm_id": vm_id, "status": "deleted"},
          "vm:delete completed (%.1f s)" % t_del)

    # ---- rows ----
    vm = json.loads(psql(url, "SELECT row_to_json(v) FROM vms v WHERE id = '%s'" % vm_id))
    check(vm["status"] == "deleted" and vm["rootfs_path"] == os.path.realpath(rootfs)
          and vm["metadata"]["network"] == "git" and
          vm["metadata"]["image"] == "default" and vm["name"] == "git-demo",
          "vms row: deleted, rootfs_path %s, metadata %s" % (vm["rootfs_path"],
                                                             vm["metadata"]))
    ex = json.loads(psql(url, "SELECT json_agg(e ORDER BY started_at) FROM executions e "
                              "WHERE vm_id = '%s'" % vm_id))
    check([(e["command"], e["args"], e["exit_code"]) for e in ex] ==
          [("git", ["clone", clone_url], 0), ("ls", ["-la", "repo"], 0),
           ("git", ["-C", "repo", "log", "--oneline"], 0),
           ("cat", ["repo/src/main.c"], 0)],
          "one executions row per command, with args and exit code 0")
    check("Cloning into 'repo'" in ex[0]["stderr"] and "README.md" in ex[1]["stdout"]
          and all(e["duration_ms"] is not None for e in ex),
          "executions rows keep the output and durations")
    w.stop()
    stop_daemon()
    check(not vm_processes(), "no VMM process left")
    print("timings: create+boot %.1f s, git clone %.1f s, ls %.1f s, delete %.1f s" %
          (t_create, t_clone, t_ls, t_del))
    print("git workflow checks passed")


if __name__ == "__main__":
    main()
