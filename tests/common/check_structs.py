#!/usr/bin/env python3
"""Every struct of the public API that crosses it by value or pointer
starts with `unsigned int version` (docs/api.md), and nothing the library
keeps to itself (a lease token) is a readable field of a public struct.

The declarations come from the headers through the Python binding's
generator (bindings/python/aetherium/_headers.py: the C preprocessor over
aetherium.h) and cffi's parser, so what is checked is what a compiler sees.

Usage: check_structs.py SOURCE_ROOT
"""
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(root / "bindings" / "python" / "aetherium"))
import cffi  # noqa: E402
import _headers  # noqa: E402

ffi = cffi.FFI()
text = _headers.generate(root / "include")
ns = {}
exec(compile(text, "_cdef.py", "exec"), ns)  # CDEF, constants
ffi.cdef(ns["CDEF"])

problems = []
structs = [n for n in ffi.list_types()[0]]  # typedef names
checked = 0
for name in sorted(structs):
    t = ffi.typeof(name)
    if t.kind != "struct" or not t.fields:
        continue  # enums, callbacks, opaque handles
    checked += 1
    first = t.fields[0]
    if first[0] != "version" or first[1].type.cname != "unsigned int":
        problems.append("%s starts with %s %s, not unsigned int version" %
                        (name, first[1].type.cname, first[0]))
    for fname, _ in t.fields:
        if fname in ("lease", "priv", "private"):
            problems.append("%s.%s: the library's own state is not a public "
                            "field" % (name, fname))
    vname = name.upper() + "_VERSION"
    if vname not in ns["INT_CONSTANTS"]:
        problems.append("%s has no %s" % (name, vname))

for p in problems:
    print("FAIL", p)
print("%d structs checked, %d problems" % (checked, len(problems)))
sys.exit(1 if problems or checked == 0 else 0)
