"""A client of aeth-gateway's HTTP API (docs/gateway.md, docs/openapi.yaml):
VMs, commands run in them (waited for or streamed line by line), files,
and tasks, with an API key and no Redis or PostgreSQL credentials.

    gw = Gateway("https://sandbox.example:8443", key)
    vm = gw.create_vm(name="demo")
    r = gw.exec(vm["id"], "echo", ["Hello from VM"])
    print(r.exit_code, r.stdout)
    for ev in gw.exec_stream(vm["id"], "sh", ["-c", "make test"]):
        print(ev.stream, ev.data, end="")
    gw.delete_vm(vm["id"])

Only the standard library (http.client, ssl, json) does the work here; it
answers with the same classes as the direct client (Task, TaskResult) and
raises the same exceptions (NotFound, InvalidArgument, Timeout, ...), plus
Unauthorized, Forbidden, QuotaExceeded and RateLimited for what only the
gateway refuses.  Each exception carries .status (the HTTP status) and
.error_code (the API's stable code, e.g. "not_found").
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Type, Union)

from .client import Task, TaskFailed, TaskResult, exec_fields
from .errors import (AetheriumError, AlreadyExists, Busy, Cancelled,
                     InvalidArgument, InvalidState, NotFound, Timeout, TooBig,
                     Unavailable)

__all__ = ["Gateway", "OutputEvent", "Unauthorized", "Forbidden",
           "QuotaExceeded", "RateLimited"]


class Unauthorized(AetheriumError, PermissionError):
    """401: no key, an unknown key or a revoked one."""


class Forbidden(AetheriumError, PermissionError):
    """403 forbidden: an operator route with a tenant key."""


class QuotaExceeded(AetheriumError):
    """403 quota_exceeded: the message names the limit; nothing was queued."""


class RateLimited(AetheriumError):
    """429: over the tenant's requests per second (or streams); retry later."""


# The API's error codes (docs/openapi.yaml, Error.code) -> exception class.
_BY_API_CODE: Dict[str, Type[AetheriumError]] = {
    "invalid_json": InvalidArgument,
    "invalid_argument": InvalidArgument,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "method_not_allowed": InvalidArgument,
    "conflict": InvalidState,
    "already_exists": AlreadyExists,
    "too_large": TooBig,
    "quota_exceeded": QuotaExceeded,
    "rate_limited": RateLimited,
    "busy": Busy,
    "timeout": Timeout,
    "unavailable": Unavailable,
    "cancelled": Cancelled,
    "task_failed": AetheriumError,
    "internal": AetheriumError,
    # the files routes: what is at the path is not a file to read or replace
    "is_a_directory": InvalidArgument,
    "not_a_file": InvalidArgument,
}

# The most a file may have through the gateway (a vm:file_put / vm:file_get
# task carries it: AETH__FILE_MAX, lib/task/task.h).
FILE_MAX = 8 * 1024 * 1024


def _api_error(status: int, err: Any, task_id: Optional[str] = None) -> AetheriumError:
    """The exception for an API error object {"code", "message"}."""
    code = err.get("code", "internal") if isinstance(err, dict) else "internal"
    msg = err.get("message", "") if isinstance(err, dict) else ""
    cls = _BY_API_CODE.get(str(code), AetheriumError)
    exc = cls(str(msg) or "gateway answered %d %s" % (status, code))
    setattr(exc, "status", status)
    setattr(exc, "error_code", str(code))
    setattr(exc, "task_id", task_id)
    return exc


class OutputEvent:
    """One event of a streamed command: stream is "stdout", "stderr" or
    "exit"; data is the text written (for stdout/stderr, invalid UTF-8
    replaced); t_ms the gateway's wall clock (ms since the epoch) when the
    piece was relayed; for "exit": exit_code, or error (the message) when
    the task failed or the wait ran out."""

    __slots__ = ("stream", "data", "t_ms", "task_id", "exit_code", "error")

    def __init__(self, obj: Dict[str, Any]) -> None:
        self.stream: str = str(obj.get("stream", "exit"))
        self.data: str = str(obj.get("data", ""))
        self.t_ms: Optional[int] = obj.get("t_ms")
        self.task_id: Optional[str] = obj.get("task_id")
        self.exit_code: Optional[int] = obj.get("exit_code")
        err = obj.get("error")
        self.error: Optional[str] = (str(err.get("message", err))
                                     if isinstance(err, dict) else
                                     (str(err) if err is not None else None))

    def __repr__(self) -> str:
        if self.stream == "exit":
            return "OutputEvent(exit, exit_code=%r, error=%r)" % (self.exit_code,
                                                                  self.error)
        return "OutputEvent(%s, %r, t_ms=%r)" % (self.stream, self.data[:60], self.t_ms)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (gateway.listen: unix:/path)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


