#!/usr/bin/env python3
"""aeth-gateway as an operator meets it (docs/gateway.md, docs/cli.md):
the admin commands and the errors of a start that cannot work, each
saying what went wrong and what to do. A fresh database and a private
Redis, no worker."""
import os
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402

e2e = gs.e2e
check = e2e.check


def run(env, *args):
    return subprocess.run([gs.GATEWAY] + list(args), capture_output=True,
                          text=True, env=env, timeout=30)


def limits(url, tenant):
    return e2e.psql(url, "SELECT max_vms, max_vcpus, max_memory_mb, max_rps "
                    "FROM tenants WHERE id = '%s'" % tenant)


def main():
    url, redis, env = e2e.start_services()

    r = run(env, "--help")
    check(r.returncode == 0 and all(w in r.stdout for w in (
        "keys create", "keys list", "keys revoke", "tenants set", "-listen")),
        "--help names every command")
    check("AETH_CONFIG" not in r.stdout, "--help promises no $AETH_CONFIG "
          "(nothing reads it)")
    r = run(env, "-bogus")
    check(r.returncode == 2 and "unknown flag -bogus" in r.stderr,
          "an unknown flag: exit 2, named")

    cfg = os.path.join(e2e.tmp, "gw.yaml")
    with open(cfg, "w") as f:
        f.write("gateway:\n  listen: 127.0.0.1:0\n")
    for flags in (["-config", cfg], ["-config=" + cfg], ["--config", cfg]):
        r = run(env, *flags, "keys", "list")
        check(r.returncode == 0 and r.stdout.startswith("["),
              "Go-style flags as docs/cli.md says: %s keys list"
              % " ".join(flags))
    r = run(env, "-listen")
    check(r.returncode == 2 and "needs a value" in r.stderr,
          "-listen without a value: %s" % r.stderr.strip())

    # keys
    key = run(env, "keys", "create", "-tenant", "acme").stdout.strip()
    check(key.startswith("aeth_") and len(key) == 48, "keys create prints "
          "the key")
    r = run(env, "keys", "create")
    check(r.returncode == 2 and "give -tenant NAME" in r.stderr,
          "keys create without -tenant: %s" % r.stderr.strip())
    r = run(env, "keys", "revoke", "aeth_nothere")
    check(r.returncode == 1 and "no API key with id or prefix" in r.stderr
          and "keys list" in r.stderr,
          "revoke of an unknown key: %s" % r.stderr.strip())

    # tenants set: numbers checked, the result said
    r = run(env, "tenants", "set", "acme", "-max-vms", "2", "-max-rps", "7")
    check(r.returncode == 0 and "tenant acme: max_vms 2, max_vcpus default "
          "(gateway.quota_vcpus)" in r.stderr and "max_rps 7" in r.stderr,
          "tenants set says what it set: %s" % r.stderr.strip())
    check(limits(url, "acme") == "2|||7", "... and the row has it")
    for bad in ("ten", "-5", "3x", ""):
        r = run(env, "tenants", "set", "acme", "-max-vms", bad)
        check(r.returncode == 2 and "-max-vms" in r.stderr and
              "-1 for the gateway's default" in r.stderr,
              "-max-vms %r refused: %s" % (bad, r.stderr.strip()))
    check(limits(url, "acme") == "2|||7", "refused values change nothing")
    r = run(env, "tenants", "set", "-max-vms", "3", "acme")
    check(r.returncode == 2 and "give the tenant's name before the flags"
          in r.stderr, "a flag before the name: %s" % r.stderr.strip())
    r = run(env, "tenants", "set", "-h")
    check(r.returncode == 0 and "tenants set NAME" in r.stdout,
          "tenants set -h prints the usage")

    # a start that cannot work
    bad_env = dict(env, AETH_DATABASE_URL="postgresql://aetherium@127.0.0.1:1/x")
    r = run(bad_env, "-listen", "127.0.0.1:0")
    check(r.returncode == 1 and "cannot connect to PostgreSQL" in r.stderr
          and "AETH_DATABASE_URL" in r.stderr,
          "no database: %s" % r.stderr.strip())
    gw = gs.Gateway(env)
    r = run(env, "-listen", "127.0.0.1:%d" % gw.port)
    check(r.returncode == 1 and "cannot listen on 127.0.0.1:%d" % gw.port
          in r.stderr and "another process" in r.stderr,
          "port in use: %s" % r.stderr.strip())
    tls_env = dict(env, AETH_GATEWAY_TLS_CERT="/nonexistent/cert.pem",
                   AETH_GATEWAY_TLS_KEY="/nonexistent/key.pem")
    r = run(tls_env, "-listen", "127.0.0.1:0")
    check(r.returncode == 1 and "cannot read TLS file /nonexistent/cert.pem"
          in r.stderr, "a missing TLS file: %s" % r.stderr.strip())

    r = run(dict(env, AETH_GATEWAY_TLS_CERT="/nonexistent/cert.pem"),
            "-listen", "127.0.0.1:0")
    check(r.returncode == 1 and "gateway.tls_key" in r.stderr,
          "a certificate without a key: %s" % r.stderr.strip())
    r = run(env, "-listen", "0.0.0.0:0")
    check(r.returncode == 1 and "not a loopback address" in r.stderr and
          "gateway.allow_remote" in r.stderr and "tls_cert" in r.stderr,
          "plain HTTP off loopback names the keys: %s" % r.stderr.strip())

    # a wrong key, as curl meets it
    req = urllib.request.Request(gw.base + "/v1/vms", headers={
        "Authorization": "Bearer aeth_" + "x" * 43})
    try:
        urllib.request.urlopen(req, timeout=10)
        check(False, "a wrong key is refused")
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        check(e.code == 401 and "not known or was revoked" in body and
              "aeth-gateway keys create" in body,
              "a wrong key: 401 %s" % body)
    gw.stop()
    print("gateway_cli: all checks passed")


if __name__ == "__main__":
    main()
