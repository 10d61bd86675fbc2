#!/usr/bin/env python3
"""Check that libaetherium.so exports exactly the functions the headers
declare with AETH_API, no more (leaked internals) and no less (a declared
function nobody defined).

Usage: check_symbols.py INCLUDE_DIR LIBRARY
"""
import pathlib
import re
import subprocess
import sys

inc = pathlib.Path(sys.argv[1]) / "aetherium"
lib = sys.argv[2]

declared = set()
decl = re.compile(r"AETH_API\b[^;{]*?\b(aeth_[A-Za-z0-9_]+)\s*\(", re.S)
for h in sorted(inc.rglob("*.h")):
    text = re.sub(r"/\*.*?\*/", "", h.read_text(), flags=re.S)
    for m in decl.finditer(text):
        declared.add(m.group(1))

out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True,
                     text=True, check=True).stdout
exported = set()
for line in out.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "TtDdBbRrVvWwi":
        name = parts[2].split("@")[0]
        if name.startswith("AETHERIUM_"):
            continue
        exported.add(name)

extra = sorted(exported - declared)
missing = sorted(declared - exported)
for name in extra:
    print("exported but not declared with AETH_API:", name)
for name in missing:
    print("declared with AETH_API but not exported:", name)
print("%d declared, %d exported" % (len(declared), len(exported)))
sys.exit(1 if extra or missing else 0)
