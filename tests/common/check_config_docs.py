#!/usr/bin/env python3
"""One source of truth for the configuration (docs/config.md): every key of
the table in lib/config/keys.c is

1. a row of the key table in docs/config.md, once, whose default column
   starts with the key's real default (for a key with a default);
2. in config/example.yaml ("every key with its default"), with that value,
   or, for a key whose default is computed at run time (NULL in the
   table), as a commented line `# key: ...`.

No row of docs/config.md and no key of example.yaml names a key the
table lacks. The sections of named entries (images, network.profiles,
pool, queue.weights) are not keys of the table and are left out.

Usage: check_config_docs.py SOURCE_ROOT
"""
import pathlib
import re
import sys

import yaml

root = pathlib.Path(sys.argv[1])
problems = []

# -- the table in lib/config/keys.c ---------------------------------------
src = (root / "lib/config/keys.c").read_text()
table = src[src.index("aeth__cfg_keys[] = {"):]
table = table[:table.index("\n};")]
keys = {}
for m in re.finditer(r'\{"([a-z_.]+)",\s*AETH__CFG_(\w+),\s*(NULL|"((?:[^"\\]|\\.)*)")',
                     table):
    name, kind, default = m.group(1), m.group(2), m.group(4)
    keys[name] = (kind, None if m.group(3) == "NULL" else default)
if len(keys) < 50:
    sys.exit("check_config_docs: read only %d keys from lib/config/keys.c: "
             "has its layout changed?" % len(keys))

# -- docs/config.md's key table ---------------------------------------------
doc = (root / "docs/config.md").read_text()
rows = {}
for line in doc.splitlines():
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)]
    if len(cells) != 5 or not re.fullmatch(r"`[a-z_]+\.[a-z_.]+`", cells[1]):
        continue
    rows.setdefault(cells[1].strip("`"), []).append(cells[3])
for name, (kind, default) in keys.items():
    if name not in rows:
        problems.append("docs/config.md: no row for key '%s'" % name)
        continue
    if len(rows[name]) > 1:
        problems.append("docs/config.md: %d rows for key '%s'"
                        % (len(rows[name]), name))
    if default is None:
        continue
    shown = re.match(r"(?:empty|`([^`]*)`)", rows[name][0])
    want = "" if default == "" else default
    got = None if not shown else (shown.group(1) or "")
    if default == "" and kind == "LIST":
        ok = rows[name][0].startswith("empty")
    else:
        ok = got == want
    if not ok:
        problems.append("docs/config.md: key '%s' has the default %r in "
                        "lib/config/keys.c, the row says: %s"
                        % (name, default, rows[name][0][:60]))
for name in rows:
    if name not in keys and not name.startswith(("images.", "network.profiles.",
                                                  "pool.", "queue.weights")):
        problems.append("docs/config.md: a row for '%s', which "
                        "lib/config/keys.c does not have" % name)

# -- config/example.yaml ------------------------------------------------------
ex_text = (root / "config/example.yaml").read_text()
ex = yaml.safe_load(ex_text)


def flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict) and v and prefix + k not in ("queue.weights",):
            yield from flat(v, prefix + k + ".")
        else:
            yield prefix + k, v


values = dict(flat(ex))


def text(kind, v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return "" if v is None else str(v)


for name, (kind, default) in keys.items():
    if default is None:
        leaf = name.split(".")[-1]
        if not re.search(r"^\s*#\s*%s:" % re.escape(leaf), ex_text, re.M):
            problems.append("config/example.yaml: no '# %s: ...' line for "
                            "key '%s' (its default is computed at run time)"
                            % (leaf, name))
        continue
    if name not in values:
        problems.append("config/example.yaml: key '%s' is missing (default "
                        "%r)" % (name, default))
    elif text(kind, values[name]) != default:
        problems.append("config/example.yaml: key '%s' is %r, its default is "
                        "%r" % (name, text(kind, values[name]), default))
for name in values:
    if name not in keys and name.split(".")[0] not in ("images", "pool") \
            and not name.startswith(("network.profiles", "queue.weights")):
        problems.append("config/example.yaml: key '%s' is not in "
                        "lib/config/keys.c" % name)

for p in problems:
    print(p)
if problems:
    sys.exit(1)
print("check_config_docs: %d keys in lib/config/keys.c, docs/config.md and "
      "config/example.yaml agree" % len(keys))
