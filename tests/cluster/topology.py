"""The distributed set-ups of the cluster suite (tests/cluster) and of
bench/cluster, started from Debian's packages on this machine, on
127.0.0.1 with free ports, each in a dir of its own under the test's temp
dir:

  RedisCluster  N primaries (redis-server --cluster-enabled yes, made a
                cluster by redis-cli --cluster create), append-only file on
  RedisSentinel a primary, a replica and three sentinels (redis-sentinel,
                else redis-server --sentinel) watching it as "aeth", with
                down-after-milliseconds 1000
  PgPair        a PostgreSQL primary and a streaming standby
                (pg_basebackup -R), run as the postgres user

Every process started is stopped at exit, also on failure (through
tests/cli/e2e_support.py's procs and cleanups).

By hand, to run workers or the demo against one of them:

    python3 tests/cluster/topology.py cluster|sentinel|pg

prints the URL(s) and keeps them running until Ctrl-C.
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "cli"))
from e2e_support import cleanups, die, procs, tmp  # noqa: E402

MASTER = "aeth"  # the sentinels' name of the primary


def free_port(also=0):
    """A free TCP port on 127.0.0.1 (and port+also free too, when also)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if not also:
            return port
        if port + also > 65535:
            continue
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port + also))
            return port
        except OSError:
            continue
        finally:
            t.close()
    die("no free TCP port pair found")


