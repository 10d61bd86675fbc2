#!/usr/bin/env python3
"""Compile every public header on its own, as strict C11 and as C++; an
unstable one (aetherium/unstable/) only with AETH_UNSTABLE defined.

Usage: check_headers.py INCLUDE_DIR CC
A header that needs another to be included first, uses a GNU extension or
is not valid C++ fails here before it fails a user.
"""
import pathlib
import shutil
import subprocess
import sys
import tempfile

inc = pathlib.Path(sys.argv[1])
cc = sys.argv[2]
cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
headers = sorted((inc / "aetherium").rglob("*.h"))
if not headers:
    sys.exit("no headers found under %s" % inc)
failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for h in headers:
        src = pathlib.Path(tmp) / "t.c"
        name = h.relative_to(inc / "aetherium").as_posix()
        # the unstable headers refuse to compile unless asked for
        src.write_text('#define AETH_UNSTABLE\n' if "unstable/" in name else '')
        with src.open("a") as f:
            f.write('#include <aetherium/%s>\n#include <aetherium/%s>\n'
                    'int main(void) { return 0; }\n' % (name, name))
        runs = [[cc, "-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror",
                 "-fsyntax-only", "-I", str(inc), str(src)]]
        if cxx:
            runs.append([cxx, "-std=c++11", "-pedantic", "-Wall", "-Wextra",
                         "-Werror", "-fsyntax-only", "-x", "c++", "-I", str(inc),
                         str(src)])
        for cmd in runs:
            r = subprocess.run(cmd, capture_output=True, text=True)
            lang = "C++" if "c++" in cmd else "C11"
            if r.returncode != 0:
                failed += 1
                print("FAIL %s as %s:\n%s" % (h.name, lang, r.stderr))
            else:
                print("ok   %s as %s" % (h.name, lang))
        if "unstable/" in name:
            src.write_text('#include <aetherium/%s>\nint main(void) { return 0; }\n'
                           % name)
            r = subprocess.run([cc, "-std=c11", "-fsyntax-only", "-I", str(inc),
                                str(src)], capture_output=True, text=True)
            if r.returncode == 0 or "AETH_UNSTABLE" not in r.stderr:
                failed += 1
                print("FAIL %s compiles without AETH_UNSTABLE" % name)
            else:
                print("ok   %s refuses to compile without AETH_UNSTABLE" % name)
if not cxx:
    print("WARNING: no C++ compiler found; headers were checked as C only")
print("%d headers, %d failures" % (len(headers), failed))
sys.exit(1 if failed else 0)
