#!/usr/bin/env python3
"""docs/openapi.yaml against the server: the routes it describes are
exactly those of the gateway's route table (lib/gateway/gateway.c), and
every route, called for real (a gateway, a worker, a TCG guest), answers
with a status the file lists for it and a JSON body its schema accepts:
the success case, without a key (401), and with an unknown id (404)."""
import json
import os
import re
import sys
import uuid

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gw_support as gs  # noqa: E402
from gw_support import call  # noqa: E402

e2e = gs.e2e
check = e2e.check
SRC = os.environ.get("AETH_SOURCE_ROOT",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "..", ".."))
METHODS = ("get", "post", "delete", "put", "patch")


def server_routes():
    with open(os.path.join(SRC, "lib", "gateway", "gateway.c")) as f:
        text = f.read()
    table = text[text.index("static const gw_route gw_routes[]"):]
    table = table[:table.index("};")]
    routes = set(re.findall(r'\{"([A-Z]+)", "(/v1/[^"]*)", aeth__gw_', table))
    # lib/http's own route, registered beside the table
    routes |= set(re.findall(r'\{"(GET)", "(/v1/health)", health, gw\}', text))
    return routes


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        obj = spec
        for part in node["$ref"][2:].split("/"):
            obj = obj[part]
        node = obj
    return node


def validate(spec, schema, value, where):
    """The part of JSON Schema this file uses: $ref, oneOf, type,
    nullable, enum, required, properties, items, additionalProperties."""
    schema = resolve(spec, schema)
    if value is None and schema.get("nullable"):
        return
    if "oneOf" in schema:
        errs = []
        for s in schema["oneOf"]:
            try:
                validate(spec, s, value, where)
                return
            except AssertionError as e:
                errs.append(str(e))
        raise AssertionError("%s: matches none of oneOf: %s" % (where, errs))
    t = schema.get("type")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool,
             "integer": int, "number": (int, float)}
    if t:
        ok = isinstance(value, kinds[t]) and not (
            t in ("integer", "number") and isinstance(value, bool))
        assert ok, "%s: %r is not %s" % (where, value, t)
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %s" % (
            where, value, schema["enum"])
    if isinstance(value, dict):
        for k in schema.get("required", []):
            assert k in value, "%s: no %r in %s" % (where, k, list(value))
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                validate(spec, props[k], v, where + "." + k)
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(spec, schema["additionalProperties"], v, where + "." + k)
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            validate(spec, schema["items"], v, "%s[%d]" % (where, i))


def conforms(spec, method, tmpl, r, what):
    op = spec["paths"][tmpl][method.lower()]
    status = str(r.status)
    if status not in op["responses"]:
        e2e.die("%s %s (%s): status %s is not documented (%s): %s" % (
            method, tmpl, what, status, sorted(op["responses"]), r.body[:300]))
    resp = resolve(spec, op["responses"][status])
    ctype = r.headers.get("Content-Type", "").split(";")[0]
    content = resp.get("content", {})
    if ctype not in content:
        e2e.die("%s %s (%s): content type %s not documented for %s" % (
            method, tmpl, what, ctype, status))
    if ctype == "application/json":
        try:
            validate(spec, content[ctype]["schema"], json.loads(r.body),
                     "%s %s %s" % (method, tmpl, status))
        except AssertionError as e:
            e2e.die("%s (%s): %s" % (tmpl, what, e))
    check(True, "%s %s (%s): %s as documented" % (method, tmpl, what, status))


