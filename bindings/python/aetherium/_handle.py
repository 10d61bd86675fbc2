"""The one place where C handles are released.

A Handle owns one C pointer and the function that releases it.  Release
happens exactly once: on close(), on leaving a with-block, when the object
is garbage collected, or at interpreter exit (weakref.finalize), whichever
comes first.  After that every use raises InvalidState instead of touching
freed memory.
"""
import threading
import weakref

from ._ffi import ffi
from .errors import InvalidState


class Handle:
    """Base class of the Python objects that own a C handle."""

    _what = "handle"

    def _own(self, ptr, release, *keepalive):
        """Take ownership of `ptr`; `release(ptr, *keepalive)` frees it.
        `keepalive` objects (e.g. the parent manager) stay alive until then."""
        if ptr == ffi.NULL:
            raise InvalidState("%s: the library returned NULL" % self._what)
        self._ptr = ptr
        self._lock = threading.RLock()
        self._children = weakref.WeakSet()
        self._finalizer = weakref.finalize(self, release, ptr, *keepalive)

    def _adopt(self, child):
        """`child` uses this handle: close() closes it first, so a parent is
        never freed under a live child.  The child keeps the parent alive
        (pass the parent as keepalive to its _own())."""
        self._children.add(child)

    def _handle(self):
        ptr = getattr(self, "_ptr", None)
        if ptr is None:
            raise InvalidState("this %s is closed" % self._what)
        return ptr

    @property
    def closed(self):
        return getattr(self, "_ptr", None) is None

    def close(self):
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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def strarray(ptr):
    """Copy a NULL-terminated char ** into a list of str (not freed here)."""
    out = []
    if ptr == ffi.NULL:
        return out
    i = 0
    while ptr[i] != ffi.NULL:
        out.append(ffi.string(ptr[i]).decode("utf-8", "replace"))
        i += 1
    return out


def cstr(ptr):
    """A borrowed const char * as str, or None for NULL."""
    return None if ptr == ffi.NULL else ffi.string(ptr).decode("utf-8", "replace")


def ms(seconds, what="timeout"):
    """Seconds (int/float, None = library default) -> unsigned ms (0 = default)."""
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError("%s must be >= 0 seconds" % what)
    return max(1, int(round(seconds * 1000))) if seconds else 0
