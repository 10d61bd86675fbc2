"""Helpers of the fault suite: break Redis or PostgreSQL while tasks flow
and check that nothing accepted is lost. Each test runs its own Redis and
PostgreSQL through scripts/services.sh (so they run with exactly the
settings the development services have: Redis with its append-only file,
PostgreSQL with synchronous_commit = off) in a state dir of its own,
workers of tests/cli/custom_worker (the no-VM task type demo:echo, which
takes {"sleep_ms": N} and logs every run), and tests/fault/burst (the
submit client in a loop). Built on tests/cli/e2e_support.py: everything
started is stopped at exit, also on failure.

Figures of a run, printed by every test:
  accepted     submits the client accepted (aeth_client_submit() == 0)
  completed    of those, completed in PostgreSQL
  failed       of those, failed or dead in PostgreSQL
  lost         of those, not in a terminal state in PostgreSQL
  disagreeing  of those, Redis holds in a state PostgreSQL contradicts
               (completed vs dead, a terminal vs a live state)
  duplicated   of those, run more than once by a handler
  recovery_s   from the end of the fault until none is lost or disagreeing
"""
import collections
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("AETH_SOURCE_ROOT", "."),
                                "tests", "cli"))
from e2e_support import (BUILD, UUID_RE, Worker, check, cleanups, die,  # noqa: E402,F401
                         procs, require_binaries, tmp)

SOURCE = os.environ.get("AETH_SOURCE_ROOT", ".")
SERVICES = os.path.join(SOURCE, "scripts", "services.sh")
BURST = os.path.join(BUILD, "tests", "fault", "burst")

# The workers' settings: a short lease (a lost ack or a dead worker's task
# comes back within seconds) and a reconciler that judges a task after
# STRAY_MS without a change in its row, every INTERVAL_MS.
LEASE_MS = 3000
INTERVAL_MS = 1000
STRAY_MS = 3000
# Longest recovery accepted: a stray is repaired within STRAY_MS +
# INTERVAL_MS of its row's last change, a task whose lease was held by a
# lost dequeue comes back after LEASE_MS; then the backlog runs.
BOUND_S = (STRAY_MS + INTERVAL_MS + LEASE_MS) / 1000.0 + 20

# Burst size (AETH_FAULT_TASKS overrides it: bench/fault runs long ones).
TASKS = int(os.environ.get("AETH_FAULT_TASKS", "300"))

TERMINAL = ("completed", "failed", "dead")
LIVE_REDIS = ("pending", "active", "scheduled", "retry")


T0 = time.time()


def log(msg):
    print("[%6.2f] %s" % (time.time() - T0, msg), flush=True)


