"""The VM metrics of a real worker (aeth-worker) with a TCG guest: after a
vm:create and a vm:execute its GET /metrics shows one boot (cold or restored) with its
boot time, one VM running, its VMM process, its committed guest memory
and one exec duration, passes `promtool check metrics`; the worker's JSON
progress lines of those tasks carry the VM id, and every line it
writes (stdout and stderr) is JSON; after vm:delete no VM runs.
Suite stack (services, QEMU, the guest image)."""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from e2e_support import (start_services, Worker, submit, check, die, tmp,  # noqa: E402
                         UUID_RE)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        check(r.status == 200, "GET /metrics answers 200")
        check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"),
              "the Prometheus text content type")
        return r.read().decode()


def value(text, series):
    m = re.search(r"^%s (\S+)$" % re.escape(series), text, re.M)
    return float(m.group(1)) if m else None


def promtool_check(text, name="metrics.txt"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run(["promtool", "check", "metrics"], stdin=open(path),
                       capture_output=True, text=True)
    check(r.returncode == 0, "promtool check metrics: %s%s" % (r.stdout, r.stderr))


def main():
    url, redis, env = start_services()
    port = free_port()
    w = Worker("vmm-w1", env, config="metrics:\n  listen: 127.0.0.1:%d\n"
               "logging:\n  format: json\n" % port)
    w.wait_for(r"Metrics on 127\.0\.0\.1:%d" % port)
    before = scrape(port)
    check(value(before, "aeth_vms_running") == 0, "no VM running at start")

    r = submit(env, "-type", "vm:create", "-name", "metrics-vm", "-json")
    create_id = re.search(UUID_RE, r.stdout).group(0)
    r = submit(env, "-status", create_id, "-wait", "-timeout", "180s", "-json")
    created = json.loads(r.stdout)
    check(created["status"] == "completed", "vm:create completed")
    vm_id = created["result"]["vm_id"]
    # "cold", or "snapshot" when the worker restored it from the snapshot
    # of its shape (vmm.snapshots: auto, the default)
    how = created["result"]["origin"]
    r = submit(env, "-type", "vm:execute", "-vm-id", vm_id, "-cmd", "echo",
               "-args", "hi", "-wait", "-json")
    check(json.loads(r.stdout)["result"]["stdout"] == "hi\n", "vm:execute ran")

    text = scrape(port)
    check(value(text, 'aeth_vm_boots_total{how="%s",outcome="ok"}' % how) == 1,
          "one boot counted, by how it was made (%s)" % how)
    check(value(text, 'aeth_vm_boot_duration_seconds_count{how="%s"}' % how) == 1,
          "its boot time observed")
    boot_s = value(text, 'aeth_vm_boot_duration_seconds_sum{how="%s"}' % how)
    check(boot_s is not None and 0.05 < boot_s < 180, "boot time %s s" % boot_s)
    check(value(text, "aeth_vms_running") == 1, "one VM running")
    check(value(text, "aeth_vmm_processes") == 1, "one VMM process")
    check(value(text, "aeth_guest_memory_committed_bytes") == 256 * 1048576,
          "256 MiB of guest memory committed")
    check(value(text, "aeth_exec_duration_seconds_count") == 1, "one exec timed")
    check(value(text, 'aeth_tasks_total{type="vm:create",outcome="succeeded"}') == 1,
          "vm:create counted")
    check(value(text, 'aeth_tasks_total{type="vm:execute",outcome="succeeded"}') == 1,
          "vm:execute counted")
    promtool_check(text)

    # every line, aeth-worker's own "Worker starting..." and the library's
    # log on stderr included: a log shipper reading JSON gets nothing else
    lines = []
    for l in w.text().splitlines():
        try:
            lines.append(json.loads(l))
        except ValueError:
            die("a line of the worker's output with logging.format json is "
                "not JSON: %r" % l)
    check(lines and all(l.get("worker") == "vmm-w1" for l in lines),
          "every line of the worker (%d) is JSON with the worker id"
          % len(lines))
    started = [l for l in lines if l["message"] == "✓ VM started"]
    check(started and started[0].get("vm_id") == vm_id and
          started[0].get("task_id") == create_id,
          "the VM's start line carries its VM and task ids")

    submit(env, "-type", "vm:delete", "-vm-id", vm_id, "-wait")
    text = scrape(port)
    check(value(text, "aeth_vms_running") == 0, "no VM running after vm:delete")
    check(value(text, "aeth_vmm_processes") == 0, "no VMM process after vm:delete")
    w.stop()
    print("ok: VM metrics (boot %s s)" % boot_s)


if __name__ == "__main__":
    main()
