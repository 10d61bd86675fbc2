#!/usr/bin/env python3
"""Make the linker's version script from lib/aetherium.sym: the stable
symbols in node AETHERIUM_0, the unstable ones in AETHERIUM_UNSTABLE,
everything else local (hidden).

Usage: gen_version_script.py aetherium.sym OUT.map
"""
import sys


def read(path):
    """{'stable': [(name, version)], 'unstable': [...]} from the list."""
    sections, cur = {"stable": [], "unstable": []}, None
    for n, raw in enumerate(open(path), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line in ("[stable]", "[unstable]"):
            cur = line[1:-1]
            continue
        parts = line.split()
        if cur is None or len(parts) != 2 or not parts[0].startswith("aeth_"):
            sys.exit("%s:%d: expected 'aeth_name VERSION' in a [stable] or "
                     "[unstable] section, got %r" % (path, n, raw.rstrip()))
        sections[cur].append((parts[0], parts[1]))
    return sections


def main():
    s = read(sys.argv[1])
    out = ["/* Generated from lib/aetherium.sym by lib/gen_version_script.py. */",
           "AETHERIUM_0 {", "\tglobal:"]
    out += ["\t\t%s;" % name for name, _ in s["stable"]]
    out += ["\tlocal:", "\t\t*;", "};", "", "AETHERIUM_UNSTABLE {", "\tglobal:"]
    out += ["\t\t%s;" % name for name, _ in s["unstable"]]
    out += ["} AETHERIUM_0;", ""]
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
