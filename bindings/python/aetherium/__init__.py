"""Aetherium: run commands in throw-away microVMs, locally or through the
distributed queue.  A thin cffi (ABI mode) binding over libaetherium.so:
no logic of its own.  See docs/python.md.
"""
from ._ffi import LIBRARY_PATH
from ._core import _ensure_init, set_log_level, version, version_info
from .errors import (AetheriumError, AlreadyExists, Busy, Cancelled,
                     InvalidArgument, InvalidState, IOFailure, NotFound,
                     OutOfMemory, ProtocolError, Timeout, TooBig, Unavailable)
from ._exec import CommandFailed, ExecResult, Process
from .vm import VM, VMM, default_vmm
from .client import Client, CreatedVM, Task, TaskFailed, TaskResult, render
from .worker import Retry, Worker
from .store import migrate

_ensure_init()

__version__ = version()

__all__ = [
    "LIBRARY_PATH", "version", "version_info", "set_log_level",
    # errors (aetherium/errors.py)
    "AetheriumError", "AlreadyExists", "Busy", "Cancelled", "InvalidArgument",
    "InvalidState", "IOFailure", "NotFound", "OutOfMemory", "ProtocolError",
    "Timeout", "TooBig", "Unavailable", "CommandFailed", "TaskFailed", "Retry",
    # local VMs
    "VMM", "VM", "default_vmm", "ExecResult", "Process",
    # distributed
    "Client", "CreatedVM", "Task", "TaskResult", "render", "Worker", "migrate",
]
