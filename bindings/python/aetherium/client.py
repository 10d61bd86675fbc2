"""The distributed system (include/aetherium/task.h, client part): submit
vm:create / vm:execute / vm:delete / vm:file_put / vm:file_get tasks through Redis, wait for their
results, list VMs and tasks from PostgreSQL.  Routing, validation and
waiting are the C library's; this module only converts.

    with aetherium.Client() as c:          # $AETH_DATABASE_URL, $AETH_REDIS_URL
        vm_id = c.create_vm("demo", vcpus=1, memory_mb=256)
        r = c.execute(vm_id, "echo", ["Hello from VM"])
        print(r.exit_code, r.stdout)
        c.delete_vm(vm_id)
"""
from __future__ import annotations

import base64
import binascii
import json
import signal as _signal
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from ._ffi import ffi, lib, new_options
from ._handle import Handle, cstr, ms
from .errors import (AetheriumError, InvalidArgument, NotFound, TooBig, check,
                     last_error)


def exec_fields(command: str, args: Sequence[str], env: Optional[Mapping[str, str]],
                cwd: Optional[str], stdin: Union[str, bytes, None],
                exec_timeout: Optional[float]) -> Dict[str, Any]:
    """The command's fields of a vm:execute payload (docs/worker.md), as
    the gateway's exec request also takes them (docs/openapi.yaml)."""
    out: Dict[str, Any] = {"command": command, "args": list(args)}
    if env:
        out["env"] = dict(env)
    if cwd:
        out["cwd"] = cwd
    if stdin is not None:
        out["stdin"] = stdin if isinstance(stdin, str) else stdin.decode()
    if exec_timeout:
        out["timeout_ms"] = ms(exec_timeout)
    return out


class TaskFailed(AetheriumError):
    """A task finished with status failed or dead.  .task is the Task."""

    def __init__(self, task: Task) -> None:
        super().__init__("task %s (%s) %s: %s" % (
            task.id, task.type, task.status, task.error or "no error text"))
        self.task = task


# A vm:file_* task that failed for a reason of the request says so with a
# code ("vm:file_get: not_found: ...", docs/worker.md): the exception is
# then both a TaskFailed and the class VM.get_file() would raise.
class FileTaskNotFound(TaskFailed, NotFound):
    """vm:file_put / vm:file_get: no such file (or, for a put, directory)."""


class FileTaskTooBig(TaskFailed, TooBig):
    """vm:file_put / vm:file_get: the file is over 8 MiB."""


class FileTaskInvalid(TaskFailed, InvalidArgument):
    """vm:file_put / vm:file_get: a directory, not a regular file, a bad path."""


_FILE_FAILED = {"not_found": FileTaskNotFound, "too_large": FileTaskTooBig,
                "is_a_directory": FileTaskInvalid, "not_a_file": FileTaskInvalid,
                "invalid_argument": FileTaskInvalid}


class Task:
    """A tasks row: id, type, status ("pending", "running", "completed",
    "failed", "retrying", "dead"), result (parsed JSON or None), error,
    worker_id, retry_count, vm_id, and every column in .row (a dict)."""

    def __init__(self, row: Dict[str, Any]) -> None:
        self.row = row

    def __getattr__(self, name: str) -> Any:
        if name == "row":
            raise AttributeError(name)
        try:
            return self.row[name]
        except KeyError:
            if name in ("result", "error", "worker_id", "vm_id", "retry_count"):
                return None
            raise AttributeError(name) from None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "dead")

    @property
    def ok(self) -> bool:
        return bool(self.status == "completed")

    def __repr__(self) -> str:
        return "<Task %s %s %s>" % (self.id, self.type, self.status)


def _b64(res: Mapping[str, Any], key: str) -> Optional[bytes]:
    """The bytes of a `<stream>_b64` field, None when absent."""
    value = res.get(key)
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as e:
        raise AetheriumError("task result field %s is not valid base64: %s"
                             % (key, e)) from None


def _text(res: Mapping[str, Any], key: str, raw: Optional[bytes]) -> str:
    """The recorded text of a stream, else its bytes decoded."""
    value = res.get(key)
    if value is not None:
        return str(value)
    return (raw or b"").decode("utf-8", "replace")


