"""Turn the public C headers into what cffi needs.

The binding never keeps a hand-written copy of the C declarations: this
module runs the C preprocessor over ``include/aetherium/aetherium.h`` (the
umbrella header), keeps only the lines that come from the project's own
headers (system headers are left out by following cpp's line markers),
strips what ``ffi.cdef`` cannot take, and extracts the ``#define``
constants (integers and strings) with a small parser, because the
preprocessor's output no longer has them.  Options structs are initialised
by the library's ``aeth_*_init()`` functions, never from the headers'
``*_INIT`` macros (_ffi.new_options).

The result is written to ``_cdef.py`` next to this file, which the package
imports.  Regenerate it after a header changes::

    /usr/bin/python3 bindings/python/aetherium/_headers.py

and ``tests/test_headers.py`` fails whenever ``_cdef.py`` and the headers
differ, so a stale copy (pygit2's enum problem) cannot go unnoticed.
"""
from __future__ import annotations

import ast
import os
import pathlib
import pprint
import re
import shutil
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

HERE = pathlib.Path(__file__).resolve().parent
GENERATED = HERE / "_cdef.py"

# System types that pycparser/cffi do not know by themselves.  Added to the
# cdef only when a header uses them.
_EXTRA_TYPES = {
    "pid_t": "typedef int pid_t;",
    "uid_t": "typedef unsigned int uid_t;",
    "gid_t": "typedef unsigned int gid_t;",
    "mode_t": "typedef unsigned int mode_t;",
    "off_t": "typedef long off_t;",
    "time_t": "typedef long time_t;",
}

# Macros that are plumbing, not constants.
_SKIP_DEFINES = {"AETH_API", "AETH_BEGIN_DECLS", "AETH_END_DECLS"}


def default_include_dir() -> Optional[pathlib.Path]:
    """<repo>/include when run from the source tree, else None."""
    cand = HERE.parents[2] / "include"
    return cand if (cand / "aetherium" / "aetherium.h").is_file() else None


def _preprocess(include_dir: pathlib.Path,
                cpp: Optional[str] = None) -> Tuple[str, List[str]]:
    """The umbrella header and the unstable ones (include/aetherium/unstable/:
    the binding ships with the library it loads, so it may use the API that
    has no ABI promise, e.g. aeth_client_render() for render())."""
    cc = cpp or os.environ.get("CC") or shutil.which("cc") or "gcc"
    umbrella = include_dir / "aetherium" / "aetherium.h"
    unstable = sorted((include_dir / "aetherium" / "unstable").glob("*.h"))
    src = "".join('#include "%s"\n' % h for h in [umbrella] + unstable)
    # -dD keeps the #define lines in place, so that constants come from
    # exactly the headers included.
    cmd = [cc, "-E", "-dD", "-std=c11", "-DAETH_UNSTABLE", "-I", str(include_dir),
           "-x", "c", "-"]
    r = subprocess.run(cmd, input=src, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("preprocessing %s failed:\n%s" % (umbrella, r.stderr))
    own = (str((include_dir / "aetherium").resolve()),
           str((include_dir / "aetherium" / "unstable").resolve()))
    keep: List[str] = []
    defines: List[str] = []
    current: Optional[str] = None
    for line in r.stdout.splitlines():
        m = re.match(r'#\s*(\d+)?\s*"([^"]*)"', line) if line.startswith("#") else None
        if m:
            current = os.path.realpath(m.group(2)) if m.group(2) else None
            continue
        mine = current and os.path.dirname(current) in own
        if line.startswith("#"):
            if mine and re.match(r"#\s*define\s", line):
                defines.append(line)
            continue  # pragmas, #undef etc.
        if mine:
            keep.append(line)
    return "\n".join(keep), defines


def _strip_unsupported(text: str) -> str:
    """Remove what cffi's parser cannot take."""
    text = re.sub(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)", "", text)
    text = re.sub(r"\b(__extension__|__restrict|restrict|__inline__|__inline)\b",
                  "", text)
    text = re.sub(r"_Static_assert\s*\([^;]*\)\s*;", "", text)
    # static inline functions: drop the definition, keep nothing (cffi in
    # ABI mode cannot call them anyway).
    out: List[str] = []
    i = 0
    pat = re.compile(r"\bstatic\s+inline\b|\bstatic\b[^;{]*\(")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i:m.start()])
        brace = text.find("{", m.end())
        semi = text.find(";", m.end())
        if brace == -1 or (semi != -1 and semi < brace):
            out.append(text[m.start():semi + 1])
            i = semi + 1
            continue
        depth = 0
        j = brace
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    text = "".join(out)
    # Tidy: one declaration per line is easier to diff.
    lines = [ln.rstrip() for ln in text.splitlines()]
    tidy: List[str] = []
    for ln in lines:
        if not ln.strip():
            if tidy and tidy[-1] == "":
                continue
            tidy.append("")
        else:
            tidy.append(ln)
    text = "\n".join(tidy).strip() + "\n"
    extra = [decl for name, decl in sorted(_EXTRA_TYPES.items())
             if re.search(r"\b%s\b" % name, text)]
    if extra:
        text = "\n".join(extra) + "\n" + text
    return text


