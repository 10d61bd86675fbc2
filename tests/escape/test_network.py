#!/usr/bin/python3
"""Escape suite: a hostile guest tries to reach the host's network.

Before the jail, "network": "user" was QEMU's slirp without restrictions:
10.0.2.2 was the host's 127.0.0.1, so a guest could write into a Redis
bound to loopback (`printf 'SET k pwned\\r\\n' | nc 10.0.2.2 PORT`) and
from there enqueue tasks or drive other users' VMs.

Here, with a real worker, Redis (TCP on the host's loopback, no password,
as the documented defaults were) and TCG guests:
- profile "git" allows host:P. The guest reaches P; it does not reach the
  server on P+1, the Redis, the cloud metadata address, nor the host's own
  non-loopback address on P (the rule is for the host's loopback only);
- profile "pub" allows "*:P" (the internet on port P): neither the host
  (10.0.2.2, its own addresses) nor private ranges answer;
- "network": "user" without a configured profile reaches nothing;
- busybox wget works for a user's first network test: over HTTP to an
  allowed host port, and to "localhost" in the guest (its /etc/hosts;
  without it wget said "bad address").
Each refused attempt is checked from both sides: the guest sees the
connection refused, the host's server never saw it.
"""
import http.server
import os
import subprocess
import threading
import time

from escape import (Server, Worker, check, create_vm, die, free_port,
                    host_addresses, sh, start, tmp, vm_id_of)
from e2e_support import procs


def nc(env, vm, host, port, send=""):
    """`nc host port` in the guest: (exit code, output)."""
    r = sh(env, vm, "printf '%s' | nc -w 3 %s %d; echo rc=$?" % (send, host, port))
    so = r["result"]["stdout"]
    rc = int(so.rsplit("rc=", 1)[1].strip()) if "rc=" in so else -1
    return rc, so + r["result"]["stderr"]


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello over http\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    url, redis, env = start()
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    allowed = Server(b"allowed port\n")
    try:
        neighbour = Server(b"neighbour port\n", port=allowed.port + 1)
    except OSError as e:
        die("cannot listen on the port after %d: %s" % (allowed.port, e))
    # a Redis on the host's loopback over TCP, without a password
    rport = free_port()
    rdir = os.path.join(tmp, "tcp-redis")
    os.makedirs(rdir)
    procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--dir", rdir], stdout=subprocess.DEVNULL))
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(rport), "ping"], capture_output=True,
                          text=True, timeout=10).stdout.strip() == "PONG":
            break
        time.sleep(0.05)
    else:
        die("the TCP redis-server did not start")
    pub_port = free_port()
    pub = Server(b"public rule port\n", host="0.0.0.0", port=pub_port)
    cfg = ("network:\n  profiles:\n"
           "    git:\n      allow: [\"host:%d\", \"host:%d\"]\n"
           "    pub:\n      allow: [\"*:%d\"]\n" % (allowed.port,
                                                 web.server_address[1], pub.port))
    Worker("esc-net", env, config=cfg)

    vm = vm_id_of(create_vm(env, "net-git", "-net", "git"))
    rc, out = nc(env, vm, "10.0.2.2", allowed.port)
    check(rc == 0 and "allowed port" in out and allowed.accepted == 1,
          "the profile's port host:%d is reachable at 10.0.2.2" % allowed.port)
    r = sh(env, vm, "wget -q -O - http://10.0.2.2:%d/x 2>&1; echo rc=$?"
           % web.server_address[1])
    out = r["result"]["stdout"]
    check("hello over http" in out and "rc=0" in out,
          "busybox wget fetches over HTTP from an allowed host port (%r)" % out)
    r = sh(env, vm, "mkdir -p /tmp/www && echo local page > /tmp/www/p && "
           "httpd -p 127.0.0.1:8080 -h /tmp/www && "
           "wget -q -O - http://localhost:8080/p 2>&1; echo rc=$?")
    out = r["result"]["stdout"]
    check("local page" in out and "bad address" not in out,
          "wget http://localhost:8080/ in the guest resolves localhost (%r)" % out)
    rc, out = nc(env, vm, "10.0.2.2", neighbour.port)
    check(rc != 0 and "refused" in out and neighbour.accepted == 0,
          "the next port (%d) is refused, its server saw nothing" % neighbour.port)
    rc, out = nc(env, vm, "10.0.2.2", rport, "SET k pwned\\r\\n")
    got = subprocess.run(["redis-cli", "-p", str(rport), "GET", "k"],
                         capture_output=True, text=True, timeout=10).stdout.strip()
    check(rc != 0 and got == "", "a Redis on the host's 127.0.0.1:%d is unreachable "
          "(nc rc %d, GET k -> %r)" % (rport, rc, got))
    rc, out = nc(env, vm, "169.254.169.254", 80)
    check(rc != 0, "the cloud metadata address 169.254.169.254:80 is unreachable")
    for addr in host_addresses():
        rc, out = nc(env, vm, addr, allowed.port)
        check(rc != 0 and allowed.accepted == 1,
              "the host's own address %s:%d is not the host's loopback rule" %
              (addr, allowed.port))

    # "*:P" listens on every address of P in the VM's namespace, so a
    # refused destination is accepted there and reset at once: the guest
    # sees its connection closed without a byte, the host sees nothing
    vm2 = vm_id_of(create_vm(env, "net-pub", "-net", "pub"))
    before = pub.accepted
    for addr in ["10.0.2.2"] + host_addresses() + ["192.168.1.1", "10.1.2.3",
                                                   "172.16.0.1"]:
        rc, out = nc(env, vm2, addr, pub.port)
        check("public rule port" not in out and pub.accepted == before,
              "\"*:%d\" does not open the host or a private address: %s (guest "
              "saw %r)" % (pub.port, addr, out.strip()))

    vm3 = vm_id_of(create_vm(env, "net-user", "-net", "user"))
    rc, out = nc(env, vm3, "10.0.2.2", allowed.port)
    check(rc != 0 and allowed.accepted == 1,
          "\"user\" without a configured profile reaches nothing")
    r = sh(env, vm3, "ip -4 addr show eth0 2>/dev/null || ifconfig eth0")
    check("10.0.2.15" in r["result"]["stdout"], "it still has its network card")
    print("network escape checks passed")


if __name__ == "__main__":
    main()
