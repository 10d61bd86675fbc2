"""A worker in this process (include/aetherium/worker.h): the C run loop
takes tasks from Redis, runs the built-in vm:create / vm:execute /
vm:delete handlers (and Python handlers you add) and records everything
in PostgreSQL.

    w = aetherium.Worker(concurrency=2)
    w.start()          # runs aeth_worker_run() in a background thread
    ...
    w.stop()           # graceful: running tasks finish within the grace time
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Union

from ._ffi import ffi, lib, new_options
from ._handle import Handle, cstr, ms
from .errors import AetheriumError, Timeout, check

_STR_FIELDS = ("id", "database_url", "redis_url", "redis_ns", "queues",
               "backend", "accel", "image_dir", "state_dir")


class Task:
    """The task a Python handler runs; valid during the handler call only."""

    def __init__(self, ptr: Any) -> None:
        self._ptr = ptr

    @property
    def id(self) -> Optional[str]:
        return cstr(lib.aeth_task_id(self._ptr))

    @property
    def type(self) -> Optional[str]:
        return cstr(lib.aeth_task_type(self._ptr))

    @property
    def payload(self) -> Any:
        """The payload, parsed from JSON."""
        return json.loads(cstr(lib.aeth_task_payload(self._ptr)) or "null")

    @property
    def retry_count(self) -> int:
        return int(lib.aeth_task_retry_count(self._ptr))

    @property
    def cancelled(self) -> bool:
        """True when the handler should give up (shutdown, lease, timeout)."""
        return bool(lib.aeth_task_cancelled(self._ptr))

    def say(self, line: object) -> None:
        """A progress line (worker events)."""
        lib.aeth_task_say(self._ptr, str(line).encode())


class Retry(AetheriumError):
    """Raise from a handler for a failure worth retrying (any other
    exception fails the task for good)."""


#: A Python handler: fn(task) -> a JSON-able result.
Handler = Callable[[Task], Any]
#: on_event(task_id, line).
EventCallback = Callable[[Optional[str], Optional[str]], object]


def _fail(task: Any, retryable: bool, message: str) -> int:
    return int(lib.aeth_task_fail(task, 1 if retryable else 0,
                                  message.encode("utf-8", "replace")))


def _handler(task: Any, userdata: Any) -> int:
    fn = ffi.from_handle(userdata)
    t = Task(task)
    try:
        type_name = t.type
        result = fn(t)
    except Retry as e:
        return _fail(task, True, str(e))
    except BaseException as e:  # noqa: BLE001 - nothing may cross into C
        return _fail(task, False, "%s: %s" % (type(e).__name__, e))
    finally:
        t._ptr = None
    try:
        # allow_nan=False: NaN/Infinity are not JSON, which PostgreSQL's
        # jsonb and other readers would refuse.
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        return _fail(task, False, "the Python handler for %r returned a value "
                     "json.dumps cannot encode (%s: %s); return dicts, lists, "
                     "str, int, float, bool or None" % (type_name, type(e).__name__, e))
    return int(lib.aeth_task_set_result(task, text.encode()))


def _handler_error(exc_type: Any, exc: Any, tb: Any) -> None:
    """cffi's onerror: whatever escaped _handler (it should not) is
    reported by cffi; the task then fails with AETH_ERROR (-1) below."""


_handler_cb = ffi.callback("int(aeth_task *, void *)", _handler,
                           error=-1, onerror=_handler_error)


def _event(task_id: Any, line: Any, userdata: Any) -> None:
    try:
        ffi.from_handle(userdata)(cstr(task_id), cstr(line))
    except Exception:  # noqa: BLE001
        pass


_event_cb = ffi.callback("void(const char *, const char *, void *)", _event)


def _free_worker(ptr: Any, keep: Dict[str, Any]) -> None:
    lib.aeth_worker_free(ptr)


class Worker(Handle):
    """A worker (aeth_worker).  Arguments (None = the library's default,
    from the environment where named): id, database_url, redis_url,
    redis_ns, concurrency, queues ("critical=6,default=3"), lease, grace
    (seconds), backend, accel, image_dir, state_dir, vcpus, memory_mb,
    migrate (True), builtin (True: register vm:create/execute/delete),
    on_event(task_id, line) for progress lines (called from slot threads),
    config (a YAML file: the image catalogue, network profiles, limits and
    jail settings of docs/config.md; the other arguments win over it).

    Threading: construct, handle(), run()/start() and close() from one
    thread; stop() from any thread."""

    _what = "worker"

    def __init__(self, id: Optional[str] = None, database_url: Optional[str] = None,
                 redis_url: Optional[str] = None, redis_ns: Optional[str] = None,
                 concurrency: Optional[int] = None, queues: Optional[str] = None,
                 lease: Optional[float] = None, grace: Optional[float] = None,
                 backend: Optional[str] = None, accel: Optional[str] = None,
                 image_dir: Optional[str] = None, state_dir: Optional[str] = None,
                 vcpus: Optional[int] = None, memory_mb: Optional[int] = None,
                 migrate: bool = True, builtin: bool = True,
                 on_event: Optional[EventCallback] = None,
                 config: Union[str, "os.PathLike[str]", None] = None) -> None:
        from . import _core
        _core._ensure_init()
        opts, keep = new_options("aeth_worker_options")
        if config is not None:
            # a YAML file: images, network profiles, limits, the jail
            # (docs/config.md); the arguments above win over it
            cfg = ffi.new("aeth_config **")
            check(lib.aeth_config_load(cfg, str(config).encode()))
            keep.append(ffi.gc(cfg[0], lib.aeth_config_free))
            opts.config = cfg[0]
        values = dict(id=id, database_url=database_url, redis_url=redis_url,
                      redis_ns=redis_ns, queues=queues, backend=backend,
                      accel=accel, image_dir=image_dir, state_dir=state_dir)
        for field in _STR_FIELDS:
            if values[field] is not None:
                s = ffi.new("char[]", str(values[field]).encode())
                keep.append(s)
                setattr(opts, field, s)
        opts.concurrency = concurrency or 0
        opts.lease_ms = ms(lease)
        opts.grace_ms = ms(grace)
        opts.vcpus = vcpus or 0
        opts.memory_mb = memory_mb or 0
        opts.migrate = 1 if migrate else 0
        # Python objects the C worker points at live as long as it does.
        self._keep: Dict[str, Any] = {}
        # Only when asked for: each line would take the GIL.
        if on_event is not None:
            self._keep["event"] = ffi.new_handle(on_event)
            opts.on_event = _event_cb
            opts.userdata = self._keep["event"]
        out = ffi.new("aeth_worker **")
        check(lib.aeth_worker_new(out, opts))
        self._own(out[0], _free_worker, self._keep)
        self._thread: Optional[threading.Thread] = None
        self._run_error: Optional[BaseException] = None
        if builtin:
            check(lib.aeth_worker_handle_builtin(self._handle()))

    @property
    def id(self) -> Optional[str]:
        return cstr(lib.aeth_worker_id(self._handle()))

    @property
    def types(self) -> List[str]:
        return [t.strip() for t in (cstr(lib.aeth_worker_types(self._handle())) or "").split(",")
                if t.strip()]

    def handle(self, type: str, fn: Handler) -> None:
        """Run fn(task) for tasks of `type` (before run()/start()).  Its
        return value (JSON-able: json.dumps(allow_nan=False) must encode
        it, or the task fails saying so) is the task's result; raising Retry asks
        for a retry, any other exception fails the task for good.  Called
        on the worker's slot threads, several at once."""
        h = ffi.new_handle(fn)
        self._keep["handler:" + type] = h
        check(lib.aeth_worker_handle(self._handle(), type.encode(), _handler_cb, h))

    def run(self) -> None:
        """Run until stop() (blocking; the GIL is released meanwhile)."""
        check(lib.aeth_worker_run(self._handle()))

    def start(self, timeout: Optional[float] = 60) -> None:
        """run() in a background thread; returns once the worker takes
        tasks (migrated, in the worker registry, so that a Client can
        submit its custom types at once), re-raising run()'s error if it
        ended first. timeout (seconds, None = no limit) bounds that wait."""
        if self._thread is not None:
            raise AetheriumError("worker already started")

        def target() -> None:
            try:
                self.run()
            except BaseException as e:  # noqa: BLE001 - re-raised by join()
                self._run_error = e

        self._thread = threading.Thread(target=target, name="aeth-worker",
                                        daemon=True)
        self._thread.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        # aeth_worker_wait_ready: migrated and in the worker registry (the
        # GIL is released while it waits)
        while True:
            rc = lib.aeth_worker_wait_ready(self._handle(), 100)
            if rc == 0:
                return
            if rc == lib.AETH_ESTATE:
                self.join()  # re-raises run()'s error
                raise AetheriumError("worker stopped before taking tasks")
            if rc != lib.AETH_ETIMEOUT:
                check(rc)
            if deadline is not None and time.monotonic() > deadline:
                self.stop(join=False)  # asked to end, not left running
                raise Timeout("worker did not start taking tasks within %s s"
                              % timeout)

    def stop(self, join: bool = True, timeout: Optional[float] = None) -> None:
        """Ask the run loop to stop (safe from any thread); with join, wait
        for a start()ed loop to return and re-raise its error."""
        if not self.closed:
            lib.aeth_worker_stop(self._handle())
        if join:
            self.join(timeout)

    def join(self, timeout: Optional[float] = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise AetheriumError("worker did not stop within %s s" % timeout)
        if self._run_error is not None:
            err, self._run_error = self._run_error, None
            raise err

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop (if started), wait, then free the worker."""
        if self.closed:
            return
        if self._thread is not None and self._thread.is_alive():
            lib.aeth_worker_stop(self._ptr)
            self._thread.join()
        super().close()
