"""Exceptions: the one place where AETH_E* codes become Python classes.

Every failing library call raises a subclass of AetheriumError carrying
the return code (``.code``), the static text of the code (``.reason``,
from aeth_strerror()) and the message of aeth_error_last() (``.message``,
also ``str(exc)``), read on the same thread right after the call.
"""
from __future__ import annotations

from typing import Dict, Optional, Type

from ._ffi import ffi, lib


class AetheriumError(Exception):
    """Base class of every error the library reports."""

    code: Optional[int] = None  # the AETH_E* value, set on each subclass and instance

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        """Static text for the code ("not found", "timed out", ...)."""
        if self.code is None:
            return "error"
        return str(ffi.string(lib.aeth_strerror(self.code)).decode())

    def __str__(self) -> str:
        return self.message


class NotFound(AetheriumError, LookupError):
    """AETH_ENOTFOUND: the named object (VM, task, file...) does not exist."""


class Timeout(AetheriumError, TimeoutError):
    """AETH_ETIMEOUT: a deadline passed."""


class Busy(AetheriumError):
    """AETH_EBUSY: in use or locked; try again later."""


class InvalidArgument(AetheriumError, ValueError):
    """AETH_EINVALID: bad argument, payload or file."""


class Unavailable(AetheriumError, ConnectionError):
    """AETH_EUNAVAILABLE: a server or device could not be reached."""


class OutOfMemory(AetheriumError, MemoryError):
    """AETH_ENOMEM."""


class ProtocolError(AetheriumError):
    """AETH_EPROTO: the peer broke the wire protocol."""


class AlreadyExists(AetheriumError):
    """AETH_EEXISTS: the object already exists."""


class Cancelled(AetheriumError):
    """AETH_ECANCELLED: stopped by the caller or a shutdown."""


class TooBig(AetheriumError):
    """AETH_ETOOBIG: a size limit was exceeded."""


class IOFailure(AetheriumError, OSError):
    """AETH_EIO: an operating-system call failed."""


class InvalidState(AetheriumError):
    """AETH_ESTATE: not allowed in the object's current state."""


# Code name (as in include/aetherium/error.h) -> class.  The values come
# from the library's enum, never from a copy; tests/test_errors.py checks
# that every AETH_E* code of the header has an entry here.
_BY_NAME: Dict[str, Type[AetheriumError]] = {
    "AETH_ERROR": AetheriumError,
    "AETH_ENOTFOUND": NotFound,
    "AETH_ETIMEOUT": Timeout,
    "AETH_EBUSY": Busy,
    "AETH_EINVALID": InvalidArgument,
    "AETH_EUNAVAILABLE": Unavailable,
    "AETH_ENOMEM": OutOfMemory,
    "AETH_EPROTO": ProtocolError,
    "AETH_EEXISTS": AlreadyExists,
    "AETH_ECANCELLED": Cancelled,
    "AETH_ETOOBIG": TooBig,
    "AETH_EIO": IOFailure,
    "AETH_ESTATE": InvalidState,
}

CODES: Dict[str, int] = dict(ffi.typeof("aeth_error_code").relements)  # name -> value
_BY_CODE: Dict[int, Type[AetheriumError]] = {}
for _name, _cls in _BY_NAME.items():
    if _name in CODES:  # a code removed from the header is caught by the test
        _BY_CODE[CODES[_name]] = _cls
        if _cls is not AetheriumError:
            _cls.code = CODES[_name]


def error_class(code: int) -> Type[AetheriumError]:
    """The exception class for a return code (AetheriumError if unknown)."""
    return _BY_CODE.get(code, AetheriumError)


def last_error(code: Optional[int] = None) -> AetheriumError:
    """An exception for the calling thread's last library failure."""
    if code is None:
        code = lib.aeth_error_last_code()
    msg = str(ffi.string(lib.aeth_error_last()).decode("utf-8", "replace"))
    if msg == "no error":
        msg = str(ffi.string(lib.aeth_strerror(code)).decode())
    return error_class(code)(msg, code)


def check(rc: int) -> int:
    """Raise the mapped exception when a call returned a negative code;
    return rc otherwise.  Call it right after the C call, on the same
    thread (the message is thread-local)."""
    if rc < 0:
        raise last_error(rc)
    return int(rc)
