"""Library-wide pieces: initialisation, version, log forwarding."""
from __future__ import annotations

import atexit
import logging
import threading
from typing import Any, Dict, Optional, Tuple

from ._ffi import ffi, lib
from .errors import check

_init_lock = threading.Lock()
_initialised = False


def _ensure_init() -> None:
    """aeth_init() once per process (before any other call), undone at exit."""
    global _initialised
    with _init_lock:
        if not _initialised:
            check(lib.aeth_init())
            _initialised = True
            atexit.register(_shutdown)


def _shutdown() -> None:
    global _initialised
    set_log_level(None)  # no callbacks into a dying interpreter
    with _init_lock:
        if _initialised:
            lib.aeth_shutdown()
            _initialised = False


def version() -> str:
    """The version of the loaded libaetherium.so, e.g. "0.1.0"."""
    return str(ffi.string(lib.aeth_version()).decode())


def version_info() -> Tuple[int, int, int]:
    """The version as a (major, minor, patch) tuple."""
    nums = ffi.new("int[3]")
    lib.aeth_version_numbers(nums, nums + 1, nums + 2)
    return (int(nums[0]), int(nums[1]), int(nums[2]))


# Log levels of the library -> the logging module's.
_LEVELS: Dict[str, Tuple[int, int]] = {
    "debug": (lib.AETH_LOG_DEBUG, logging.DEBUG),
    "info": (lib.AETH_LOG_INFO, logging.INFO),
    "warn": (lib.AETH_LOG_WARN, logging.WARNING),
    "error": (lib.AETH_LOG_ERROR, logging.ERROR),
}
_TO_PY = {c: p for c, p in _LEVELS.values()}
logger = logging.getLogger("aetherium")


def _log(level: int, message: Any, userdata: Any) -> None:
    # Called from any library thread; cffi takes the GIL for us. Never raise.
    try:
        logger.log(_TO_PY.get(level, logging.ERROR),
                   ffi.string(message).decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - a log callback must not fail
        pass


_log_cb = ffi.callback("void(aeth_log_level, const char *, void *)", _log)


def set_log_level(level: Optional[str] = "info") -> None:
    """Forward the library's messages at `level` ("debug", "info", "warn",
    "error") and above to the ``logging`` logger "aetherium"; None stops
    forwarding.  Call it before other threads use the library (the C
    setter is not synchronised with running library threads)."""
    if level is None:
        lib.aeth_log_set(ffi.NULL, lib.AETH_LOG_OFF, ffi.NULL)
        return
    if level not in _LEVELS:
        raise ValueError("log level must be one of %s" % ", ".join(_LEVELS))
    lib.aeth_log_set(_log_cb, _LEVELS[level][0], ffi.NULL)
