"""The binding's C declarations must match include/aetherium/ exactly."""
import difflib
import os
import pathlib

import pytest

from aetherium import _cdef, _headers
from aetherium._ffi import ffi, lib


def _include_dir():
    root = os.environ.get("AETH_SOURCE_ROOT")
    inc = pathlib.Path(root) / "include" if root else _headers.default_include_dir()
    if inc is None or not (inc / "aetherium" / "aetherium.h").is_file():
        pytest.fail("no include/aetherium/ found: set AETH_SOURCE_ROOT to the repo")
    return inc


def test_generated_cdef_matches_headers():
    fresh = _headers.generate(_include_dir())
    current = pathlib.Path(_cdef.__file__).read_text()
    if fresh != current:
        diff = "".join(difflib.unified_diff(
            current.splitlines(True), fresh.splitlines(True),
            "_cdef.py (committed)", "_cdef.py (from headers)"))
        pytest.fail("bindings/python/aetherium/_cdef.py is stale; run "
                    "/usr/bin/python3 bindings/python/aetherium/_headers.py\n" + diff)


def _functions():
    import re
    return sorted(set(re.findall(r"\b(aeth_\w+)\s*\(", _cdef.CDEF)))


def test_every_declared_function_is_exported():
    missing = []
    for name in _functions():
        try:
            getattr(lib, name)
        except (AttributeError, NotImplementedError):
            missing.append(name)
    assert not missing, "declared in the headers but not in the .so: %s" % missing


def test_header_defines_are_extracted():
    assert _cdef.STR_CONSTANTS["AETH_VERSION_STRING"] == \
        ffi.string(lib.aeth_version()).decode()
    assert _cdef.INITIALIZERS, "no *_INIT initialisers extracted"
    for name, entries in _cdef.INITIALIZERS.items():
        # options structs start with `unsigned int version`
        assert entries[0][0] in (0, "version") and isinstance(entries[0][1], int), name
        vname = name[:-len("_INIT")] + "_VERSION"
        if vname in _cdef.INT_CONSTANTS:
            assert entries[0][1] == _cdef.INT_CONSTANTS[vname], name


def test_drift_is_detected(tmp_path):
    """A changed enum value in a header copy makes generate() differ."""
    inc = _include_dir()
    (tmp_path / "aetherium").mkdir()
    for h in (inc / "aetherium").glob("*.h"):
        text = h.read_text()
        if h.name == "error.h":
            text = text.replace("AETH_ETIMEOUT = -3", "AETH_ETIMEOUT = -33")
        (tmp_path / "aetherium" / h.name).write_text(text)
    assert "AETH_ETIMEOUT = -33" in _headers.generate(tmp_path)
    assert _headers.generate(tmp_path) != _headers.generate(inc)
