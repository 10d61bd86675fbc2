"""A worker in this process (include/aetherium/worker.h): the C run loop
takes tasks from Redis, runs the built-in vm:create / vm:execute /
vm:delete handlers (and Python handlers you add) and records everything
in PostgreSQL.

    w = aetherium.Worker(concurrency=2)
    w.start()          # runs aeth_worker_run() in a background thread
    ...
    w.stop()           # graceful: running tasks finish within the grace time
"""
import json
import threading
import time

from ._ffi import ffi, lib, new_options
from ._handle import Handle, cstr, ms
from .errors import AetheriumError, Timeout, check

_STR_FIELDS = ("id", "database_url", "redis_url", "redis_ns", "queues",
               "backend", "accel", "image_dir", "state_dir")


class Task:
    """The task a Python handler runs; valid during the handler call only."""

    def __init__(self, ptr):
        self._ptr = ptr

    @property
    def id(self):
        return cstr(lib.aeth_task_id(self._ptr))

    @property
    def type(self):
        return cstr(lib.aeth_task_type(self._ptr))

    @property
    def payload(self):
        """The payload, parsed from JSON."""
        return json.loads(cstr(lib.aeth_task_payload(self._ptr)) or "null")

    @property
    def retry_count(self):
        return lib.aeth_task_retry_count(self._ptr)

    @property
    def cancelled(self):
        """True when the handler should give up (shutdown, lease, timeout)."""
        return bool(lib.aeth_task_cancelled(self._ptr))

    def say(self, line):
        """A progress line (worker events)."""
        lib.aeth_task_say(self._ptr, str(line).encode())


class Retry(AetheriumError):
    """Raise from a handler for a failure worth retrying (any other
    exception fails the task for good)."""


@ffi.callback("int(aeth_task *, void *)")
def _handler_cb(task, userdata):
    fn = ffi.from_handle(userdata)
    t = Task(task)
    try:
        result = fn(t)
    except Retry as e:
        return lib.aeth_task_fail(task, 1, str(e).encode("utf-8", "replace"))
    except BaseException as e:  # noqa: BLE001 - nothing may cross into C
        msg = "%s: %s" % (type(e).__name__, e)
        return lib.aeth_task_fail(task, 0, msg.encode("utf-8", "replace"))
    finally:
        t._ptr = None
    return lib.aeth_task_set_result(task, json.dumps(result).encode())


@ffi.callback("void(const char *, const char *, void *)")
def _event_cb(task_id, line, userdata):
    try:
        ffi.from_handle(userdata)(cstr(task_id), cstr(line))
    except Exception:  # noqa: BLE001
        pass


def _free_worker(ptr, keep):
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

    def __init__(self, id=None, database_url=None, redis_url=None,
                 redis_ns=None, concurrency=None, queues=None, lease=None,
                 grace=None, backend=None, accel=None, image_dir=None,
                 state_dir=None, vcpus=None, memory_mb=None, migrate=True,
                 builtin=True, on_event=None, config=None):
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
        self._keep = {}
        # Only when asked for: each line would take the GIL.
        if on_event is not None:
            self._keep["event"] = ffi.new_handle(on_event)
            opts.on_event = _event_cb
            opts.userdata = self._keep["event"]
        out = ffi.new("aeth_worker **")
        check(lib.aeth_worker_new(out, opts))
        self._own(out[0], _free_worker, self._keep)
        self._thread = None
        self._run_error = None
        if builtin:
            check(lib.aeth_worker_handle_builtin(self._handle()))

    @property
    def id(self):
        return cstr(lib.aeth_worker_id(self._handle()))

    @property
    def types(self):
        return [t.strip() for t in cstr(lib.aeth_worker_types(self._handle())).split(",")
                if t.strip()]

    def handle(self, type, fn):
        """Run fn(task) for tasks of `type` (before run()/start()).  Its
        return value (JSON-able) is the task's result; raising Retry asks
        for a retry, any other exception fails the task for good.  Called
        on the worker's slot threads, several at once."""
        h = ffi.new_handle(fn)
        self._keep["handler:" + type] = h
        check(lib.aeth_worker_handle(self._handle(), type.encode(), _handler_cb, h))

    def run(self):
        """Run until stop() (blocking; the GIL is released meanwhile)."""
        check(lib.aeth_worker_run(self._handle()))

    def start(self, timeout=60):
        """run() in a background thread; returns once the worker takes
        tasks (migrated, in the worker registry, so that a Client can
        submit its custom types at once), re-raising run()'s error if it
        ended first. timeout (seconds, None = no limit) bounds that wait."""
        if self._thread is not None:
            raise AetheriumError("worker already started")

        def target():
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

    def stop(self, join=True, timeout=None):
        """Ask the run loop to stop (safe from any thread); with join, wait
        for a start()ed loop to return and re-raise its error."""
        if not self.closed:
            lib.aeth_worker_stop(self._handle())
        if join:
            self.join(timeout)

    def join(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise AetheriumError("worker did not stop within %s s" % timeout)
        if self._run_error is not None:
            err, self._run_error = self._run_error, None
            raise err

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def close(self):
        """Stop (if started), wait, then free the worker."""
        if self.closed:
            return
        if self._thread is not None and self._thread.is_alive():
            lib.aeth_worker_stop(self._ptr)
            self._thread.join()
        super().close()