_INT_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b")


def _eval_int(expr: str, known: Dict[str, int]) -> Optional[int]:
    """Evaluate a C integer constant expression over known names, or None."""
    expr = _INT_SUFFIX.sub(r"\1", expr.strip())
    expr = re.sub(r"\(\s*(?:unsigned\s+)?(?:int|long|long long|unsigned|"
                  r"u?int\d+_t|size_t)\s*\)", "", expr)  # casts
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return None

    def ev(n: ast.AST) -> int:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return int(n.value)
        if isinstance(n, ast.Name) and n.id in known and isinstance(known[n.id], int):
            return known[n.id]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd, ast.Invert)):
            v = ev(n.operand)
            return {ast.USub: -v, ast.UAdd: v, ast.Invert: ~v}[type(n.op)]
        if isinstance(n, ast.BinOp):
            a, b = ev(n.left), ev(n.right)
            ops: Dict[type, Callable[[], int]] = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b,
                   ast.Mult: lambda: a * b, ast.LShift: lambda: a << b,
                   ast.RShift: lambda: a >> b, ast.BitOr: lambda: a | b,
                   ast.BitAnd: lambda: a & b, ast.BitXor: lambda: a ^ b,
                   ast.FloorDiv: lambda: a // b}
            if type(n.op) in ops:
                return ops[type(n.op)]()
        raise ValueError(ast.dump(n))

    try:
        return ev(tree)
    except (ValueError, KeyError, TypeError, ZeroDivisionError):
        return None


def extract_defines(define_lines: Sequence[str]) -> Tuple[Dict[str, int], Dict[str, str]]:
    """(ints, strings) from the headers' #define lines (as cpp -dD prints
    them); other macros (the *_INIT initialisers, calls) are left out."""
    raw: List[Tuple[str, str]] = []
    for line in define_lines:
        m = re.match(r"\s*#\s*define\s+(AETH_\w+)(\(?)\s*(.*)$", line)
        if not m or m.group(2) or m.group(1) in _SKIP_DEFINES:
            continue  # not ours, or a function-like macro
        name, value = m.group(1), m.group(3).strip()
        if not value or name.endswith("_H"):
            continue  # include guards
        raw.append((name, value))
    ints: Dict[str, int] = {}
    strs: Dict[str, str] = {}
    pending = list(raw)
    # Constants may use each other in any order: iterate to a fixed point.
    for _ in range(len(pending) + 1):
        left: List[Tuple[str, str]] = []
        for name, value in pending:
            if re.fullmatch(r'"(?:[^"\\]|\\.)*"', value):
                strs[name] = ast.literal_eval(value)
                continue
            v = _eval_int(value, ints)
            if v is not None:
                ints[name] = v
            else:
                left.append((name, value))
        if len(left) == len(pending):
            break
        pending = left
    return ints, strs


def generate(include_dir: Union[str, os.PathLike[str], None] = None,
             cpp: Optional[str] = None) -> str:
    """The text of _cdef.py for the headers under include_dir."""
    where = include_dir or default_include_dir()
    if where is None:
        raise RuntimeError("no include/aetherium/ next to the package: pass include_dir")
    inc = pathlib.Path(where)
    decls, define_lines = _preprocess(inc, cpp)
    cdef = _strip_unsupported(decls)
    # Declarations only: blank lines and indentation (which follow the
    # headers' comments and layout) must not make the copy look stale.
    cdef = "".join(line.strip() + "\n" for line in cdef.splitlines() if line.strip())
    ints, strs = extract_defines(define_lines)
    return ('"""GENERATED by aetherium/_headers.py from include/aetherium/*.h.\n'
            'Do not edit: run /usr/bin/python3 bindings/python/aetherium/_headers.py\n'
            '"""\n\n'
            "CDEF = r'''\n%s'''\n\n"
            "INT_CONSTANTS = %s\n\n"
            "STR_CONSTANTS = %s\n\n"
            "# The package's version (pyproject.toml reads it): the library's.\n"
            "VERSION = %r\n" % (
                cdef, pprint.pformat(ints, width=78),
                pprint.pformat(strs, width=78), strs["AETH_VERSION_STRING"]))


def main(argv: List[str]) -> None:
    inc = pathlib.Path(argv[1]) if len(argv) > 1 else default_include_dir()
    if inc is None:
        sys.exit("usage: _headers.py [INCLUDE_DIR] (no include/ found next to the package)")
    text = generate(inc)
    if GENERATED.is_file() and GENERATED.read_text() == text:
        print("%s is up to date" % GENERATED)
        return
    GENERATED.write_text(text)
    print("wrote %s" % GENERATED)


if __name__ == "__main__":
    main(sys.argv)
