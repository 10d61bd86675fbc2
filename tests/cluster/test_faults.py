"""The distributed stores change under a burst of submits, as they do on
a fleet; nothing the submit client accepted may be lost (the figures and
the bound of tests/fault/fault.py: every accepted task terminal in
PostgreSQL, Redis agreeing, within the reconciler's bound):

  reshard   a 3-node Redis Cluster: every slot of the node serving the
            queue moves to another node (redis-cli --cluster reshard),
            then back, while tasks flow
  failover  a 3-node Redis Cluster with a replica per primary: the
            primary serving the queue is killed (SIGKILL); its replica
            takes over after cluster-node-timeout (3 s)
  sentinel  Redis behind three sentinels: the replica loses its link for
            0.5 s, then the primary is killed (SIGKILL); the sentinels
            promote the replica; what the old primary had not replicated
            the ledger reconciler repairs
  pg        a PostgreSQL primary with a streaming standby: the primary
            crashes (pg_ctl stop -m immediate) and the standby is
            promoted (pg_ctl promote); workers and the submit client
            reconnect through the multi-host URL

Two workers of 2 slots (tests/cli/custom_worker, demo:echo, 80 ms tasks),
AETH_FAULT_TASKS submits (default 200) ~15 ms apart. Besides fault.py's
figures it prints resume_s: from the fault's start to the start of the
first task submitted after it (bench/cluster collects both).

    python3 tests/cluster/test_faults.py reshard|failover|sentinel|pg
"""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
from topology import (PgPair, RedisCluster, RedisSentinel, RedisServer, cli,  # noqa: E402
                      free_port, wait_until)
import fault  # noqa: E402
from fault import Run, die, log  # noqa: E402
from e2e_support import create_db, psql  # noqa: E402,F401

TASKS = int(os.environ.get("AETH_FAULT_TASKS", "200"))


class Stores:
    """Redis of some kind and a PostgreSQL database, for fault.Run."""

    def __init__(self, redis, db_url, cli):
        self.redis = redis
        self.db_url = db_url
        self.cli = cli

    def urls(self):
        return {"AETH_DATABASE_URL": self.db_url,
                "AETH_REDIS_URL": self.redis.url()}

    def redis_cli(self):
        return self.cli()


def resume_s(url, since):
    """Seconds from `since` (time.time(), the fault's start) to the start
    of the first task submitted after it, by the tasks rows: a task
    dequeued before the fault may start after it, and one submitted after
    it needs both stores; None when none has started."""
    out = psql(url, "SELECT coalesce(extract(epoch FROM min(started_at)), 0) FROM "
               "tasks WHERE created_at > to_timestamp(%f) AT TIME ZONE 'UTC' AND "
               "started_at IS NOT NULL" % since)
    v = float(out or 0)
    return round(v - since, 2) if v else None


def run_burst(r, fault_fn, gap_us=15000):
    """The burst, with fault_fn() after TASKS // 4 accepted submits (in
    a thread of its own: the burst goes on meanwhile); returns the
    fault's start and end."""
    import threading
    times = {}

    def at(k):
        if k != TASKS // 4 or times:
            return
        times["start"] = time.time()

        def go():
            fault_fn()
            times["end"] = time.time()
        t = threading.Thread(target=go)
        t.start()
        times["thread"] = t
    r.burst(TASKS, '{"sleep_ms": 80}', at, gap_us=gap_us)
    if not times:
        die("the burst ended before the fault (%d accepted)" % len(r.accepted))
    times["thread"].join(timeout=300)
    if "end" not in times:
        die("the fault did not end")
    return times["start"], times["end"]


