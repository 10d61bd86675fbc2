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
    assert not hasattr(_cdef, "INITIALIZERS"), "the binding parses no *_INIT macro"


def test_every_options_struct_has_an_init_function():
    """Each versioned struct the binding may allocate has <name>_init and
    <NAME>_VERSION, and _init fills the version field."""
    import re
    structs = re.findall(r"\}\s*(aeth_\w+_options|aeth_store_filter)\s*;", _cdef.CDEF)
    assert "aeth_submit_options" in structs and "aeth_store_filter" in structs
    for name in structs:
        version = _cdef.INT_CONSTANTS[name.upper() + "_VERSION"]
        obj = ffi.new(name + " *")
        assert getattr(lib, name + "_init")(obj, version) == 0, name
        assert obj.version == version, name


def test_drift_is_detected(tmp_path):
    """A changed enum value in a header copy makes generate() differ."""
    inc = _include_dir()
    (tmp_path / "aetherium").mkdir()
    (tmp_path / "aetherium" / "unstable").mkdir()
    for h in (inc / "aetherium").rglob("*.h"):
        text = h.read_text()
        if h.name == "error.h":
            text = text.replace("AETH_ETIMEOUT = -3", "AETH_ETIMEOUT = -33")
        (tmp_path / h.relative_to(inc)).write_text(text)
    assert "AETH_ETIMEOUT = -33" in _headers.generate(tmp_path)
    assert _headers.generate(tmp_path) != _headers.generate(inc)
