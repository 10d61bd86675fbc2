#!/usr/bin/env python3
"""Two rules of the public API (docs/api.md, docs/architecture.md):

1. Every struct that crosses it by value or pointer starts with
   `unsigned int version`, and nothing the library keeps to itself (a
   lease token) is a readable field of a public struct.
2. Output parameters come first: in every function, no output parameter
   (a writable T ** / T ***, a pointer to a writable scalar, a char array)
   follows an input.

The declarations come from the headers through the Python binding's
generator (bindings/python/aetherium/_headers.py: the C preprocessor over
aetherium.h) and cffi's parser, so what is checked is what a compiler sees.

Usage: check_structs.py SOURCE_ROOT
"""
import pathlib
import re
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

# -- 2. output parameters first -----------------------------------------
SCALARS = {"int", "unsigned int", "size_t", "int64_t", "uint64_t", "bool",
           "double", "aeth_exec_stream", "aeth_accel"}


def is_output(param):
    param = param.strip()
    if param in ("void", "..."):
        return False
    m = re.match(r"(.*?)(\w+)\s*(\[\w*\])?$", param)
    if not m:
        return False
    ty, array = m.group(1).strip(), m.group(3)
    if array:
        return not ty.startswith("const")
    stars = ty.count("*")
    if stars >= 2:
        # T ** or T *const *: writable unless the last level is const
        return not re.search(r"\*\s*const\s*\*\s*$", ty)
    if stars == 1:
        base = ty.replace("*", "").strip()
        return not base.startswith("const") and base in SCALARS
    return False


decls = " ".join(ns["CDEF"].split("\n"))
functions = 0
for m in re.finditer(r"\b(aeth_\w+)\s*\(([^()]*)\)\s*;", decls):
    name, params = m.group(1), [p for p in m.group(2).split(",")]
    if re.search(r"\(\s*\*", m.group(0)):
        continue  # a callback type, not a function
    functions += 1
    seen_input = None
    for p in params:
        if is_output(p):
            if seen_input:
                problems.append("%s: output parameter '%s' after input '%s'" %
                                (name, p.strip(), seen_input))
                break
        elif p.strip() not in ("void", ""):
            seen_input = p.strip()

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
print("%d structs, %d functions checked, %d problems" % (checked, functions,
                                                        len(problems)))
sys.exit(1 if problems or checked == 0 or functions == 0 else 0)