def reshard():
    c = RedisCluster().start()
    stores = Stores(c, create_db(), lambda: ["-c", "-p", str(c.nodes[0].port)])
    r = Run("reshard", services=stores)
    slot = c.slot("{aeth:default}")
    src = c.port_of_slot(slot)
    dst = next(n.port for n in c.nodes if n.port != src)

    def fault_fn():
        n = c.slots_of(src)
        log("fault: redis-cli --cluster reshard moves all %d slots of the queue's "
            "node (:%d) to :%d" % (n, src, dst))
        c.reshard(src, dst, n)
        c.wait_agreed()
        moved = c.port_of_slot(slot)
        log("fault: the queue's slot %d is on :%d now; moving %d slots back" %
            (slot, moved, n))
        if moved != dst:
            die("the queue's slot did not move")
        c.reshard(dst, src, n)
        c.wait_agreed()
        log("fault: resharding done")
    start, end = run_burst(r, fault_fn)
    return r, start, end


def failover():
    c = RedisCluster(replicas=1).start()
    stores = Stores(c, create_db(), lambda: ["-c", "-p", str(c.alive()[0].port)])
    r = Run("failover", services=stores)
    slot = c.slot("{aeth:default}")

    def fault_fn():
        t0 = time.time()
        old = c.port_of_slot(slot)
        c.node(old).kill()
        log("fault: the primary serving the queue (:%d) got SIGKILL" % old)
        new = wait_until("a replica takes the queue's slot over", lambda: all(
            "cluster_state:ok" in cli(n.port, "CLUSTER", "INFO", check=False)
            for n in c.alive()) and c.port_of_slot(slot) != old and
            c.port_of_slot(slot), 60, 0.1)
        log("fault: its replica :%d took over after %.1f s" % (new, time.time() - t0))
    start, end = run_burst(r, fault_fn)
    return r, start, end


def sentinel():
    s = RedisSentinel().start()

    def cli_args():
        return ["-p", str(s.primary_port())]
    r = Run("sentinel", services=Stores(s, create_db(), cli_args))

    def fault_fn():
        t0 = time.time()
        # Replication is asynchronous: make its lag visible, as a network
        # blip before the crash would. The replica is frozen (it cannot
        # reconnect) and the primary drops its link, then takes writes
        # for 0.5 s and dies with them. What the replica never got, the
        # ledger reconciler must repair.
        primary = s.primary_port()
        replica = next(x for x in s.servers if x.port != primary)
        os.kill(replica.proc.pid, signal.SIGSTOP)
        cli(primary, "CLIENT", "KILL", "TYPE", "replica")
        time.sleep(0.5)
        old = s.kill_primary()
        os.kill(replica.proc.pid, signal.SIGCONT)
        log("fault: the primary (:%d) got SIGKILL, its last 0.5 s of writes "
            "not replicated" % old)
        new = s.wait_failover(old)
        log("fault: the sentinels promoted :%d after %.1f s" % (new, time.time() - t0))
    # faster than the 4 slots run them: a backlog, so that tasks enqueued
    # in the last 0.5 s are still queued when the primary dies
    start, end = run_burst(r, fault_fn, gap_us=3000)
    return r, start, end


def pg():
    p = PgPair().start()
    redis = RedisServer("pg-redis", free_port())
    redis.start()
    r = Run("pg", services=Stores(redis, p.url(), lambda: ["-p", str(redis.port)]))

    def fault_fn():
        log("fault: the primary crashes (pg_ctl stop -m immediate), the standby "
            "is promoted")
        p.promote()
        log("fault: the standby is the primary now")
    start, end = run_burst(r, fault_fn)
    return r, start, end


def main():
    how = sys.argv[1] if len(sys.argv) > 1 else ""
    modes = {"reshard": reshard, "failover": failover, "sentinel": sentinel, "pg": pg}
    if how not in modes:
        die("usage: test_faults.py reshard|failover|sentinel|pg")
    r, start, end = modes[how]()
    f = r.recover(end)
    res = resume_s(r.url, start)
    log("resume_s=%s fault_s=%.1f" % (res, end - start))
    r.expect_recovered(f)
    fault.check(res is not None, "tasks started again after the fault (%s s)" % res)
    r.stop_workers()


if __name__ == "__main__":
    main()
