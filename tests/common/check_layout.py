#!/usr/bin/env python3
"""Check the module boundaries docs/architecture.md promises, in the
library's sources (lib/), the CLIs (cli/) and the guest agent (agent/):

1. A file of module A includes a header of module B (lib/B/...) only when
   B's header is shared: named after B (B.h or B_<topic>.h). Every other
   header of lib/B/ is private to B.
2. The modules' include graph has no cycle.
3. lib/common, the base, includes no other module.
4. PostgreSQL is reached only from lib/store (libpq, SQL statements) and
   Redis only from lib/queue (hiredis).
5. Public headers (include/aetherium/) include only public headers.

Usage: check_layout.py SOURCE_ROOT
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
lib = root / "lib"
modules = sorted(p.name for p in lib.iterdir() if p.is_dir())
problems = []

INCLUDE = re.compile(r'^\s*#\s*include\s+([<"])([^">]+)[">]', re.M)
SQL = re.compile(r'"\s*(SELECT\s+\S+\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|'
                 r'DELETE\s+FROM|CREATE\s+(TABLE|INDEX|FUNCTION))\b', re.I)
PQ_CALL = re.compile(r'\bPQ[a-z]\w*\s*\(')
REDIS_CALL = re.compile(r'\bredis[A-Z]\w*\s*\(')


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


def sources(*dirs):
    for d in dirs:
        for p in sorted((root / d).rglob("*")):
            if p.suffix in (".c", ".h"):
                yield p


def module_of(path):
    rel = path.relative_to(root).parts
    # the guest agent (agent/) is not lib/agent, the host side of it
    return rel[1] if rel[0] == "lib" else rel[0] + "/"


def shared(module, header):
    name = pathlib.PurePath(header).name
    return name == module + ".h" or name.startswith(module + "_")


graph = {}
for path in sources("lib", "cli", "agent"):
    text = path.read_text()
    code = strip_comments(text)
    me = module_of(path)
    rel = path.relative_to(root)
    for kind, inc in INCLUDE.findall(code):
        if kind == '"' and "/" in inc:
            other = inc.split("/")[0]
            if other in modules and other != me:
                graph.setdefault(me, set()).add(other)
                if not shared(other, inc):
                    problems.append("%s includes %s, private to lib/%s (shared "
                                    "headers of a module are named %s.h or "
                                    "%s_*.h)" % (rel, inc, other, other, other))
        if kind == "<" and inc == "libpq-fe.h" and me != "store":
            problems.append("%s includes <libpq-fe.h>: PostgreSQL belongs to "
                            "lib/store" % rel)
        if kind == "<" and inc.startswith("hiredis/") and me != "queue":
            problems.append("%s includes <%s>: Redis belongs to lib/queue" %
                            (rel, inc))
    if me != "store":
        if PQ_CALL.search(code):
            problems.append("%s calls libpq (%s): PostgreSQL belongs to "
                            "lib/store" % (rel, PQ_CALL.search(code).group(0)))
        m = SQL.search(code)
        if m:
            problems.append("%s holds SQL (%s...): SQL belongs to lib/store" %
                            (rel, m.group(0)[:40]))
    if me != "queue" and REDIS_CALL.search(code):
        problems.append("%s calls hiredis (%s): Redis belongs to lib/queue" %
                        (rel, REDIS_CALL.search(code).group(0)))

if graph.get("common"):
    problems.append("lib/common includes %s: it is the base every module "
                    "builds on" % ", ".join(sorted(graph["common"])))

# Cycles, by depth-first search over the module graph.
state = {}


def visit(m, stack):
    state[m] = 1
    for n in sorted(graph.get(m, ())):
        if state.get(n) == 1:
            cyc = stack[stack.index(n):] + [n]
            problems.append("modules include each other: %s" % " -> ".join(cyc))
        elif not state.get(n):
            visit(n, stack + [n])
    state[m] = 2


for m in sorted(graph):
    if not state.get(m):
        visit(m, [m])

pub = root / "include" / "aetherium"
for path in sorted(pub.rglob("*.h")):
    for kind, inc in INCLUDE.findall(strip_comments(path.read_text())):
        if kind == '"':
            target = (path.parent / inc).resolve()
            if pub.resolve() not in target.parents:
                problems.append("%s includes %s, which is not a public header" %
                                (path.relative_to(root), inc))

for p in problems:
    print("FAIL", p)
print("%d modules (%s); %d problems" % (len(modules), ", ".join(modules),
                                          len(problems)))
for m in sorted(graph):
    print("  %s -> %s" % (m, ", ".join(sorted(graph[m]))))
sys.exit(1 if problems else 0)