class Services:
    """Redis and PostgreSQL of scripts/services.sh in this test's own
    state dir; `clean`ed at exit."""

    def __init__(self):
        self.dir = os.path.join(tmp, "svc")
        self.env = dict(os.environ, AETH_SERVICES_DIR=self.dir)
        self.started = False
        cleanups.append(self.clean)

    def run(self, *args, check_rc=True):
        r = subprocess.run([SERVICES] + list(args), env=self.env,
                           capture_output=True, text=True, timeout=180)
        if check_rc and r.returncode != 0:
            die("services.sh %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                   r.stdout, r.stderr))
        return r.stdout

    def start(self, what=None):
        self.started = True
        self.run("start", *([what] if what else []))

    def urls(self):
        out = {}
        for line in self.run("env").splitlines():
            m = re.match(r"export (\w+)='(.*)'$", line)
            if m:
                out[m.group(1)] = m.group(2)
        return out

    def redis_dir(self):
        return os.path.join(self.dir, "redis")

    def redis_cli(self):
        """redis-cli's arguments to reach this Redis."""
        return ["-s", self.redis_sock()]

    def redis_sock(self):
        return os.path.join(self.redis_dir(), "redis.sock")

    def redis_pid(self):
        with open(os.path.join(self.redis_dir(), "redis.pid")) as f:
            return int(f.read().strip())

    def kill_redis(self, sig):
        """Send sig to redis-server and wait until it is gone."""
        pid = self.redis_pid()
        os.kill(pid, sig)
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        die("redis-server (pid %d) still runs 15 s after signal %d" % (pid, sig))

    def pg_base(self):
        try:
            with open(os.path.join(self.dir, "pg.base")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return os.path.join(self.dir, "pg")

    def pg_stop(self, mode):
        """pg_ctl stop -m mode on the cluster, as its owner."""
        pg_ctl = sorted(p for p in (os.path.join("/usr/lib/postgresql", v, "bin",
                                                 "pg_ctl")
                                    for v in os.listdir("/usr/lib/postgresql"))
                        if os.path.exists(p))[-1]
        argv = [pg_ctl, "stop", "-D", os.path.join(self.pg_base(), "data"),
                "-m", mode, "-w", "-t", "60"]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=90)
        if r.returncode != 0:
            die("pg_ctl stop -m %s: %s" % (mode, r.stderr))

    def clean(self):
        if self.started:
            self.run("clean", check_rc=False)


def psql(url, sql):
    r = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return None
    return r.stdout


def pg_rows(url, ids):
    """{id: (status, queue)} of the tasks rows of ids; None when
    PostgreSQL does not answer."""
    out = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        text = psql(url, "SELECT id, status, coalesce(queue, 'default') FROM tasks "
                    "WHERE id IN (%s)" % ",".join("'%s'" % t for t in chunk))
        if text is None:
            return None
        for line in text.splitlines():
            tid, status, queue = line.split("|")
            out[tid] = (status, queue)
    return out


# Each id's task state in Redis ("none": no hash), for ids of one queue.
# KEYS[1], a key of the queue, routes it to the queue's node of a cluster
# (redis-cli -c).
STATES_LUA = ("local o = {} for i = 2, #ARGV do "
              "o[#o + 1] = redis.call('HGET', ARGV[1] .. ARGV[i], 'state') or 'none' "
              "end return o")


def redis_states(cli_args, by_queue):
    """{id: state} for {queue: [ids]}; None when Redis does not answer.
    cli_args: redis-cli's arguments to reach Redis."""
    out = {}
    for queue, ids in by_queue.items():
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            r = subprocess.run(["redis-cli"] + cli_args + ["EVAL", STATES_LUA, "1",
                                "{aeth:%s}:pending" % queue,
                                "{aeth:%s}:t:" % queue] + chunk,
                               capture_output=True, text=True, timeout=60)
            lines = r.stdout.splitlines()
            if r.returncode != 0 or len(lines) != len(chunk):
                return None
            out.update(zip(chunk, lines))
    return out


def agree(pg, rs):
    """Do a PostgreSQL status and a Redis state tell the same story?
    A task Redis no longer has agrees with a terminal row (Redis is the
    transport: it may forget a finished task)."""
    if pg in ("completed",):
        return rs in ("completed", "none")
    if pg in ("failed", "dead"):
        return rs in ("dead", "none")
    return rs in LIVE_REDIS


def runs(path):
    counts = collections.Counter()
    if os.path.exists(path):
        with open(path) as f:
            counts.update(line.strip() for line in f if line.strip())
    return counts


class Run:
    """One fault test: services, two custom workers (2 slots each), a
    burst, figures."""

    def __init__(self, name, workers=2, concurrency=2, services=None):
        """services: what to run against (default: scripts/services.sh's
        own Redis and PostgreSQL); anything with urls() and redis_cli()
        (tests/cluster gives a cluster, sentinels, a standby)."""
        require_binaries()
        if not os.access(BURST, os.X_OK):
            die(BURST + " not built")
        self.name = name
        self.svc = services
        if not services:
            self.svc = Services()
            self.svc.start()
        urls = self.svc.urls()
        self.url = urls["AETH_DATABASE_URL"]
        self.env = dict(os.environ, AETH_DATABASE_URL=self.url,
                        AETH_REDIS_URL=urls["AETH_REDIS_URL"])
        self.run_log = os.path.join(tmp, "runs.log")
        wenv = dict(self.env, AETH_TEST_RUN_LOG=self.run_log,
                    AETH_LEDGER_INTERVAL_MS=str(INTERVAL_MS),
                    AETH_LEDGER_STRAY_AFTER_MS=str(STRAY_MS),
                    AETH_LOGGING_LEVEL="info")
        self.workers = [Worker("fault-%s-%d" % (name, i), wenv, custom=True,
                               concurrency=concurrency, lease_ms=LEASE_MS)
                        for i in range(workers)]
        cleanups.insert(0, self.show_logs_on_failure)
        self.accepted = []
        self.refused = []
        self.ok = False

    def burst(self, n, payload, hook=None, gap_us=0):
        """Submit n tasks; hook(k) after the k-th accepted one (the fault)."""
        p = subprocess.Popen([BURST, str(n), "demo:echo", "default", payload,
                              str(gap_us)], stdout=subprocess.PIPE, text=True,
                             env=self.env)
        procs.append(p)
        for line in p.stdout:
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "ok":
                self.accepted.append(rest)
                if hook:
                    hook(len(self.accepted))
            else:
                self.refused.append(rest)
        if p.wait() != 0:
            die("burst ended with %d" % p.returncode)

    def figures(self):
        """The figures now, or None while a store does not answer."""
        rows = pg_rows(self.url, self.accepted)
        if rows is None:
            return None
        by_queue = collections.defaultdict(list)
        for tid in self.accepted:
            by_queue[rows.get(tid, ("none", "default"))[1]].append(tid)
        try:
            cli = self.svc.redis_cli()
        except Exception:  # a failover under way: no primary named yet
            return None
        states = redis_states(cli, by_queue)
        if states is None:
            return None
        count = runs(self.run_log)
        f = collections.OrderedDict(accepted=len(self.accepted), completed=0,
                                    failed=0, lost=0, disagreeing=0,
                                    duplicated=0)
        self.bad = []
        for tid in self.accepted:
            pg = rows.get(tid, ("none",))[0]
            rs = states.get(tid, "none")
            if pg == "completed":
                f["completed"] += 1
            elif pg in ("failed", "dead"):
                f["failed"] += 1
            else:
                f["lost"] += 1
            if not agree(pg, rs):
                f["disagreeing"] += 1
            if pg not in TERMINAL or not agree(pg, rs):
                self.bad.append((tid, pg, rs))
            if count[tid] > 1:
                f["duplicated"] += 1
        return f

    def recover(self, since):
        """Wait until nothing accepted is lost or disagreeing, at most
        BOUND_S after `since` (the fault's end); print and return the
        figures with recovery_s."""
        f = None
        while time.time() - since < BOUND_S:
            f = self.figures()
            if f and f["lost"] == 0 and f["disagreeing"] == 0:
                break
            time.sleep(0.5)
        if f is None:
            die("the stores did not answer within %.0f s of the fault" % BOUND_S)
        f["recovery_s"] = round(time.time() - since, 1)
        f["refused"] = len(self.refused)
        log("figures: " + " ".join("%s=%s" % kv for kv in f.items()))
        repairs = collections.Counter()
        for w in self.workers:
            for m in re.finditer(r"ledger: task \S+: (completed in Redis|dead|"
                                 r"Redis lost the task)", w.text()):
                repairs[m.group(1)] += 1
        log("ledger repairs: %s" % (", ".join("%s: %d" % kv for kv in
                                                repairs.items()) or "none"))
        for tid, pg, rs in self.bad[:10]:
            log("  task %s: postgresql %s, redis %s" % (tid, pg, rs))
        reasons = collections.Counter(re.sub(UUID_RE, "ID", r.partition(" ")[2])[:150]
                                      for r in self.refused)
        for why, n in reasons.most_common(5):
            log("  refused %d: %s" % (n, why))
        return f

    def expect_recovered(self, f):
        check(f["lost"] == 0, "no accepted task lost (%d lost)" % f["lost"])
        check(f["disagreeing"] == 0,
              "Redis and PostgreSQL agree on every accepted task (%d disagree)"
              % f["disagreeing"])
        check(f["recovery_s"] < BOUND_S,
              "recovered within %.0f s (%.1f s)" % (BOUND_S, f["recovery_s"]))
        self.ok = True

    def show_logs_on_failure(self):
        if self.ok:
            return
        for w in self.workers:
            lines = w.text().splitlines()
            print("--- worker %s (last 30 lines)" % w.id, file=sys.stderr)
            print("\n".join(lines[-30:]), file=sys.stderr)

    def stop_workers(self):
        """SIGTERM every worker; each must end with status 0 (a sanitizer
        report at exit, a crash, would not)."""
        for w in self.workers:
            w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            rc = w.proc.wait(timeout=60)
            if rc != 0:
                self.ok = False
                die("worker %s ended with %d after SIGTERM" % (w.id, rc))
