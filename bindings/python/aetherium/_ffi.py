"""The cffi handle on libaetherium.so (ABI mode: no compiler needed).

The C declarations come from _cdef.py, which _headers.py generates from
include/aetherium/*.h (never edited by hand).  The library is found, in
order, at:

1. ``$AETH_LIBRARY`` (a path to libaetherium.so.0),
2. the build tree next to this package (``<repo>/build/lib/libaetherium.so.0``,
   when the package is imported from ``<repo>/bindings/python``),
3. the libdir the package was installed with (``_install.py``, written by
   ``meson install``),
4. the system's ``libaetherium.so.0`` (ld.so's search path).
"""
from __future__ import annotations

import importlib
import os
import pathlib
from typing import Any, List, Tuple, Union

import cffi

from . import _cdef

ffi: Any = cffi.FFI()
ffi.cdef(_cdef.CDEF)

SONAME = "libaetherium.so.0"
_HERE = pathlib.Path(__file__).resolve().parent


def _candidates() -> List[Tuple[str, str]]:
    env = os.environ.get("AETH_LIBRARY")
    if env:
        # An explicit choice is final: do not silently fall back to another copy.
        return [("AETH_LIBRARY", env)]
    out = []
    repo = _HERE.parents[2]
    if (repo / "meson.build").is_file():
        out.append(("build tree", str(repo / "build" / "lib" / SONAME)))
    try:
        # written by meson install (absent in a checkout or a pip install)
        libdir = importlib.import_module(__package__ + "._install").LIBDIR
        out.append(("install libdir", os.path.join(str(libdir), SONAME)))
    except ImportError:
        pass
    out.append(("system", SONAME))
    return out


def _load() -> Tuple[Any, str]:
    tried = []
    for where, path in _candidates():
        if where != "system" and not os.path.exists(path):
            tried.append("%s %s (missing)" % (where, path))
            continue
        try:
            return ffi.dlopen(path), path
        except OSError as e:
            tried.append("%s %s (%s)" % (where, path, e))
    raise ImportError(
        "aetherium: cannot load libaetherium.so; tried: %s. Build it "
        "(meson setup build && meson compile -C build) and set "
        "AETH_LIBRARY=/path/to/libaetherium.so.0, or install it."
        % "; ".join(tried))


lib: Any
LIBRARY_PATH: str
lib, LIBRARY_PATH = _load()


def constant(name: str) -> Union[int, str]:
    """A #define constant of the headers (int or str), by name."""
    if name in _cdef.INT_CONSTANTS:
        return _cdef.INT_CONSTANTS[name]
    return _cdef.STR_CONSTANTS[name]


def new_options(ctype: str) -> Tuple[Any, List[Any]]:
    """A ``ctype *`` (e.g. "aeth_vm_options") initialised by the library's
    ``<ctype>_init(opts, <CTYPE>_VERSION)``: the version field and the C
    defaults, from the library itself rather than from its headers'
    ``*_INIT`` macros.  The version is the one of the headers the binding's
    declarations were generated from (_cdef.py), which is also the struct
    size cffi allocates.  Returns (cdata, keepalive list) - strings set
    later must be kept alive by the caller as long as the struct is used."""
    from .errors import check
    obj = ffi.new(ctype + " *")
    check(getattr(lib, ctype + "_init")(obj, constant(ctype.upper() + "_VERSION")))
    return obj, []
