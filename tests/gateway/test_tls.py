#!/usr/bin/env python3
"""aeth-gateway's transport rules (docs/gateway.md, "Transport"): with
gateway.tls_cert/tls_key it speaks only HTTPS (a throw-away CA and
certificate made with the openssl command; curl checks the chain and the
name), plain HTTP on an address that is not loopback is refused at start
unless gateway.allow_remote, and with TLS such an address is allowed.
No worker: a fresh database and a private Redis."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402

e2e = gs.e2e
check = e2e.check


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        e2e.die("openssl %s: %s" % (" ".join(args), r.stderr))


def make_certs(d):
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("gw.key", "gw.csr", "gw.crt"))
    ext = os.path.join(d, "ext.cnf")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=aeth test CA", "-keyout", ca_key, "-out", ca)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", key, "-out", csr)
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
            "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt)
    return ca, crt, key


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args),
                          capture_output=True, text=True)


def start_fails(env, config, words):
    cfg = os.path.join(e2e.tmp, "bad.yaml")
    with open(cfg, "w") as f:
        f.write(config)
    r = subprocess.run([gs.GATEWAY, "-config", cfg], capture_output=True,
                       text=True, env=env, timeout=30)
    check(r.returncode != 0 and words in r.stderr,
          "refused at start: %s" % r.stderr.strip().splitlines()[-1])


def main():
    url, redis, env = e2e.start_services()
    ca, crt, key = make_certs(e2e.tmp)
    gw = gs.Gateway(env, "  tls_cert: %s\n  tls_key: %s\n" % (crt, key))
    k = gw.key("acme")
    base = "https://127.0.0.1:%d" % gw.port
    r = curl("--cacert", ca, base + "/v1/health")
    check(r.returncode == 0 and '"ok"' in r.stdout, "HTTPS with the CA: %s"
          % r.stdout)
    r = curl("--cacert", ca, "-H", "Authorization: Bearer " + k,
             base + "/v1/whoami")
    check('"tenant":"acme"' in r.stdout, "an authenticated call over HTTPS")
    r = curl(base + "/v1/health")
    check(r.returncode != 0, "a client without the CA refuses the "
          "certificate (curl exit %d)" % r.returncode)
    r = curl("http://127.0.0.1:%d/v1/health" % gw.port)
    check(r.returncode != 0 or '"ok"' not in r.stdout,
          "plain HTTP to the TLS port gets no answer")
    gw.stop()

    start_fails(env, "gateway:\n  listen: 0.0.0.0:0\n",
                "not a loopback address")
    gw2 = gs.Gateway(env, "  tls_cert: %s\n  tls_key: %s\n" % (crt, key))
    gw2.stop()
    cfg_remote = ("  tls_cert: %s\n  tls_key: %s\n" % (crt, key))
    with open(os.path.join(e2e.tmp, "remote.yaml"), "w") as f:
        f.write("gateway:\n  listen: 0.0.0.0:0\n" + cfg_remote)
    p = subprocess.Popen([gs.GATEWAY, "-config", os.path.join(e2e.tmp,
                                                             "remote.yaml")],
                         stderr=subprocess.PIPE, text=True, env=env)
    e2e.procs.append(p)
    # the library's log (logging.level info) may come first
    for _ in range(20):
        line = p.stderr.readline()
        if not line or "serving on" in line:
            break
    check("serving on 0.0.0.0:0" in line, "a remote address with TLS is "
          "served: %s" % line.strip())
    p.terminate()
    p.wait(timeout=30)
    print("tls: all checks passed")


if __name__ == "__main__":
    main()
