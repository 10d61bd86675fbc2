"""Aetherium: run commands in throw-away microVMs, locally or through the
distributed queue.  A thin cffi (ABI mode) binding over libaetherium.so:
no logic of its own.  See docs/python.md.  The asyncio API is
``aetherium.aio`` (imported on its own).
"""
from typing import List

from ._cdef import VERSION as _PACKAGE_VERSION
from ._ffi import LIBRARY_PATH
from ._core import _ensure_init, set_log_level, version, version_info
from .errors import (AetheriumError, AlreadyExists, Busy, Cancelled,
                     InvalidArgument, InvalidState, IOFailure, NotFound,
                     OutOfMemory, ProtocolError, Timeout, TooBig, Unavailable)
from ._exec import STOP, CommandFailed, ExecResult, Process
from .vm import VM, VMM, FileInfo, default_vmm
from .client import (Client, CreatedVM, FileTaskInvalid, FileTaskNotFound,
                     FileTaskTooBig, Task, TaskFailed, TaskResult, render)
from .worker import Retry, Worker
from .store import migrate
from .gateway import (Forbidden, Gateway, OutputEvent, QuotaExceeded,
                      RateLimited, Unauthorized)

_ensure_init()

#: The package's version (importlib.metadata.version("aetherium")): the
#: version of the headers it was generated from, which is the library's
#: (version() says which library was loaded).
__version__ = _PACKAGE_VERSION

__all__: List[str] = [
    "LIBRARY_PATH", "version", "version_info", "set_log_level",
    # errors (aetherium/errors.py)
    "AetheriumError", "AlreadyExists", "Busy", "Cancelled", "InvalidArgument",
    "InvalidState", "IOFailure", "NotFound", "OutOfMemory", "ProtocolError",
    "Timeout", "TooBig", "Unavailable", "CommandFailed", "TaskFailed", "Retry",
    # local VMs
    "VMM", "VM", "default_vmm", "ExecResult", "Process", "STOP", "FileInfo",
    # distributed
    "Client", "CreatedVM", "Task", "TaskResult", "render", "Worker", "migrate",
    "FileTaskNotFound", "FileTaskTooBig", "FileTaskInvalid",
    # over HTTP (aetherium/gateway.py)
    "Gateway", "OutputEvent", "Unauthorized", "Forbidden", "QuotaExceeded",
    "RateLimited",
]
