"""Shared helpers of the end-to-end tests through the CLIs (test_e2e.py,
test_git_workflow.py): a temp dir with a short VM state dir, a fresh
PostgreSQL database per run, a private redis-server, workers, aeth-submit,
checks. Everything started here is stopped at exit, also on failure or
SIGTERM (cleanup() is registered with atexit on import)."""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

BUILD = os.environ.get("AETH_BUILD_ROOT", os.getcwd())
WORKER = os.path.join(BUILD, "cli", "aeth-worker")
SUBMIT = os.path.join(BUILD, "cli", "aeth-submit")
ENQUEUE = os.path.join(BUILD, "tests", "cli", "enqueue")
CUSTOM_WORKER = os.path.join(BUILD, "tests", "cli", "custom_worker")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

procs = []         # every process started, killed at exit if still running
cleanups = []      # more callables run at exit (before the database drop)
tmp = tempfile.mkdtemp(prefix="aeth-e2e-")
state_dir = os.path.join(tmp, "s")  # short: socket paths must stay < 108 bytes
admin_url = os.environ.get("AETH_TEST_DATABASE_URL")
db_name = "aeth_e2e_%d_%s" % (os.getpid(), uuid.uuid4().hex[:6])
db_created = False


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def psql(url, sql):
    r = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die("psql: %s: %s" % (sql, r.stderr))
    return r.stdout.strip()


def db_url(name):
    u = urllib.parse.urlsplit(admin_url)
    return "%s://%s/%s%s" % (u.scheme, u.netloc, name, "?" + u.query if u.query else "")


def create_db():
    """A fresh database for this run (dropped at exit); returns its URL."""
    global db_created
    if not admin_url:
        die("AETH_TEST_DATABASE_URL is not set: scripts/services.sh start; "
            'eval "$(scripts/services.sh env)"')
    psql(admin_url, "CREATE DATABASE %s" % db_name)
    db_created = True
    return db_url(db_name)


def image_dir():
    return os.environ.get("AETH_IMAGE_DIR",
                          os.path.expanduser("~/.cache/aetherium/image"))


def require_binaries():
    for exe in (WORKER, SUBMIT):
        if not os.access(exe, os.X_OK):
            die(exe + " not built")


def vm_processes(under=None):
    """PIDs of the VMM processes (and their jailers) of VMs in `under`
    (default: this test's state dir): every VMM carries its VM's state dir
    as AETH_VM_DIR in its environment; a jailer names it in --root."""
    d = (under or state_dir).encode()
    marks = {"environ": b"AETH_VM_DIR=" + d + b"/", "cmdline": d + b"/vms/"}
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        found = False
        for what, mark in marks.items():
            try:
                with open("/proc/%s/%s" % (pid, what), "rb") as f:
                    found = found or mark in f.read()
            except OSError:
                pass
        if found:
            out.append(int(pid))
    return out


def start_services(rootfs=False):
    """What every e2e test starts with: check the guest image (with the
    Debian root disk when `rootfs`) and the CLIs, make a fresh database and
    start a private redis-server. Returns (database URL, Redis, the
    environment for workers and aeth-submit)."""
    image = image_dir()
    build = "scripts/build-image.sh" + (" --rootfs" if rootfs else "")
    if not os.path.exists(os.path.join(image, "vmlinux")):
        die("no guest image in %s: %s" % (image, build))
    if rootfs and not os.path.exists(os.path.join(image, "rootfs.ext4")):
        die("no guest root disk %s (Debian with git): build it with "
            "%s (scripts/test.sh does; first build ~4 min, cached after)"
            % (os.path.join(image, "rootfs.ext4"), build))
    require_binaries()
    url = create_db()
    redis = Redis()
    redis.start()
    return url, redis, services_env(url, redis)


