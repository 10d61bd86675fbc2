"""Run queue test programs (cmocka) against a 3-node Redis Cluster
started here (tests/cluster/topology.py), as AETH_TEST_REDIS_URL; the
cluster is stopped at exit, also on failure.

    python3 tests/cluster/run_queue.py TEST_PROGRAM...
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from topology import RedisCluster  # noqa: E402


def main():
    if len(sys.argv) < 2:
        print("usage: run_queue.py TEST_PROGRAM...", file=sys.stderr)
        sys.exit(2)
    c = RedisCluster().start()
    env = dict(os.environ, AETH_TEST_REDIS_URL=c.url())
    failed = []
    for prog in sys.argv[1:]:
        t0 = time.time()
        print("# %s against %s" % (os.path.basename(prog), c.url()), flush=True)
        r = subprocess.run([prog], env=env, timeout=600)
        print("# %s: exit %d in %.1f s" % (os.path.basename(prog), r.returncode,
                                          time.time() - t0), flush=True)
        if r.returncode != 0:
            failed.append(os.path.basename(prog))
    left = c.keys()
    if left:
        print("# %d keys left in the cluster (tests clean their namespaces)" % left)
    if failed:
        print("FAIL: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
