#!/usr/bin/python3
"""`aeth-worker -check` on this host, through the CLI, with a private Redis
and a fresh PostgreSQL database: every line, its mark and its fix, and the
exit status, for a database not migrated, one an older version migrated
(migration 1 of the newer ones), a migrated one, and a Redis that is not
there; the durability lines for a Redis without persistence and one with
an append-only file, and for the development PostgreSQL (fsync and
synchronous_commit off), and the worker's start-up warnings about them.
Boots no VM (the check does not)."""
import os
import re
import subprocess
import sys

from e2e_support import (WORKER, Redis, Worker, check, create_db, image_dir,
                         psql, require_binaries, services_env)

SRC = os.environ.get("AETH_SOURCE_ROOT",
                     os.path.join(os.path.dirname(__file__), "..", ".."))


def run_check(env):
    r = subprocess.run([WORKER, "-check"], capture_output=True, text=True,
                       env=env, timeout=120)
    print(r.stdout, end="")
    return r


def line(out, what):
    m = re.search(r"^([✓!✗]) %s: (.*)$(\n    fix: (.*))?" % re.escape(what),
                  out, re.M)
    check(m is not None, "-check prints a line for %s" % what)
    return m.group(1), m.group(2), m.group(4) or ""


def main():
    require_binaries()
    url = create_db()
    redis = Redis()
    redis.start()
    env = services_env(url, redis)

    # a database no one migrated: a warning with the fix, not a failure
    r = run_check(env)
    mark, detail, fix = line(r.stdout, "database schema")
    check(mark == "!" and "not migrated yet" in detail and
          "start aeth-worker once" in fix, "unmigrated database: warning + fix")
    mark, detail, _ = line(r.stdout, "redis")
    check(mark == "✓", "redis reachable")
    mark, detail, _ = line(r.stdout, "postgresql")
    check(mark == "✓" and detail == "reachable", "postgresql reachable")
    if os.path.exists(os.path.join(image_dir(), "vmlinux")):
        check(r.returncode == 0 and "This host can run a worker" in r.stdout,
              "warnings only: exit 0, summary says so")

    # migrated by an older version (0001 only): the newer ones are missing
    with open(os.path.join(SRC, "migrations", "0001_init.sql")) as f:
        psql(url, f.read())
    psql(url, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER "
         "PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP DEFAULT now())")
    psql(url, "INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init')")
    mark, detail, fix = line(run_check(env).stdout, "database schema")
    check(mark == "!" and re.search(r"migration 1 of \d+ applied", detail) and
          "start aeth-worker once" in fix, "older schema: warning names the versions")

    # a worker migrates on start: then the schema line is fine
    w = Worker("check-w1", env)
    w.stop()
    r = run_check(env)
    mark, detail, _ = line(r.stdout, "database schema")
    check(mark == "✓" and re.search(r"migration \d+ applied", detail),
          "migrated by a worker: ok")

    # durability: this Redis keeps nothing, the development cluster runs
    # with fsync and synchronous_commit off (scripts/services.sh)
    mark, detail, fix = line(r.stdout, "redis durability")
    check(mark == "!" and "no persistence" in detail and
          "appendonly yes" in fix, "-check warns: Redis without persistence")
    mark, detail, fix = line(r.stdout, "postgresql durability")
    check(mark == "!" and "synchronous_commit = off" in detail and
          "synchronous_commit = on" in fix,
          "-check warns: PostgreSQL with synchronous_commit off")
    mark, detail, fix = line(r.stdout, "postgresql fsync")
    check(mark == "!" and "fsync = off" in detail, "-check warns: fsync off")
    with open(w.log) as f:
        started = f.read()
    check("redis durability: Redis has no persistence" in started and
          "postgresql durability: synchronous_commit = off" in started,
          "the worker logs the same warnings at start")
    aof = Redis("raof", aof=True)
    aof.start()
    r = run_check(dict(env, AETH_REDIS_URL=aof.url()))
    mark, detail, _ = line(r.stdout, "redis durability")
    check(mark == "✓" and "append-only file, appendfsync everysec" in detail,
          "-check: Redis with an append-only file is fine")

    # how VMMs are confined here, and the catalogue (root on these machines)
    r = run_check(env)
    for what, want in (("jail", "on: each QEMU starts under"),
                       ("seccomp", "-sandbox on"),
                       ("namespaces", "pid, mount, network, IPC, UTS"),
                       ("vmm user", "a uid of its own"),
                       ("cgroups", "per VM below aetherium"),
                       ("overlay dir", "MiB free"),
                       ("snapshots", "start from the snapshot of their shape"),
                       ("network user", "guests reach nothing"),
                       ("limits", "per VM: 8 vCPUs")):
        mark, detail, _ = line(r.stdout, what)
        check(mark == "✓" and want in detail, "%s: %s" % (what, detail))
    # a catalogue with a broken image and a profile that reaches Redis over
    # TCP: a failure for the one, a warning for the other
    cfg = os.path.join(os.path.dirname(redis.dir), "check.yaml")
    with open(cfg, "w") as f:
        f.write("redis:\n  url: redis://127.0.0.1:6390/0\nimages:\n"
                "  broken: {rootfs: no-such.ext4}\nnetwork:\n  profiles:\n"
                "    leaky: {allow: [\"host:6390\"]}\n"
                "pool:\n  good: {size: 2}\n  lost: {image: nonesuch}\n")
    no_url = {k: v for k, v in env.items() if k != "AETH_REDIS_URL"}
    r = subprocess.run([WORKER, "-check", "-config", cfg], capture_output=True,
                       text=True, env=no_url, timeout=120)
    print(r.stdout, end="")
    mark, detail, fix = line(r.stdout, "image broken")
    check(mark == "✗" and "not found" in detail, "a catalogue image that is "
          "missing: failure (%s)" % detail)
    mark, detail, _ = line(r.stdout, "pool good")
    check(mark == "✓" and "2 VMs kept ready" in detail, "-check lists a pool")
    mark, detail, fix = line(r.stdout, "pool lost")
    check(mark == "✗" and "nonesuch" in detail and fix,
          "a pool naming an image the catalogue lacks: failure")
    mark, detail, fix = line(r.stdout, "redis exposure")
    check(mark == "!" and "leaky" in detail and "host:6390" in detail and fix,
          "a profile reaching the worker's Redis: warning naming it")
    jail_off = dict(env, AETH_VMM_JAIL="off")
    mark, detail, fix = line(run_check(jail_off).stdout, "jail")
    check(mark == "!" and "OFF" in detail and "vmm.jail" in fix,
          "vmm.jail: off is a loud warning")
    mark, detail, fix = line(run_check(jail_off).stdout, "snapshots")
    check(mark == "!" and "keep every page" in detail and "vmm.jail" in fix,
          "snapshots without the jail: restored VMs keep freed memory, warned")

    # Redis not there: a failure with the fix, exit status 1
    bad = dict(env, AETH_REDIS_URL="unix://" + os.path.join(redis.dir, "nope.sock"))
    r = run_check(bad)
    mark, detail, fix = line(r.stdout, "redis")
    check(mark == "✗" and "nope.sock" in detail and "services.sh" in fix,
          "dead redis: failure names the socket and the fix")
    check(r.returncode == 1 and "This host cannot run a worker yet" in r.stdout,
          "a failed check: exit 1 and the summary says so")
    print("cli_check: all checks passed")


if __name__ == "__main__":
    main()
    sys.exit(0)
