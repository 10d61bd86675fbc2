#!/usr/bin/python3
"""Redis and PostgreSQL with credentials, through the CLIs, as
docs/deploy-credentials.md tells an operator to run them:

- PostgreSQL with ssl = on on 127.0.0.1 and a certificate for "localhost"
  from a throw-away CA (the openssl command), pg_hba.conf admitting the
  role only over TLS with a SCRAM password; database.url with
  sslmode=verify-full and the CA as sslrootcert;
- Redis on 127.0.0.1 with the users of docs/redis-acl.conf (default user
  off; aeth-worker for workers, aeth-submit for aeth-submit).

aeth-worker (migrates, registers, two slots) and a worker with a custom
handler run, aeth-submit submits and waits: every Redis connection is an
ACL user (CLIENT LIST), no command was denied (ACL LOG), every PostgreSQL
session of the role is encrypted (pg_stat_ssl). Wrong passwords, a host
the certificate does not name, and no Redis password fail with messages
that say what to check. aeth-worker -check and the worker's start-up log
warn about a config file others can read that holds the passwords, and
about Redis over TCP without a password / PostgreSQL without
verify-full on another host. No output ever shows a password.

Boots no VM. Everything started here is stopped at the end, also on
failure (the PostgreSQL cluster and its directory by a cleanup of
e2e_support).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from e2e_support import (CUSTOM_WORKER, SUBMIT, WORKER, Worker, check,
                         cleanups, die, procs, require_binaries, tmp)

SRC = os.environ.get("AETH_SOURCE_ROOT",
                     os.path.join(os.path.dirname(__file__), "..", ".."))
PG_PW = "e2e-Pg/pw@1:x"
WORKER_PW = "e2e-W0rk/er@x"
SUBMIT_PW = "e2e-sUbm1t"
ADMIN_PW = "e2e-adm1n"
SECRETS = [PG_PW, WORKER_PW, SUBMIT_PW, ADMIN_PW, "e2e-wr0ng",
           urllib.parse.quote(PG_PW, safe=""),
           urllib.parse.quote(WORKER_PW, safe="")]


def no_secret(text, where):
    for s in SECRETS:
        if s in text:
            die("%s shows a password (%s):\n%s" % (where, s, text))


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(cmd, what, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        die("%s: %s\n%s%s" % (what, " ".join(cmd), r.stdout, r.stderr))
    return r.stdout


def make_certs(d):
    """A CA and a server certificate for DNS:localhost signed by it."""
    if not shutil.which("openssl"):
        die("the openssl command is missing: scripts/setup.sh installs it")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=aeth e2e CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "CA", cwd=d)
    run(["openssl", "req"] + ec + ["-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost"], "server key", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt",
         "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
         "-extfile", "server.ext", "-out", "server.crt"], "server certificate", cwd=d)


class Postgres:
    """A private cluster with TLS on 127.0.0.1, run as the postgres user."""

    def __init__(self):
        self.bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.dir = tempfile.mkdtemp(prefix="aeth-e2e-pgtls-")
        self.root = os.getuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.tls = os.path.join(self.dir, "tls")
        self.port = None
        self.started = False
        cleanups.append(self.cleanup)

    def pg(self, *args, check_rc=True):
        cmd = (["runuser", "-u", "postgres", "--"] if self.root else []) + \
            [os.path.join(self.bindir, args[0])] + list(args[1:])
        r = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if check_rc and r.returncode != 0:
            die("%s: %s%s" % (" ".join(cmd), r.stdout, r.stderr))
        return r

    def start(self):
        self.pg("initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8")
        os.makedirs(self.tls)
        make_certs(self.tls)
        for name, mode in (("server.crt", 0o644), ("server.key", 0o600)):
            dst = os.path.join(self.data, name)
            shutil.copy(os.path.join(self.tls, name), dst)
            os.chmod(dst, mode)
            if self.root:
                shutil.chown(dst, "postgres", "postgres")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all postgres trust\n"
                    "hostssl all aeth 127.0.0.1/32 scram-sha-256\n"
                    "hostnossl all all 127.0.0.1/32 reject\n")
        for _ in range(3):
            self.port = free_port()
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                        "unix_socket_directories = '%s'\nfsync = off\n"
                        "ssl = on\nssl_cert_file = 'server.crt'\n"
                        "ssl_key_file = 'server.key'\n" % (self.port, self.dir))
            r = self.pg("pg_ctl", "start", "-D", self.data, "-w", "-t", "60", "-l",
                        os.path.join(self.dir, "server.log"), check_rc=False)
            if r.returncode == 0:
                self.started = True
                break
        if not self.started:
            die("postgresql with TLS did not start; see %s/server.log" % self.dir)
        self.sql("CREATE ROLE aeth LOGIN PASSWORD '%s'" % PG_PW)
        self.sql("CREATE DATABASE aeth_e2e OWNER aeth")

    def sql(self, q, db="postgres"):
        return run(["psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                    "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", q],
                   "psql").strip()

    def url(self, host="localhost", pw=PG_PW, extra="&hostaddr=127.0.0.1"):
        return ("postgresql://aeth:%s@%s:%d/aeth_e2e?sslmode=verify-full&"
                "sslrootcert=%s/ca.crt%s" % (urllib.parse.quote(pw, safe=""), host,
                                            self.port, self.tls, extra))

    def cleanup(self):
        if self.started:
            self.pg("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w",
                    check_rc=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class AclRedis:
    """redis-server on 127.0.0.1 with the users of docs/redis-acl.conf."""

    def __init__(self):
        self.dir = os.path.join(tmp, "racl")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(SRC, "docs", "redis-acl.conf")) as f:
            conf = f.read()
        conf = conf.replace("WORKER_PASSWORD", WORKER_PW).replace(
            "SUBMIT_PASSWORD", SUBMIT_PW)
        conf += "\nuser e2e-admin on >%s ~* &* +@all\n" % ADMIN_PW
        self.conf = os.path.join(self.dir, "acl.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.port = None

    def start(self):
        for _ in range(3):
            self.port = free_port()
            p = subprocess.Popen(["redis-server", self.conf, "--port", str(self.port),
                                  "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", self.dir],
                                 stdout=subprocess.DEVNULL)
            procs.append(p)
            for _ in range(100):
                if p.poll() is not None:
                    break
                if self.cli("PING").startswith(("PONG", "NOAUTH")):
                    return
                time.sleep(0.05)
        die("redis-server with the ACL of docs/redis-acl.conf did not start")

    def cli(self, *args, user="e2e-admin", pw=ADMIN_PW):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port),
                            "--user", user, "--pass", pw, "--no-auth-warning"] +
                           list(args), capture_output=True, text=True, timeout=30)
        return r.stdout.strip()

    def url(self, user, pw):
        return "redis://%s:%s@127.0.0.1:%d/0" % (user, urllib.parse.quote(pw, safe=""),
                                                  self.port)


def cli_env(pg, redis, redis_user, redis_pw):
    env = dict(os.environ, AETH_DATABASE_URL=pg.url(),
               AETH_REDIS_URL=redis.url(redis_user, redis_pw),
               AETH_STATE_DIR=os.path.join(tmp, "s"))
    for k in ("AETH_QUEUE_WEIGHTS", "PGSSLMODE", "PGSSLROOTCERT", "PGPASSWORD"):
        env.pop(k, None)
    return env


def submit(env, *args, expect=0):
    r = subprocess.run([SUBMIT] + list(args), capture_output=True, text=True,
                       env=env, timeout=120)
    no_secret(r.stdout + r.stderr, "aeth-submit's output")
    if expect is not None and r.returncode != expect:
        die("aeth-submit %s: exit %d, wanted %d\n%s%s" % (
            " ".join(args), r.returncode, expect, r.stdout, r.stderr))
    return r


def worker_check(env, *extra):
    r = subprocess.run([WORKER, "-check"] + list(extra), capture_output=True,
                       text=True, env=env, timeout=120)
    print(r.stdout, end="")
    no_secret(r.stdout + r.stderr, "aeth-worker -check")
    return r.stdout


def line(out, what):
    m = re.search(r"^([✓!✗]) %s: (.*)$(\n    fix: (.*))?" % re.escape(what), out, re.M)
    return (m.group(1), m.group(2), m.group(4) or "") if m else (None, "", "")


def redis_clients(redis):
    """The users of the connections Redis has, but ours (redis-cli)."""
    users = []
    for l in redis.cli("CLIENT", "LIST").splitlines():
        f = dict(kv.split("=", 1) for kv in l.split() if "=" in kv)
        if f.get("user") != "e2e-admin":
            users.append(f.get("user"))
    return users


def main():
    require_binaries()
    pg = Postgres()
    pg.start()
    redis = AclRedis()
    redis.start()
    wenv = cli_env(pg, redis, "aeth-worker", WORKER_PW)
    senv = cli_env(pg, redis, "aeth-submit", SUBMIT_PW)

    # ---- the round trip, with narrow ACL users and verify-full ----
    # aeth-worker on its own queue: "default" is the custom worker's
    w = Worker("creds-w1", wenv, queues="vms=1", args=["-concurrency", "2"])
    wd = Worker("creds-demo", wenv, custom=True)
    no_secret(w.text() + wd.text(), "the workers' output")
    r = submit(senv, "-type", "demo:echo", "-payload", '{"x":1}', "-wait", "-json")
    t = json.loads(r.stdout)
    check(t["status"] == "completed" and t["result"] == {"echo": {"x": 1}} and
          t["worker_id"] == "creds-demo", "demo:echo submitted by aeth-submit (ACL "
          "user aeth-submit) ran on the worker (aeth-worker) with its result")
    r = submit(senv, "-list", "workers")
    check("creds-w1" in r.stdout and "creds-demo" in r.stdout,
          "aeth-submit reads the worker registry as aeth-submit")
    users = redis_clients(redis)
    # one per slot (slot 0's also writes the registry), and a ledger pass's
    # while one runs (lib/worker/ledger.c: it connects for the pass only)
    check(3 <= len(users) <= 5 and set(users) == {"aeth-worker"},
          "every Redis connection of the two workers (one per slot; slot 0's "
          "also writes the registry) is user aeth-worker: %s" % users)
    counts = pg.sql("SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER "
                    "(WHERE NOT s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a "
                    "USING (pid) WHERE a.usename = 'aeth'").split("|")
    check(int(counts[0]) >= 4 and counts[1] == "0",
          "every PostgreSQL session of the workers is TLS (%s encrypted, %s not)"
          % tuple(counts))
    v = pg.sql("SELECT DISTINCT version FROM pg_stat_ssl s JOIN pg_stat_activity a "
               "USING (pid) WHERE a.usename = 'aeth'")
    check(v == "TLSv1.3", "the sessions use %s" % v)
    status = pg.sql("SELECT status FROM tasks WHERE type = 'demo:echo'", "aeth_e2e")
    check(status == "completed", "the task row (written over TLS) is completed")
    denied = redis.cli("ACL", "LOG")
    check(denied == "", "no command of a worker or aeth-submit was denied by the "
          "ACL (ACL LOG empty)%s" % ("" if not denied else ":\n" + denied))
    w.stop()
    wd.stop()

    # ---- wrong credentials: clear messages, no password ----
    bad = dict(senv, AETH_REDIS_URL=redis.url("aeth-submit", "e2e-wr0ng"))
    r = submit(bad, "-list", "workers", expect=None)
    check(r.returncode != 0 and "WRONGPASS" in r.stderr and
          "check the user and password in redis.url or AETH_REDIS_URL" in r.stderr,
          "aeth-submit with a wrong Redis password: says what to check")
    bad = dict(senv, AETH_REDIS_URL="redis://127.0.0.1:%d/0" % redis.port)
    r = submit(bad, "-list", "workers", expect=None)
    check(r.returncode != 0 and "NOAUTH" in r.stderr and
          "the server wants a password" in r.stderr,
          "aeth-submit without a Redis password: says where to set one")
    bad = dict(senv, AETH_DATABASE_URL=pg.url(host="127.0.0.1", extra=""))
    r = submit(bad, "-list", "workers", expect=None)
    check(r.returncode != 0 and 'does not match host name "127.0.0.1"' in r.stderr and
          "check sslrootcert" in r.stderr,
          "aeth-submit to an address the certificate does not name: refused, "
          "says what to check")
    bad = dict(wenv, AETH_DATABASE_URL=pg.url(pw="e2e-wr0ng"))
    r = subprocess.run([WORKER, "-id", "creds-bad"], capture_output=True, text=True,
                       env=bad, timeout=60)
    no_secret(r.stdout + r.stderr, "aeth-worker's output")
    check(r.returncode != 0 and "password authentication failed" in r.stderr and
          "the password is not shown" in r.stderr,
          "aeth-worker with a wrong database password: exits, says what to check")

    # ---- warnings: a config file others can read, clear-text paths ----
    cfg = os.path.join(tmp, "aeth.yaml")
    with open(cfg, "w") as f:
        f.write("database:\n  url: \"%s\"\nredis:\n  url: \"%s\"\n" %
                (pg.url(), redis.url("aeth-worker", WORKER_PW)))
    os.chmod(cfg, 0o644)
    fenv = {k: v for k, v in wenv.items()
            if k not in ("AETH_DATABASE_URL", "AETH_REDIS_URL")}
    out = worker_check(fenv, "-config", cfg)
    mark, detail, _ = line(out, "redis")
    check(mark == "✓" and "redis://aeth-worker@127.0.0.1:%d/0 answers" % redis.port
          in detail, "-check: redis answers, shown without its password")
    check(line(out, "postgresql")[0] == "✓", "-check: postgresql over verify-full")
    mark, detail, fix = line(out, "config file")
    check(mark == "!" and "holds the Redis and PostgreSQL passwords in clear text "
          "and every user can read it (mode 0644)" in detail and
          "chmod 600 " + cfg in fix, "-check warns: config file with passwords "
          "is world-readable, fix chmod 600")
    w = Worker("creds-w2", fenv, args=["-config", cfg])
    check("config file: %s holds the Redis and PostgreSQL passwords" % cfg in w.text(),
          "the worker logs the same warning at start")
    no_secret(w.text(), "the worker's log")
    w.stop()
    os.chmod(cfg, 0o600)
    out = worker_check(fenv, "-config", cfg)
    check(line(out, "config file")[0] is None and
          line(out, "service access")[0] == "✓",
          "-check: mode 600, TLS verify-full, ACL users: no access warning")
    env = dict(wenv, AETH_REDIS_URL="redis://127.0.0.1:%d/0" % redis.port,
               AETH_DATABASE_URL="postgresql://aeth:%s@192.0.2.10:5432/x?"
               "connect_timeout=1" % urllib.parse.quote(PG_PW, safe=""))
    out = worker_check(env)
    mark, detail, fix = line(out, "redis")
    check(mark == "✗" and "NOAUTH" in detail and
          "correct redis.url or AETH_REDIS_URL" in fix,
          "-check: Redis refusing a client without a password is a failure "
          "whose fix is the URL, not starting a server")
    mark, detail, fix = line(out, "redis access")
    check(mark == "!" and "is reached over TCP without a password" in detail and
          "unix:///" in fix, "-check warns: Redis over TCP without a password")
    mark, detail, fix = line(out, "postgresql transport")
    check(mark == "!" and "192.0.2.10:5432" in detail and "sslmode=prefer" in detail
          and "sslmode=verify-full" in fix,
          "-check warns: PostgreSQL on another host without verify-full")
    out = worker_check(dict(wenv, AETH_DATABASE_URL=pg.url(host="127.0.0.1",
                                                           extra="")))
    mark, detail, fix = line(out, "postgresql")
    check(mark == "✗" and "does not match host name" in detail and
          "check sslrootcert" in detail and "correct database.url" in fix,
          "-check: a certificate that does not name the host is a failure "
          "that says what to check")
    print("cli_infra_creds: all checks passed")


if __name__ == "__main__":
    main()
