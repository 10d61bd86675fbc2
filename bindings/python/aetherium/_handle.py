"""The one place where C handles are released.

A Handle owns one C pointer and the function that releases it.  Release
happens exactly once: on close(), on leaving a with-block, when the object
is garbage collected, or at interpreter exit (weakref.finalize), whichever
comes first.  After that every use raises InvalidState instead of touching
freed memory.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, List, Optional

from ._ffi import ffi
from .errors import InvalidState


class Handle:
    """Base class of the Python objects that own a C handle."""

    _what = "handle"
    _ptr: Any
    _lock: threading.RLock
    _children: "weakref.WeakSet[Handle]"
    _finalizer: weakref.finalize

    def _own(self, ptr: Any, release: Callable[..., Any], *keepalive: Any) -> None:
        """Take ownership of `ptr`; `release(ptr, *keepalive)` frees it.
        `keepalive` objects (e.g. the parent manager) stay alive until then."""
        if ptr == ffi.NULL:
            raise InvalidState("%s: the library returned NULL" % self._what)
        self._ptr = ptr
        self._lock = threading.RLock()
        self._children = weakref.WeakSet()
        self._finalizer = weakref.finalize(self, release, ptr, *keepalive)

    def _adopt(self, child: Handle) -> None:
        """`child` uses this handle: close() closes it first, so a parent is
        never freed under a live child.  The child keeps the parent alive
        (pass the parent as keepalive to its _own())."""
        self._children.add(child)

    def _handle(self) -> Any:
        ptr = getattr(self, "_ptr", None)
        if ptr is None:
            raise InvalidState("this %s is closed" % self._what)
        return ptr

    @property
    def closed(self) -> bool:
        return getattr(self, "_ptr", None) is None

    def close(self) -> None:
        """Release the C object, after closing the objects that depend on
        it (idempotent, thread-safe)."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return  # construction failed before _own()
        with lock:
            if self._ptr is None:
                return
            for child in list(self._children):
                child.close()
            self._ptr = None
            self._finalizer()  # runs release exactly once

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def strarray(ptr: Any) -> List[str]:
    """Copy a NULL-terminated char ** into a list of str (not freed here)."""
    out: List[str] = []
    if ptr == ffi.NULL:
        return out
    i = 0
    while ptr[i] != ffi.NULL:
        out.append(str(ffi.string(ptr[i]).decode("utf-8", "replace")))
        i += 1
    return out


def cstr(ptr: Any) -> Optional[str]:
    """A borrowed const char * as str, or None for NULL."""
    return None if ptr == ffi.NULL else str(ffi.string(ptr).decode("utf-8", "replace"))


def ms(seconds: Optional[float], what: str = "timeout") -> int:
    """Seconds (int/float, None = library default) -> unsigned ms (0 = default)."""
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError("%s must be >= 0 seconds" % what)
    return max(1, int(round(seconds * 1000))) if seconds else 0