def kill_leftover_vmms():
    """Stop VMM processes of this test's state dir only (a test that failed
    half-way may leave a VM); matched by our unique temp path."""
    for pid in vm_processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for fn in cleanups:
        try:
            fn()
        except Exception as e:  # never stop cleaning up
            print("warning: cleanup: %s" % e, file=sys.stderr)
    kill_leftover_vmms()
    if db_created:
        # never die() here: the database must be dropped even after a failure
        r = subprocess.run(["psql", admin_url, "-XAtq", "-c",
                            "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db_name],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("warning: could not drop database %s: %s" % (db_name, r.stderr),
                  file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


class Redis:
    def __init__(self, name="r", aof=False):
        """A private redis-server in <tmp>/<name>: no persistence, or with
        aof an append-only file (appendfsync everysec)."""
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.aof = aof
        self.proc = None

    def start(self):
        exe = shutil.which("redis-server")
        if not exe:
            die("redis-server not found: scripts/setup.sh installs it")
        self.proc = subprocess.Popen([exe, "--port", "0", "--unixsocket", self.sock,
                                      "--save", "", "--appendonly",
                                      "yes" if self.aof else "no",
                                      "--dir", self.dir], stdout=subprocess.DEVNULL)
        procs.append(self.proc)
        for _ in range(100):
            if os.path.exists(self.sock):
                return
            time.sleep(0.05)
        die("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def url(self):
        return "unix://" + self.sock


def services_env(url, redis):
    """The environment for workers and aeth-submit of this run."""
    env = dict(os.environ, AETH_DATABASE_URL=url, AETH_REDIS_URL=redis.url(),
               AETH_STATE_DIR=state_dir, AETH_IMAGE_DIR=image_dir(),
               AETH_VMM_ACCEL=os.environ.get("AETH_VMM_ACCEL", "auto"))
    env.pop("AETH_QUEUE_WEIGHTS", None)
    return env


class Worker:
    def __init__(self, wid, env, lease_ms=None, queues=None, custom=False,
                 config=None, args=None, concurrency=None):
        """aeth-worker -id wid (more flags in args), or with custom=True
        tests/cli/custom_worker (one handler, demo:echo) on `queues`, with
        `concurrency` slots (default 1). `config`: YAML text for -config
        (network profiles, images, limits)."""
        self.id = wid
        self.log = os.path.join(tmp, wid + ".log")
        e = dict(env)
        if lease_ms:
            e["AETH_WORKER_LEASE_MS"] = str(lease_ms)
        extra = (["-queues", queues] if queues else []) + (args or [])
        if config is not None:
            path = os.path.join(tmp, wid + ".yaml")
            with open(path, "w") as f:
                f.write(config)
            extra += ["-config", path]
        argv = ([CUSTOM_WORKER, wid, queues or "default"] +
                ([str(concurrency)] if concurrency else []) if custom else
                [WORKER, "-id", wid, "-concurrency", "1"] + extra)
        self.proc = subprocess.Popen(argv, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, env=e)
        procs.append(self.proc)
        self.wait_for("Listening for tasks on Redis queue...")

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_for(self, pattern, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                die("worker %s exited:\n%s" % (self.id, self.text()))
            time.sleep(0.05)
        die("worker %s did not print %r:\n%s" % (self.id, pattern, self.text()))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        if rc != 0:
            die("worker %s ended with %d after SIGTERM:\n%s" % (self.id, rc, self.text()))


def submit(env, *args, expect=0, timeout=300):
    r = subprocess.run([SUBMIT] + list(args), capture_output=True, text=True, env=env,
                       timeout=timeout)
    if expect is not None and r.returncode != expect:
        die("aeth-submit %s: exit %d, wanted %d\nstdout: %s\nstderr: %s" %
            (" ".join(args), r.returncode, expect, r.stdout, r.stderr))
    return r


def enqueue(env, queue, type_, payload, delay_ms=0):
    """A task straight into Redis with the queue API (no row, no routing)."""
    r = subprocess.run([ENQUEUE, queue, type_, payload, str(delay_ms)],
                       capture_output=True, text=True, env=env, timeout=30)
    if r.returncode != 0:
        die("enqueue %s %s: %s" % (type_, payload, r.stderr))
    return r.stdout.strip()


def redis_cli(sock, *args):
    r = subprocess.run(["redis-cli", "-s", sock] + list(args), capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        die("redis-cli %s: %s" % (" ".join(args), r.stderr))
    return r.stdout.strip()


def check(cond, msg):
    if not cond:
        die(msg)
    print("ok - " + msg)


def workers(env):
    """The worker registry (aeth-submit -list workers -json) by id."""
    return {w["id"]: w for w in json.loads(submit(env, "-list", "workers",
                                                  "-json").stdout)}


def task_row(url, tid):
    return json.loads(psql(url, "SELECT row_to_json(t) FROM tasks t WHERE id = '%s'" % tid))