def _quote(vm_or_task_id: str) -> str:
    return urllib.parse.quote(vm_or_task_id, safe="")


class Gateway:
    """A client of one aeth-gateway.

    url: "http://127.0.0.1:8080", "https://host:8443" or "unix:/path/to.sock";
    key: an API key from `aeth-gateway keys create`; timeout: seconds for
    connecting and for each read (a wait adds its own timeout to it);
    cafile: the CA bundle that signed an https gateway's certificate (the
    system's by default).  Each call opens its own connection, so one
    Gateway may be used from several threads.
    """

    def __init__(self, url: str, key: str, *, timeout: float = 60.0,
                 cafile: Optional[str] = None) -> None:
        if not key:
            raise InvalidArgument("Gateway: an API key is needed "
                                  "(aeth-gateway keys create -tenant NAME)")
        self.url = url
        self.timeout = timeout
        self._key = key
        self._ssl: Optional[ssl.SSLContext] = None
        if url.startswith("unix:"):
            self._unix: Optional[str] = "/" + url[5:].lstrip("/")
            self._host, self._port = "localhost", 0
            if self._unix == "/":
                raise InvalidArgument("Gateway: unix: needs a socket path "
                                      "(unix:/run/aetherium/gateway.sock)")
            return
        self._unix = None
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise InvalidArgument("Gateway: the URL is http://HOST:PORT, "
                                  "https://HOST:PORT or unix:/PATH, not %r" % url)
        self._host = u.hostname
        self._port = u.port or (443 if u.scheme == "https" else 80)
        if u.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=cafile)

    # ---- transport -------------------------------------------------------

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        if self._unix is not None:
            return _UnixConnection(self._unix, timeout)
        if self._ssl is not None:
            return http.client.HTTPSConnection(self._host, self._port,
                                               timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _open(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
              body: Optional[bytes] = None, content_type: str = "application/json",
              wait: float = 0.0) -> http.client.HTTPResponse:
        """Send a request; the response (status < 400) or the raised error."""
        if query:
            q = {k: ("true" if v is True else "false" if v is False else v)
                 for k, v in query.items() if v is not None}
            if q:
                path += "?" + urllib.parse.urlencode(q)
        headers = {"Authorization": "Bearer " + self._key,
                   "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        conn = self._conn(self.timeout + wait)
        try:
            try:
                conn.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                # the gateway may answer before it took the whole body (413
                # for a declared Content-Length over its limit) and close:
                # its answer is the one to report, when it is still there
                pass
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise Unavailable("gateway %s: %s %s: %s" % (self.url, method, path, e)) from e
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            try:
                err = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "internal",
                       "message": "gateway answered %d: %s" % (
                           resp.status, raw[:200].decode("utf-8", "replace"))}
            raise _api_error(resp.status, err)
        return resp

    def _json(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
              body: Any = None, wait: float = 0.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        resp = self._open(method, path, query, data, wait=wait)
        try:
            raw = resp.read()
        finally:
            resp.close()
        try:
            out = json.loads(raw) if raw else None
        except ValueError as e:
            raise AetheriumError("gateway %s: %s %s answered no JSON: %r" % (
                self.url, method, path, raw[:200])) from e
        if isinstance(out, dict) and "error" in out and "task_id" in out:
            # a wait that started and ended badly (200 with an error body)
            raise _api_error(200, out["error"], out["task_id"])
        return out

    # ---- who and what ----------------------------------------------------

    def health(self) -> bool:
        """Does the gateway answer /v1/health (no key needed)?"""
        try:
            out = self._json("GET", "/v1/health")
        except AetheriumError:
            return False
        return isinstance(out, dict) and out.get("status") == "ok"

    def whoami(self) -> Dict[str, Any]:
        """{"tenant", "key_prefix", "operator"} of this key."""
        return dict(self._json("GET", "/v1/whoami"))

    # ---- VMs -------------------------------------------------------------

    def create_vm(self, name: Optional[str] = None, *, vcpus: Optional[int] = None,
                  memory_mb: Optional[int] = None, image: Optional[str] = None,
                  network: Optional[str] = None, rootfs: Optional[str] = None,
                  ttl: Optional[float] = None, wait: bool = True,
                  tenant: Optional[str] = None) -> Dict[str, Any]:
        """Create a VM: its row (id, name, status "running", tenant, ...) once
        it runs; with wait=False, {"task_id", "status": "pending"} at once.
        Over the tenant's quota: QuotaExceeded, and nothing is queued."""
        body: Dict[str, Any] = {"wait": wait}
        for k, v in (("name", name), ("vcpus", vcpus), ("memory_mb", memory_mb),
                     ("image", image), ("network", network), ("rootfs", rootfs),
                     ("tenant", tenant)):
            if v is not None:
                body[k] = v
        if ttl is not None:
            body["ttl_s"] = int(ttl)
        out = self._json("POST", "/v1/vms", body=body)
        return dict(out["vm"]) if wait else dict(out)

    def vm(self, vm_id: str) -> Dict[str, Any]:
        """One VM's row; NotFound for an unknown id or another tenant's."""
        return dict(self._json("GET", "/v1/vms/" + _quote(vm_id)))

    def vms(self, status: Optional[str] = None, limit: Optional[int] = None,
            tenant: Optional[str] = None) -> List[Dict[str, Any]]:
        """This tenant's VMs, newest first (an operator key: every tenant's,
        or `tenant`'s)."""
        return list(self._json("GET", "/v1/vms", {"status": status, "limit": limit,
                                                  "tenant": tenant}))

    def delete_vm(self, vm_id: str, wait: bool = True) -> Task:
        """Delete a VM: the vm:delete task (finished when wait is True)."""
        out = self._json("DELETE", "/v1/vms/" + _quote(vm_id), {"wait": wait})
        if not wait:
            return Task({"id": out["task_id"], "status": out["status"],
                         "type": "vm:delete"})
        task = Task(dict(out))
        if task.status in ("failed", "dead"):
            raise TaskFailed(task)
        return task

    # ---- commands --------------------------------------------------------

    def exec(self, vm_id: str, command: str, args: Sequence[str] = (), *,
             env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
             stdin: Union[str, bytes, None] = None,
             timeout: Optional[float] = None) -> TaskResult:
        """Run a command in the VM and wait: a TaskResult (exit_code, stdout,
        stderr, timed_out, ...), as Client.execute gives.  A non-zero exit
        is a result, not an error; a task that failed raises.  timeout:
        seconds the command may run in the guest."""
        body = exec_fields(command, args, env, cwd, stdin, timeout)
        out = self._json("POST", "/v1/vms/%s/exec" % _quote(vm_id), body=body,
                         wait=timeout or 0.0)
        res = {k: v for k, v in out.items() if k != "task_id"}
        res["vm_id"] = vm_id
        return TaskResult(Task({"id": out.get("task_id"), "type": "vm:execute",
                                "status": "completed", "vm_id": vm_id,
                                "result": res}))

    def exec_stream(self, vm_id: str, command: str, args: Sequence[str] = (), *,
                    env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                    stdin: Union[str, bytes, None] = None,
                    timeout: Optional[float] = None) -> Iterator[OutputEvent]:
        """Run a command and yield its output as it is written: OutputEvents
        "stdout" / "stderr", then one "exit" (exit_code, or error)."""
        body = exec_fields(command, args, env, cwd, stdin, timeout)
        body["stream"] = "ndjson"
        resp = self._open("POST", "/v1/vms/%s/exec" % _quote(vm_id),
                          body=json.dumps(body).encode(), wait=timeout or 0.0)
        return self._events(resp)

    def output(self, task_id: str, timeout: Optional[float] = None) -> Iterator[OutputEvent]:
        """Follow the live output of a vm:execute submitted with
        "live_output": true (submit()), as exec_stream does."""
        resp = self._open("GET", "/v1/tasks/%s/output" % _quote(task_id),
                          {"format": "ndjson",
                           "timeout_ms": int(timeout * 1000) if timeout else None},
                          wait=timeout or 0.0)
        return self._events(resp)

    @staticmethod
    def _events(resp: http.client.HTTPResponse) -> Iterator[OutputEvent]:
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise AetheriumError("gateway stream: not JSON: %r" % line[:200]) from e
                if isinstance(obj, dict):
                    yield OutputEvent(obj)
        finally:
            resp.close()

    # ---- files -----------------------------------------------------------

    def put_file(self, vm_id: str, path: str, data: Union[bytes, str],
                 mode: Optional[int] = None) -> Dict[str, Any]:
        """Write `data` to the absolute `path` in the VM, replacing it
        atomically (mode, e.g. 0o755; 0o644 by default): {"task_id",
        "vm_id", "path", "size", "mode"}.  At most FILE_MAX (8 MiB) and the
        gateway's max_body_bytes (TooBig); the directory must exist
        (NotFound); a directory there is InvalidArgument."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if len(raw) > FILE_MAX:
            raise TooBig("put_file: %d bytes, more than the %d a file may have "
                         "through the gateway" % (len(raw), FILE_MAX))
        q: Dict[str, Any] = {"path": path}
        if mode is not None:
            q["mode"] = "%o" % mode
        resp = self._open("PUT", "/v1/vms/%s/files" % _quote(vm_id), q, raw,
                          content_type="application/octet-stream", wait=60.0)
        try:
            out: Dict[str, Any] = json.loads(resp.read())
        finally:
            resp.close()
        return out

    def get_file(self, vm_id: str, path: str) -> bytes:
        """The bytes of the file at the absolute `path` in the VM (at most
        8 MiB: TooBig); NotFound when there is none, InvalidArgument for a
        directory or a device."""
        resp = self._open("GET", "/v1/vms/%s/files" % _quote(vm_id), {"path": path},
                          wait=60.0)
        try:
            return resp.read()
        finally:
            resp.close()

    # ---- tasks -----------------------------------------------------------

    def submit(self, type: str, payload: Optional[Mapping[str, Any]] = None, *,
               queue: Optional[str] = None, max_retries: Optional[int] = None,
               timeout: Optional[float] = None, priority: Optional[int] = None,
               tenant: Optional[str] = None) -> str:
        """Submit a task of a registered type: its id."""
        body: Dict[str, Any] = {"type": type, "payload": dict(payload or {})}
        for k, v in (("queue", queue), ("max_retries", max_retries),
                     ("priority", priority), ("tenant", tenant)):
            if v is not None:
                body[k] = v
        if timeout is not None:
            body["timeout_ms"] = int(timeout * 1000)
        return str(self._json("POST", "/v1/tasks", body=body)["task_id"])

    def task(self, task_id: str) -> Task:
        """One task; NotFound for an unknown id or another tenant's."""
        return Task(dict(self._json("GET", "/v1/tasks/" + _quote(task_id))))

    def tasks(self, status: Optional[str] = None, type: Optional[str] = None,
              vm_id: Optional[str] = None, limit: Optional[int] = None,
              tenant: Optional[str] = None) -> List[Task]:
        """This tenant's tasks, newest first, filtered."""
        rows = self._json("GET", "/v1/tasks", {"status": status, "type": type,
                                               "vm_id": vm_id, "limit": limit,
                                               "tenant": tenant})
        return [Task(dict(r)) for r in rows]

    def wait(self, task_id: str, timeout: Optional[float] = None) -> Task:
        """Wait until the task finished (Timeout when `timeout` seconds
        passed first): the Task, whatever its outcome."""
        q = {"timeout_ms": int(timeout * 1000)} if timeout else None
        try:
            return Task(dict(self._json("GET", "/v1/tasks/%s/wait" % _quote(task_id),
                                        q, wait=timeout or 0.0)))
        except AetheriumError as e:
            if getattr(e, "error_code", None) == "task_failed":
                return self.task(task_id)
            raise

    def cancel(self, task_id: str) -> str:
        """Cancel a task: "cancelled" (had not started) or "cancelling" (a
        running vm:execute has its command killed)."""
        return str(self._json("POST", "/v1/tasks/%s/cancel" % _quote(task_id))["status"])

    # ---- operators ---------------------------------------------------------

    def workers(self) -> List[Dict[str, Any]]:
        """The worker registry (operator keys; Forbidden otherwise)."""
        return list(self._json("GET", "/v1/workers"))

    def queues(self) -> List[Dict[str, Any]]:
        """Task counts per queue and state (operator keys)."""
        return list(self._json("GET", "/v1/queues"))
