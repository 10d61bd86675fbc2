"""The warm pool gauges of a real worker (aeth-worker) with TCG guests:
pool "small" of size 2; its /metrics shows aeth_pool_target_vms 2 from
the start, and once the pool is full aeth_pool_vms{state="ready"} 2,
booting 0, the same as the worker's registry entry says; a vm:create of
the pool's shape takes one (the gauges follow the registry again after the
refill); the text passes `promtool check metrics`. Suite stack (services,
QEMU, the guest image)."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from e2e_support import (start_services, Worker, submit, check, die,  # noqa: E402
                         workers)
from test_vm_metrics import free_port, promtool_check, scrape, value  # noqa: E402

WID = "poolm-w1"


def registry_pool(env):
    for p in workers(env).get(WID, {}).get("pools", []):
        if p["name"] == "small":
            return p
    return None


def gauges(text):
    return (value(text, 'aeth_pool_vms{pool="small",state="ready"}'),
            value(text, 'aeth_pool_vms{pool="small",state="booting"}'),
            value(text, 'aeth_pool_target_vms{pool="small"}'))


def wait_full(env, port, w, what):
    end = time.time() + 300
    while time.time() < end:
        text = scrape(port)
        ready, booting, target = gauges(text)
        p = registry_pool(env)
        if ready == 2 and booting == 0 and p and p["ready"] == 2:
            check(True, "%s: ready 2, booting 0 (registry: ready %d, "
                  "booting %d)" % (what, p["ready"], p["booting"]))
            return text
        time.sleep(0.5)
    die("pool gauges not full (%s) after 300 s; worker log:\n%s" %
        (gauges(scrape(port)), w.text()))


def main():
    url, redis, env = start_services()
    port = free_port()
    w = Worker(WID, env, config="metrics:\n  listen: 127.0.0.1:%d\n"
               "worker:\n  delete_vms_on_stop: true\n"
               "pool:\n  small: {size: 2}\n" % port)
    w.wait_for(r"Metrics on 127\.0\.0\.1:%d" % port)
    ready, booting, target = gauges(scrape(port))
    check(target == 2, "aeth_pool_target_vms is the configured size (%s)" % target)
    text = wait_full(env, port, w, "pool filled")
    check(gauges(text)[2] == 2, "target still 2")
    check('pool="' not in re.sub(r'pool="small"', "", text),
          "only the configured pool name as a label")

    r = submit(env, "-type", "vm:create", "-name", "from-pool", "-wait",
               "-timeout", "180s", "-json")
    created = json.loads(r.stdout)
    check(created["status"] == "completed" and
          created["result"].get("origin") == "pool",
          "a vm:create of the pool's shape is handed a pool VM (%s)" %
          created["result"].get("origin"))
    text = wait_full(env, port, w, "pool refilled after a hand-out")
    promtool_check(text, "pool-metrics.txt")
    submit(env, "-type", "vm:delete", "-vm-id", created["result"]["vm_id"], "-wait")
    w.stop()
    print("ok: pool metrics")


if __name__ == "__main__":
    main()
