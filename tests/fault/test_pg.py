"""PostgreSQL stops while tasks flow, and starts again on its data dir:
"immediate" stops it (pg_ctl stop -m immediate: a crash; with
synchronous_commit = off the last commits are lost) during a burst of
submits; "outage" stops it (-m fast) for 12 s while tasks run, so that
they end while it is away. Nothing the submit client accepted may be
lost: every accepted task ends in a terminal state in PostgreSQL, and
Redis and PostgreSQL agree, within the reconciler's bound
(tests/fault/fault.py has the figures and the bound).

    python3 tests/fault/test_pg.py immediate|outage
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault import TASKS, Run, die, log  # noqa: E402

OUTAGE_S = 12


def immediate(r):
    fault_end = []

    def fault(k):
        if k != TASKS // 4 or fault_end:
            return
        log("fault: pg_ctl stop -m immediate after %d accepted submits" % k)
        r.svc.pg_stop("immediate")
        r.svc.start("pg")
        fault_end.append(time.time())
        log("fault: postgresql started again (crash recovery done)")

    r.burst(TASKS, '{"sleep_ms": 80}', fault, gap_us=15000)
    if not fault_end:
        die("the burst ended before the fault (%d accepted)" % len(r.accepted))
    return fault_end[0]


def outage(r):
    # 4 slots, 6 tasks of 3 s: four end while PostgreSQL is away, for
    # longer than a task's retries take (1 + 2 + 4 s), two wait their turn
    r.burst(6, '{"sleep_ms": 3000}')
    time.sleep(1)
    log("fault: pg_ctl stop -m fast for %d s while tasks run" % OUTAGE_S)
    r.svc.pg_stop("fast")
    time.sleep(OUTAGE_S)
    r.svc.start("pg")
    log("fault: postgresql started again")
    return time.time()


def main():
    how = sys.argv[1] if len(sys.argv) > 1 else "immediate"
    if how not in ("immediate", "outage"):
        die("usage: test_pg.py immediate|outage")
    r = Run("pg-" + how)
    since = immediate(r) if how == "immediate" else outage(r)
    r.expect_recovered(r.recover(since))
    r.stop_workers()


if __name__ == "__main__":
    main()