def cli(port, *args, check=True, timeout=30):
    r = subprocess.run(["redis-cli", "-p", str(port)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        die("redis-cli -p %d %s: %s" % (port, " ".join(map(str, args)), r.stderr))
    return r.stdout.strip()


def wait_until(what, cond, timeout=30, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    die("%s: not within %d s" % (what, timeout))


class RedisServer:
    """One redis-server on 127.0.0.1:port in its own dir."""

    def __init__(self, name, port, extra=()):
        self.name = name
        self.port = port
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.extra = list(extra)
        self.proc = None

    def start(self):
        if not shutil.which("redis-server"):
            die("redis-server not found: scripts/setup.sh installs it")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--appendonly", "yes",
                "--appendfsync", "everysec", "--logfile",
                os.path.join(self.dir, "redis.log"), "--daemonize", "no"] + self.extra
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        procs.append(self.proc)
        wait_until("redis-server on port %d answers" % self.port,
                   lambda: cli(self.port, "PING", check=False) == "PONG", 10)

    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except OSError:
            return ""


class RedisCluster:
    """n primaries, each with `replicas` replicas (a slot migration needs
    none; a node's failover does)."""

    def __init__(self, n=3, name="cluster", replicas=0, node_timeout_ms=3000):
        self.replicas = replicas
        self.nodes = [RedisServer("%s-%d" % (name, i), free_port(also=10000),
                                  ["--cluster-enabled", "yes",
                                   "--cluster-config-file", "nodes.conf",
                                   "--cluster-node-timeout", str(node_timeout_ms),
                                   # a primary emptied by a reshard stays
                                   # one (else it becomes a replica)
                                   "--cluster-allow-replica-migration", "no",
                                   # a replica of a just-made cluster may
                                   # take over (7.0.15 judged its data too
                                   # old to, for ever)
                                   "--cluster-replica-validity-factor", "0"])
                      for i in range(n * (1 + replicas))]

    def start(self):
        for n in self.nodes:
            n.start()
        r = subprocess.run(["redis-cli", "--cluster", "create"] +
                           ["127.0.0.1:%d" % n.port for n in self.nodes] +
                           ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            die("redis-cli --cluster create: %s%s" % (r.stdout, r.stderr))
        self.wait_agreed()
        return self

    def alive(self):
        return [n for n in self.nodes if n.proc and n.proc.poll() is None]

    def wait_agreed(self, timeout=30):
        """Until every live node says cluster_state:ok and all agree on
        slots."""
        def ok():
            if any("cluster_state:ok" not in cli(n.port, "CLUSTER", "INFO", check=False)
                   for n in self.alive()):
                return False
            r = subprocess.run(["redis-cli", "--cluster", "check",
                                "127.0.0.1:%d" % self.alive()[0].port],
                               capture_output=True, text=True, timeout=30)
            return r.returncode == 0 and "agree about slots" in r.stdout
        wait_until("the cluster agrees on its slots", ok, timeout, 0.2)

    def url(self):
        return "redis-cluster://" + ",".join("127.0.0.1:%d" % n.port
                                             for n in self.nodes)

    def node_id(self, port):
        return cli(port, "CLUSTER", "MYID")

    def slot(self, key):
        return int(cli(self.alive()[0].port, "CLUSTER", "KEYSLOT", key))

    def node(self, port):
        return next(n for n in self.nodes if n.port == port)

    def port_of_slot(self, slot):
        """The port of the primary serving `slot` (0 while none does)."""
        for n in self.alive():
            for line in cli(n.port, "CLUSTER", "NODES", check=False).splitlines():
                f = line.split()
                if "myself" not in f[2] or "master" not in f[2]:
                    continue
                for rng in f[8:]:
                    if rng.startswith("["):
                        continue
                    lo, _, hi = rng.partition("-")
                    if int(lo) <= slot <= int(hi or lo):
                        return n.port
        return 0

    def reshard(self, src, dst, nslots, background=False):
        """redis-cli --cluster reshard: move nslots of src's slots to dst
        (ports). With background, the Popen (stdout to a log)."""
        argv = ["redis-cli", "--cluster", "reshard", "127.0.0.1:%d" % src,
                "--cluster-from", self.node_id(src), "--cluster-to",
                self.node_id(dst), "--cluster-slots", str(nslots), "--cluster-yes"]
        log = open(os.path.join(tmp, "reshard-%d-%d.log" % (src, dst)), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        if background:
            return p
        if p.wait(timeout=300) != 0:
            die("redis-cli --cluster reshard failed; see %s" % log.name)
        return p

    def slots_of(self, port):
        """How many slots the node on `port` serves."""
        n = 0
        for line in cli(port, "CLUSTER", "NODES").splitlines():
            f = line.split()
            if "myself" in f[2]:
                for rng in f[8:]:
                    if not rng.startswith("["):
                        lo, _, hi = rng.partition("-")
                        n += int(hi or lo) - int(lo) + 1
        return n

    def keys(self):
        """Keys in the nodes that answer."""
        out = (cli(n.port, "DBSIZE", check=False) for n in self.nodes)
        return sum(int(v) for v in out if v.isdigit())


def sentinel_binary():
    """redis-sentinel (Debian's package of that name), else redis-server
    --sentinel (the same program)."""
    if shutil.which("redis-sentinel"):
        return ["redis-sentinel"]
    return ["redis-server"]


class RedisSentinel:
    """A primary, one replica and three sentinels (quorum 2)."""

    def __init__(self, name="sentinel", down_after_ms=1000):
        p = free_port()
        self.servers = [RedisServer(name + "-primary", p),
                        RedisServer(name + "-replica", free_port(),
                                    ["--replicaof", "127.0.0.1", str(p)])]
        self.sentinels = []
        self.down_after_ms = down_after_ms
        self.name = name

    def start(self):
        for s in self.servers:
            s.start()
        wait_until("the replica is in sync", lambda: "master_link_status:up" in
                   cli(self.servers[1].port, "INFO", "replication"), 30)
        for i in range(3):
            port = free_port()
            d = os.path.join(tmp, "%s-s%d" % (self.name, i))
            os.makedirs(d, exist_ok=True)
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s/sentinel.log\n"
                        "sentinel monitor %s 127.0.0.1 %d 2\n"
                        "sentinel down-after-milliseconds %s %d\n"
                        "sentinel failover-timeout %s 10000\n"
                        "sentinel parallel-syncs %s 1\n"
                        % (port, d, d, MASTER, self.servers[0].port, MASTER,
                           self.down_after_ms, MASTER, MASTER))
            argv = sentinel_binary() + [conf] + (
                ["--sentinel"] if argv_is_server() else [])
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            procs.append(p)
            self.sentinels.append((port, p, d))
        for port, _, _ in self.sentinels:
            wait_until("sentinel %d answers" % port,
                       lambda: cli(port, "PING", check=False) == "PONG", 10)
        # a failover needs the sentinels to know the replica and each other
        wait_until("the sentinels know the replica and each other", lambda: all(
            self.known(port) for port, _, _ in self.sentinels), 30, 0.2)
        return self

    def known(self, port):
        r = cli(port, "SENTINEL", "MASTER", MASTER, check=False).splitlines()
        fields = dict(zip(r[0::2], r[1::2]))
        return (fields.get("num-slaves") == "1" and
                fields.get("num-other-sentinels") == "2")

    def url(self):
        return "redis-sentinel://%s/%s" % (",".join(
            "127.0.0.1:%d" % port for port, _, _ in self.sentinels), MASTER)

    def primary_port(self):
        """The port the sentinels name (ValueError when none answers)."""
        for port, _, _ in self.sentinels:
            out = cli(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER,
                      check=False).splitlines()
            if len(out) == 2 and out[1].isdigit():
                return int(out[1])
        raise ValueError("no sentinel names a primary")

    def server(self, port):
        return next(s for s in self.servers if s.port == port)

    def kill_primary(self):
        """SIGKILL the primary; returns its port."""
        port = self.primary_port()
        self.server(port).kill()
        return port

    def wait_failover(self, old_port, timeout=60):
        """Until the sentinels name another primary and it says so."""
        def done():
            try:
                p = self.primary_port()
            except ValueError:
                return None
            if p != old_port and cli(p, "ROLE", check=False).startswith("master"):
                return p
            return None
        return wait_until("the sentinels fail over", done, timeout, 0.05)


def argv_is_server():
    return sentinel_binary() == ["redis-server"]


class PgPair:
    """A PostgreSQL primary and a streaming standby on 127.0.0.1, run as
    the postgres user (PostgreSQL refuses root)."""

    def __init__(self, name="pg"):
        self.bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.root = os.getuid() == 0
        # the postgres user must reach it: not under /root
        self.dir = os.path.join("/tmp", os.path.basename(tmp) + "-" + name)
        os.makedirs(self.dir)
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = [os.path.join(self.dir, "a"), os.path.join(self.dir, "b")]
        self.ports = [free_port(), free_port()]
        self.running = [False, False]
        cleanups.append(self.cleanup)

    def pg(self, *args, check_rc=True):
        cmd = (["runuser", "-u", "postgres", "--"] if self.root else []) + \
            [os.path.join(self.bindir, args[0])] + [str(a) for a in args[1:]]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=180)
        if check_rc and r.returncode != 0:
            die("%s: %s%s" % (" ".join(cmd), r.stdout, r.stderr))
        return r

    def start_one(self, i):
        self.pg("pg_ctl", "start", "-D", self.data[i], "-w", "-t", "60", "-l",
                os.path.join(self.dir, "log-%d" % i))
        self.running[i] = True

    def start(self):
        self.pg("initdb", "-D", self.data[0], "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8")
        with open(os.path.join(self.data[0], "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nwal_level = replica\n"
                    "max_wal_senders = 5\nhot_standby = on\nfsync = off\n"
                    "max_connections = 200\n" % (self.ports[0], self.dir))
        with open(os.path.join(self.data[0], "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n"
                    "host replication all 127.0.0.1/32 trust\n")
        self.start_one(0)
        self.sql(0, "CREATE DATABASE aetherium")
        self.pg("pg_basebackup", "-h", "127.0.0.1", "-p", self.ports[0], "-U",
                "postgres", "-D", self.data[1], "-R", "-X", "stream", "-c", "fast")
        with open(os.path.join(self.data[1], "postgresql.auto.conf"), "a") as f:
            f.write("port = %d\n" % self.ports[1])
        self.start_one(1)
        wait_until("the standby streams", lambda: self.sql(
            0, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            == "1", 30)
        return self

    def sql(self, i, q, db="postgres"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.ports[i]), "-U",
                            "postgres", "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1",
                            "-c", q], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            die("psql: %s: %s" % (q, r.stderr))
        return r.stdout.strip()

    def url(self, db="aetherium"):
        """Both servers; libpq takes the first that accepts writes."""
        return ("postgresql://postgres@127.0.0.1:%d,127.0.0.1:%d/%s"
                "?target_session_attrs=read-write" % (self.ports[0], self.ports[1], db))

    def promote(self):
        """The primary crashes (pg_ctl stop -m immediate); the standby is
        promoted (pg_ctl promote) and takes writes."""
        self.pg("pg_ctl", "stop", "-D", self.data[0], "-m", "immediate", "-w")
        self.running[0] = False
        self.pg("pg_ctl", "promote", "-D", self.data[1], "-w", "-t", "60")

    def cleanup(self):
        for i in (0, 1):
            if self.running[i]:
                self.pg("pg_ctl", "stop", "-D", self.data[i], "-m", "immediate", "-w",
                        check_rc=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "cluster":
        print("AETH_REDIS_URL=" + RedisCluster().start().url())
    elif what == "sentinel":
        print("AETH_REDIS_URL=" + RedisSentinel().start().url())
    elif what == "pg":
        print("AETH_DATABASE_URL=" + PgPair().start().url())
    else:
        print("usage: topology.py cluster|sentinel|pg", file=sys.stderr)
        sys.exit(2)
    sys.stdout.flush()
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