def _signal_number(value: Any) -> int:
    """A result's signal: a number, or a name ("SIGTERM", "TERM"); 0 for
    none or for what is neither."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    sig = getattr(_signal, name, None)
    return int(sig) if isinstance(sig, _signal.Signals) else 0


class TaskResult:
    """A completed vm:execute: the fields of its result (docs/worker.md).

    exit_code, stdout, stderr (str, as recorded), stdout_bytes /
    stderr_bytes (the exact bytes: from stdout_b64 / stderr_b64 when the
    output was not UTF-8, else the UTF-8 of stdout / stderr),
    stdout_truncated / stderr_truncated, timed_out, signal (0: none),
    duration_ms (None when the worker did not record it), vm_id, and
    the Task in .task.  Results recorded by older workers lack the
    newer fields: they read as False / 0 / None.
    """

    def __init__(self, task: Task) -> None:
        res: Dict[str, Any] = task.result if isinstance(task.result, dict) else {}
        self.task = task
        self.vm_id: Optional[str] = res.get("vm_id")
        self.exit_code: Optional[int] = res.get("exit_code")
        out, err = _b64(res, "stdout_b64"), _b64(res, "stderr_b64")
        self.stdout = _text(res, "stdout", out)
        self.stderr = _text(res, "stderr", err)
        self.stdout_bytes: bytes = out if out is not None else self.stdout.encode()
        self.stderr_bytes: bytes = err if err is not None else self.stderr.encode()
        self.stdout_truncated = bool(res.get("stdout_truncated", False))
        self.stderr_truncated = bool(res.get("stderr_truncated", False))
        self.timed_out = bool(res.get("timed_out", False))
        self.signal = _signal_number(res.get("signal"))
        duration = res.get("duration_ms")
        self.duration_ms: Optional[int] = int(duration) if duration is not None else None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def duration(self) -> Optional[float]:
        """Seconds, or None when not recorded."""
        return None if self.duration_ms is None else self.duration_ms / 1000.0

    def __repr__(self) -> str:
        return ("TaskResult(exit_code=%r, signal=%r, timed_out=%r, stdout=%r, "
                "stderr=%r)" % (self.exit_code, self.signal, self.timed_out,
                                self.stdout[:60], self.stderr[:60]))


def _take_str(pp: Any) -> str:
    """A char * the library gave us to free, as str (freed here)."""
    try:
        return str(ffi.string(pp[0]).decode("utf-8", "replace"))
    finally:
        lib.aeth_free(pp[0])


def _progress(task_id: Any, state: Any, waited_ms: int, userdata: Any) -> None:
    ctx = ffi.from_handle(userdata)
    try:
        ctx(cstr(task_id), cstr(state), waited_ms / 1000.0)
    except Exception:  # noqa: BLE001 - cannot raise through C; ignored
        pass


def _output(stream: int, data: Any, length: int, userdata: Any) -> None:
    ctx = ffi.from_handle(userdata)
    try:
        ctx("stderr" if stream == 2 else "stdout",
            ffi.unpack(data, length).decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - cannot raise through C; ignored
        pass


_output_cb = ffi.callback("void(int, const char *, size_t, void *)", _output)

_progress_cb = ffi.callback("void(const char *, const char *, unsigned int, void *)",
                            _progress)

#: progress(task_id, state, waited_seconds) of Client.wait().
Progress = Callable[[Optional[str], Optional[str], float], object]


def _free_client(ptr: Any) -> None:
    lib.aeth_client_free(ptr)


class CreatedVM(str):
    """What create_vm() returns: the new VM's id (a str, as before), with
    how the worker made it: .origin ("pool": a warm pool's VM handed out,
    "snapshot": restored, "cold": booted) and .ready_ms (how long that
    took in the worker), from the vm:create result."""

    origin: Optional[str]
    ready_ms: Optional[int]

    def __new__(cls, vm_id: str, origin: Optional[str] = None,
                ready_ms: Optional[int] = None) -> "CreatedVM":
        self = super().__new__(cls, vm_id)
        self.origin = origin
        self.ready_ms = ready_ms
        return self


class Client(Handle):
    """A connection to Redis and PostgreSQL for submitting tasks
    (aeth_client).  database_url / redis_url default to $AETH_DATABASE_URL /
    $AETH_REDIS_URL, redis_ns (queue key namespace) to "aeth".

    Thread safety: the C client is single-threaded; this object serialises
    its calls with a lock, so threads may share it (open one per thread for
    parallel waits)."""

    _what = "client"

    def __init__(self, database_url: Optional[str] = None,
                 redis_url: Optional[str] = None,
                 redis_ns: Optional[str] = None) -> None:
        from . import _core
        _core._ensure_init()
        opts, keep = new_options("aeth_client_options")
        for field, value in (("database_url", database_url),
                             ("redis_url", redis_url), ("redis_ns", redis_ns)):
            if value is not None:
                s = ffi.new("char[]", value.encode())
                keep.append(s)
                setattr(opts, field, s)
        out = ffi.new("aeth_client **")
        check(lib.aeth_client_open(out, opts))
        self._own(out[0], _free_client)
        self._call_lock = threading.Lock()

    # -- low level: any task type --------------------------------------
    def submit(self, type: str, payload: Union[Mapping[str, Any], str, bytes],
               queue: Optional[str] = None, max_retries: Optional[int] = None,
               timeout: Optional[float] = None,
               priority: Optional[int] = None) -> str:
        """Record and enqueue a task; returns its id.  payload: dict or
        JSON text.  vm:execute / vm:delete go to the VM owner's queue.
        A task that cannot run raises (InvalidArgument, NotFound,
        InvalidState) with the recorded task id in exc.task_id."""
        if not isinstance(payload, (str, bytes)):
            payload = json.dumps(payload, allow_nan=False)
        if isinstance(payload, str):
            payload = payload.encode()
        opts, keep = new_options("aeth_submit_options")
        if queue is not None:
            q = ffi.new("char[]", queue.encode())
            keep.append(q)
            opts.queue = q
        if max_retries is not None:
            opts.max_retries = max_retries
        if timeout is not None:
            opts.timeout_ms = ms(timeout)
        if priority is not None:
            opts.priority = priority
        tid = ffi.new("char[37]")
        with self._call_lock:
            rc = lib.aeth_client_submit(tid, ffi.NULL, self._handle(),
                                        type.encode(), payload, opts)
            if rc < 0:
                exc = last_error(rc)
                exc.task_id = ffi.string(tid).decode() or None  # type: ignore[attr-defined]
                raise exc
        return str(ffi.string(tid).decode())

    def wait(self, task_id: str, timeout: Optional[float] = None,
             progress: Optional[Progress] = None) -> Task:
        """Block (in Redis, not polling) until the task finished; returns
        the Task.  timeout in seconds (None: forever) -> Timeout.
        progress(task_id, state, waited_seconds) is called about every 5 s."""
        out = ffi.new("char **")
        h = ffi.new_handle(progress) if progress else ffi.NULL
        with self._call_lock:
            check(lib.aeth_client_wait(out, self._handle(), task_id.encode(),
                                       ms(timeout),
                                       _progress_cb if progress else ffi.NULL,
                                       h))
            return Task(json.loads(_take_str(out)))

    def task(self, task_id: str) -> Task:
        """The Task as recorded now (NotFound for an unknown id)."""
        out = ffi.new("char **")
        with self._call_lock:
            check(lib.aeth_client_task(out, self._handle(), task_id.encode()))
            return Task(json.loads(_take_str(out)))

    def run(self, type: str, payload: Union[Mapping[str, Any], str, bytes],
            timeout: Optional[float] = None, **submit_opts: Any) -> Task:
        """submit() then wait(); raises TaskFailed unless it completed."""
        task = self.wait(self.submit(type, payload, **submit_opts), timeout)
        if not task.ok:
            raise TaskFailed(task)
        return task

    def list_vms(self) -> List[Dict[str, Any]]:
        """Every VM row (dicts)."""
        return self._list("vms", 0)

    def list_tasks(self, limit: int = 20) -> List[Dict[str, Any]]:
        """The newest `limit` task rows (dicts)."""
        return self._list("tasks", limit)

    def list_workers(self) -> List[Dict[str, Any]]:
        """The worker registry (dicts: id, host, pid, types, queues,
        last_seen, age_ms, state "alive" | "dead" | "stopped")."""
        return self._list("workers", 0)

    def _list(self, what: str, limit: int) -> List[Dict[str, Any]]:
        out = ffi.new("char **")
        with self._call_lock:
            check(lib.aeth_client_list(out, self._handle(), what.encode(),
                                       limit))
            rows: List[Dict[str, Any]] = json.loads(_take_str(out))
            return rows

    # -- the seed's three task types ------------------------------------
    def create_vm(self, name: str, vcpus: Optional[int] = None,
                  memory_mb: Optional[int] = None, timeout: Optional[float] = None,
                  image: Optional[str] = None, network: Optional[str] = None,
                  rootfs: Optional[bool] = None, ttl: Optional[int] = None,
                  **submit_opts: Any) -> "CreatedVM":
        """Submit vm:create and wait; returns the new VM's id (a
        CreatedVM: a str with .origin and .ready_ms).  image: a
        name of the worker's image catalogue; network: "none", "tap" or one
        of the worker's network profiles (what the guest may reach);
        rootfs: True/False, the image's root disk or not; ttl: the VM's
        lifetime in seconds (docs/security.md)."""
        payload: Dict[str, Any] = {"name": name}
        for key, value in (("vcpus", vcpus), ("memory_mb", memory_mb),
                           ("image", image), ("network", network)):
            if value:
                payload[key] = value
        if rootfs is not None:
            if not isinstance(rootfs, bool):
                raise TypeError("rootfs is True or False: disks come from "
                                "the worker's image catalogue (image=)")
            payload["rootfs"] = rootfs
        if ttl:
            payload["ttl"] = int(ttl)
        res = self.run("vm:create", payload, timeout, **submit_opts).result
        return CreatedVM(str(res["vm_id"]), res.get("origin"), res.get("ready_ms"))

    def follow(self, task_id: str, on_output: Callable[[str, str], object],
               timeout: Optional[float] = None) -> None:
        """Call on_output(stream, text) ("stdout" / "stderr") for each piece
        of a vm:execute's output as the worker publishes it (a task
        submitted with "live_output": true), until the command ended."""
        h = ffi.new_handle(on_output)
        with self._call_lock:
            check(lib.aeth_client_follow(self._handle(), task_id.encode(),
                                         ms(timeout), _output_cb, h))

    def execute(self, vm_id: str, command: str, args: Sequence[str] = (),
                env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                stdin: Union[str, bytes, None] = None,
                exec_timeout: Optional[float] = None,
                timeout: Optional[float] = None,
                on_output: Optional[Callable[[str, str], object]] = None,
                **submit_opts: Any) -> TaskResult:
        """Submit vm:execute and wait: a TaskResult (exit_code, stdout,
        stderr).  exec_timeout limits the command in the guest (seconds),
        timeout the wait.  on_output(stream, text), when given, gets the
        output while the command runs (docs/gateway.md, live output)."""
        payload = exec_fields(command, args, env, cwd, stdin, exec_timeout)
        payload["vm_id"] = vm_id
        if on_output:
            payload["live_output"] = True
        if on_output:
            tid = self.submit("vm:execute", payload, **submit_opts)
            self.follow(tid, on_output, timeout)
            task = self.wait(tid, timeout)
            if not task.ok:
                raise TaskFailed(task)
            return TaskResult(task)
        return TaskResult(self.run("vm:execute", payload, timeout, **submit_opts))

    def delete_vm(self, vm_id: str, timeout: Optional[float] = None,
                  **submit_opts: Any) -> Task:
        """Submit vm:delete and wait."""
        return self.run("vm:delete", {"vm_id": vm_id}, timeout, **submit_opts)

    def put_file(self, vm_id: str, path: str,
                 data: Union[bytes, bytearray, memoryview, str], mode: int = 0o644,
                 timeout: Optional[float] = None, **submit_opts: Any) -> Task:
        """Submit vm:file_put and wait: write bytes (or str, as UTF-8) to
        the absolute `path` in the VM, atomically, with permission bits
        `mode`.  At most 8 MiB (the file travels in the task).  A missing
        directory raises FileTaskNotFound (a NotFound and a TaskFailed)."""
        if isinstance(data, str):
            data = data.encode()
        payload = {"vm_id": vm_id, "path": path, "mode": mode,
                   "data": base64.b64encode(bytes(data)).decode()}
        return self._run_file("vm:file_put", payload, timeout, submit_opts)

    def get_file(self, vm_id: str, path: str, timeout: Optional[float] = None,
                 **submit_opts: Any) -> bytes:
        """Submit vm:file_get and wait: the bytes of the file at `path` in
        the VM (at most 8 MiB).  FileTaskNotFound when it does not exist,
        FileTaskInvalid for a directory, FileTaskTooBig past 8 MiB."""
        task = self._run_file("vm:file_get", {"vm_id": vm_id, "path": path},
                              timeout, submit_opts)
        return base64.b64decode(task.result["data"], validate=True)

    def _run_file(self, type: str, payload: Dict[str, Any],
                  timeout: Optional[float], submit_opts: Dict[str, Any]) -> Task:
        try:
            return self.run(type, payload, timeout, **submit_opts)
        except TaskFailed as e:
            err = e.task.error or ""
            prefix = type + ": "
            code = err[len(prefix):].split(":", 1)[0] if err.startswith(prefix) else ""
            cls = _FILE_FAILED.get(code)
            if cls is None:
                raise
            raise cls(e.task) from None


def render(rows_or_json: Union[str, bytes, Task, List[Dict[str, Any]], Dict[str, Any]],
           what: str) -> str:
    """Text for humans, as aeth-submit prints it: what is "vms", "tasks"
    (a table) or "task" (one task's summary)."""
    if not isinstance(rows_or_json, (str, bytes)):
        if isinstance(rows_or_json, Task):
            rows_or_json = rows_or_json.row
        rows_or_json = json.dumps(rows_or_json)
    if isinstance(rows_or_json, str):
        rows_or_json = rows_or_json.encode()
    out = ffi.new("char **")
    check(lib.aeth_client_render(out, rows_or_json, what.encode()))
    return _take_str(out)
