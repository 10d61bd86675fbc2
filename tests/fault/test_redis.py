"""Redis dies during a burst of submits (SIGKILL, or SIGTERM with "term")
and is started again on the same data dir (scripts/services.sh start
redis: the append-only file it runs with); with "lost" it is killed and
started again without its data (a lost disk, a replica promoted before it
caught up), so that the ledger reconciler must put back every task that
was queued. Nothing the submit client accepted may be lost: every
accepted task ends in a terminal state in PostgreSQL, and Redis and
PostgreSQL agree, within the reconciler's bound (tests/fault/fault.py has
the figures and the bound).

    python3 tests/fault/test_redis.py kill|term|lost
"""
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault import TASKS, Run, die, log  # noqa: E402


def main():
    how = sys.argv[1] if len(sys.argv) > 1 else "kill"
    if how not in ("kill", "term", "lost"):
        die("usage: test_redis.py kill|term|lost")
    sig = signal.SIGTERM if how == "term" else signal.SIGKILL
    r = Run("redis-" + how)
    fault_end = []

    def fault(k):
        if k != TASKS // 4 or fault_end:
            return
        log("fault: redis-server gets %s after %d accepted submits"
            % (signal.Signals(sig).name, k))
        r.svc.kill_redis(sig)
        if how == "lost":
            for f in os.listdir(r.svc.redis_dir()):
                if f.startswith("appendonly") or f.endswith(".rdb"):
                    p = os.path.join(r.svc.redis_dir(), f)
                    shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
            log("fault: its data is gone")
        time.sleep(0.5)
        r.svc.start("redis")
        fault_end.append(time.time())
        log("fault: redis-server started again%s"
            % ("" if how == "lost" else " on its data dir"))

    # ~20 ms apart, 4 slots of 80 ms tasks: the burst outlasts the fault,
    # and a backlog builds, so that tasks are in every state when it comes
    r.burst(TASKS, '{"sleep_ms": 80}', fault, gap_us=15000)
    if not fault_end:
        die("the burst ended before the fault (%d accepted)" % len(r.accepted))
    r.expect_recovered(r.recover(fault_end[0]))
    r.stop_workers()


if __name__ == "__main__":
    main()
