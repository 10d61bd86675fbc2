#!/usr/bin/python3
"""Escape suite: a hostile submitter forges log lines with a VM name.

Before, a name with a newline and ANSI escapes was printed as is in the
worker's log ("Creating VM: x\\n✓ VM created: ...") and in listings, so a
submitter could forge lines an operator trusts.

Here, with a real worker and Redis/PostgreSQL (no VM boots):
- names and commands with newlines, escape sequences, C1 controls,
  bidirectional overrides or bytes that are not UTF-8 are refused at
  submit, recorded as failed with the reason;
- put in the queue directly (bypassing the client), the worker refuses
  them too, and its log shows none of the forged text as a line of its
  own: what it prints is escaped.
"""
import json

from escape import Worker, check, enqueue, start, submit

FORGED = "✓ VM created: 00000000-0000-0000-0000-000000000000"
BAD = {
    "newline": "x\n" + FORGED,
    "escape sequence": "x\x1b[2K\x1b[1A" + FORGED,
    "carriage return": "x\r" + FORGED,
    "C1 control": "x\u0085" + FORGED,
    "bidi override": "x\u202e" + FORGED,
}


def main():
    url, redis, env = start()
    w = Worker("esc-names", env)
    for what, name in BAD.items():
        r = submit(env, "-type", "vm:create", "-payload",
                   json.dumps({"name": name}), expect=1)
        check('"name" has control characters' in r.stderr,
              "a name with a %s: refused at submit" % what)
    r = submit(env, "-type", "vm:create", "-name", "ok\x07bell", expect=1)
    check('"name" has control characters' in r.stderr, "aeth-submit -name too")
    r = submit(env, "-type", "vm:execute", "-payload",
               json.dumps({"vm_id": "0b6f3f0e-4a43-4c1e-9d55-3c2f1e0a9b7d",
                           "command": "ls\n" + FORGED}), expect=1)
    check('"command" has control characters' in r.stderr,
          "a command with a newline: refused at submit")
    r = submit(env, "-type", "vm:create", "-payload", '{"name": "a\\udc80b"}',
               expect=1)
    check("not UTF-8" in r.stderr or "control characters" in r.stderr or
          "not valid JSON" in r.stderr, "a name that is not UTF-8: refused")

    for what, name in BAD.items():
        tid = enqueue(env, "default", "vm:create", json.dumps({"name": name}))
        w.wait_for(tid + ".*(failed|control characters)")
    log = w.text()
    check(not any(line.startswith(FORGED) or line.startswith("\x1b") or
                  "\x1b" in line or "\u202e" in line for line in log.splitlines()),
          "the worker's log has no forged line and no raw control character")
    check("x\\n" in log or "control characters" in log,
          "what it printed of them is escaped or refused by name")
    print("name checks passed")


if __name__ == "__main__":
    main()
