#!/usr/bin/env python3
"""The exported symbols of libaetherium.so, against the headers, the
committed symbol list and the ABI of the last release (docs/api.md,
"Symbols"):

1. The library exports exactly what the headers declare with AETH_API, no
   more (leaked internals) and no less (a declared function nobody
   defined).
2. lib/aetherium.sym lists each of them once with the release that added
   it, the stable ones (include/aetherium/*.h) in [stable], the others
   (include/aetherium/unstable/) in [unstable]: a stable symbol of the list
   that the library no longer exports has disappeared, and a new one must
   be added with the current version.
3. Stable symbols carry the version node AETHERIUM_0, unstable ones
   AETHERIUM_UNSTABLE.
4. abidiff (Debian's abigail-tools) finds no incompatible change against
   lib/abi/libaetherium.abi, the ABI of the last release, in anything but
   the unstable functions: no stable function removed, no parameter,
   return or struct layout changed. Fields appended to a versioned struct
   and new functions are compatible.

Usage: check_symbols.py INCLUDE_DIR LIBRARY SYMBOL_LIST ABI_BASELINE VERSION
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

inc = pathlib.Path(sys.argv[1]) / "aetherium"
lib, sym_path, baseline, version = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
problems = []

decl = re.compile(r"AETH_API\b[^;{]*?\b(aeth_[A-Za-z0-9_]+)\s*\(", re.S)


def declared(headers):
    out = set()
    for h in headers:
        text = re.sub(r"/\*.*?\*/", "", h.read_text(), flags=re.S)
        out.update(m.group(1) for m in decl.finditer(text))
    return out


stable = declared(sorted(inc.glob("*.h")))
unstable = declared(sorted((inc / "unstable").glob("*.h")))

# -- 1. exports and declarations ------------------------------------------
out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                     text=True, check=True).stdout
exported = {}
for line in out.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "TtDdBbRrVvWwi":
        name, _, node = parts[2].partition("@")
        if name.startswith("AETHERIUM_"):
            continue
        exported[name] = node.lstrip("@")
for name in sorted(set(exported) - stable - unstable):
    problems.append("exported but not declared with AETH_API: %s" % name)
for name in sorted((stable | unstable) - set(exported)):
    problems.append("declared with AETH_API but not exported: %s" % name)

# -- 2. the committed list --------------------------------------------------
listed, section = {}, None
for n, raw in enumerate(open(sym_path), 1):
    line = raw.split("#", 1)[0].strip()
    if not line:
        continue
    if line in ("[stable]", "[unstable]"):
        section = line[1:-1]
        continue
    name, _, added = line.partition(" ")
    if name in listed:
        problems.append("%s:%d: %s listed twice" % (sym_path, n, name))
    listed[name] = (section, added.strip())
for name in sorted(stable | unstable):
    want = "stable" if name in stable else "unstable"
    if name not in listed:
        problems.append("%s is new: add '%s %s' to the [%s] section of %s" %
                        (name, name, version, want, sym_path))
    elif listed[name][0] != want:
        problems.append("%s is %s (its header) but listed as %s" %
                        (name, want, listed[name][0]))
for name, (sect, added) in sorted(listed.items()):
    if name not in exported and sect == "stable":
        problems.append("stable symbol %s (added in %s) disappeared: a released "
                        "symbol is never removed (docs/api.md)" % (name, added))
    elif name not in exported:
        problems.append("unstable symbol %s is gone: take it off %s" %
                        (name, sym_path))

# -- 3. version nodes -------------------------------------------------------
for name, node in sorted(exported.items()):
    want = "AETHERIUM_UNSTABLE" if name in unstable else "AETHERIUM_0"
    if name in stable | unstable and node != want:
        problems.append("%s has version node %r, not %s" % (name, node, want))

# -- 4. abidiff against the last release ------------------------------------
abidiff = shutil.which("abidiff")
if not abidiff:
    problems.append("abidiff not found: install Debian's abigail-tools "
                    "(scripts/setup.sh does)")
else:
    with tempfile.NamedTemporaryFile("w", suffix=".supp") as supp:
        if unstable:
            supp.write("[suppress_function]\n  symbol_name_regexp = ^(%s)$\n" %
                       "|".join(sorted(unstable)))
        supp.flush()
        r = subprocess.run([abidiff, "--headers-dir2", str(inc),
                            "--drop-private-types", "--suppressions", supp.name,
                            baseline, lib], capture_output=True, text=True)
    report = (r.stdout + r.stderr).strip()
    # exit status bits: 1 error, 2 usage, 4 ABI change, 8 incompatible
    if r.returncode & 3:
        problems.append("abidiff failed (%d): %s" % (r.returncode, report))
    elif r.returncode & 8:
        problems.append("incompatible ABI change against %s (the last "
                        "release):\n%s" % (baseline, report))
    print("abidiff against %s: exit %d%s" % (
        baseline, r.returncode, "\n" + report if r.returncode else ""))

for p in problems:
    print("FAIL", p)
print("%d stable, %d unstable declared; %d exported; %d listed; %d problems" %
      (len(stable), len(unstable), len(exported), len(listed), len(problems)))
sys.exit(1 if problems else 0)