def main():
    with open(os.path.join(SRC, "docs", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    documented = {(m.upper(), p) for p, item in spec["paths"].items()
                  for m in item if m in METHODS}
    served = server_routes()
    check(len(served) >= 10, "the route table lists %d routes" % len(served))
    check(documented - served == set(), "every documented route is served: "
          "%s" % sorted(documented - served))
    check(served - documented == set(), "no route is undocumented: %s"
          % sorted(served - documented))

    url, redis, env = e2e.start_services()
    e2e.Worker("oa-w1", env)
    # 14 calls without a key in a row: the throttle of unknown keys
    # (tests/gateway/test_gw_metrics.py) would answer 429 from the 6th on
    gw = gs.Gateway(env, "  quota_rps: 0\n  unauthenticated_rps: 0\n")
    key = gw.key("acme")
    op = gw.key("ops", operator=True)

    r = call(gw, "POST", "/v1/vms", key, {"name": "oa"})
    conforms(spec, "POST", "/v1/vms", r, "wait")
    vid = r.json()["vm"]["id"]
    r = call(gw, "POST", "/v1/vms/%s/exec" % vid, key,
             {"command": "echo", "args": ["hi"]})
    conforms(spec, "POST", "/v1/vms/{id}/exec", r, "wait")
    task = r.json()["task_id"]
    r = call(gw, "POST", "/v1/vms/%s/exec" % vid, key,
             {"command": "echo", "args": ["hi"], "stream": "sse"})
    conforms(spec, "POST", "/v1/vms/{id}/exec", r, "sse")
    r = call(gw, "POST", "/v1/tasks", key, {"type": "vm:execute", "payload": {
        "vm_id": vid, "command": "true", "live_output": True}})
    conforms(spec, "POST", "/v1/tasks", r, "vm:execute")
    live = r.json()["task_id"]

    good = {
        ("GET", "/v1/health"): ("/v1/health", None, None),
        ("GET", "/v1/whoami"): ("/v1/whoami", key, None),
        ("GET", "/v1/vms"): ("/v1/vms?limit=5", key, None),
        ("POST", "/v1/vms"): ("/v1/vms", key, {"name": "x", "wait": False}),
        ("GET", "/v1/vms/{id}"): ("/v1/vms/" + vid, key, None),
        ("POST", "/v1/vms/{id}/exec"): ("/v1/vms/%s/exec" % vid, key,
                                        {"command": "true"}),
        ("GET", "/v1/tasks"): ("/v1/tasks?limit=5", key, None),
        ("POST", "/v1/tasks"): ("/v1/tasks", key, {"type": "vm:execute",
                                "payload": {"vm_id": vid, "command": "true"}}),
        ("GET", "/v1/tasks/{id}"): ("/v1/tasks/" + task, key, None),
        ("GET", "/v1/tasks/{id}/wait"): ("/v1/tasks/%s/wait" % task, key, None),
        ("GET", "/v1/tasks/{id}/output"): ("/v1/tasks/%s/output?format=ndjson"
                                           % live, key, None),
        ("POST", "/v1/tasks/{id}/cancel"): ("/v1/tasks/%s/cancel" % task, key,
                                            None),
        ("PUT", "/v1/vms/{id}/files"): ("/v1/vms/%s/files?path=/tmp/oa" % vid,
                                        key, None),
        ("GET", "/v1/vms/{id}/files"): ("/v1/vms/%s/files?path=/tmp/oa" % vid,
                                        key, None),
        ("GET", "/v1/workers"): ("/v1/workers", op, None),
        ("GET", "/v1/queues"): ("/v1/queues", op, None),
        ("GET", "/v1/stats/history"): ("/v1/stats/history?window_s=600", key,
                                       None),
        ("DELETE", "/v1/vms/{id}"): ("/v1/vms/" + vid, key, None),
    }
    check(set(good) == documented, "a call for every documented route")
    order = [k for k in good if k != ("DELETE", "/v1/vms/{id}")] + [
        ("DELETE", "/v1/vms/{id}")]
    nobody = str(uuid.uuid4())
    for method, tmpl in order:
        path, k, body = good[(method, tmpl)]
        conforms(spec, method, tmpl, call(gw, method, path, k, body), "success")
        if tmpl == "/v1/health":
            continue
        conforms(spec, method, tmpl, call(gw, method, path, None, body), "no key")
        if "{id}" in tmpl:
            p = tmpl.replace("{id}", nobody)
            conforms(spec, method, tmpl, call(gw, method, p, key, body),
                     "unknown id")
    r = call(gw, "PUT", "/v1/vms", key, {})
    check(r.status == 405 and "GET" in r.headers.get("Allow", ""),
          "an undocumented method on a known path: 405 with Allow")
    r = call(gw, "GET", "/v1/nothing", key)
    check(r.status == 404 and r.json()["error"]["code"] == "not_found",
          "an undocumented path: 404")
    gw.stop()
    print("openapi: all checks passed")


if __name__ == "__main__":
    main()
