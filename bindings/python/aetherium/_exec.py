"""Commands in a VM (include/aetherium/exec.h): results, streaming, stdin.

Every wait on a command is cut into short slices (aeth_exec_next() with a
timeout of SLICE_MS), so that the main thread gets back into Python between
them: Ctrl-C (KeyboardInterrupt) or a cancellation of the async API stops
the wait within a slice, and the command is then killed in the guest
(aeth_exec_free()).
"""
from __future__ import annotations

import os
import signal as _signal
import threading
import time
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List,
                    Mapping, Optional, Sequence, Tuple, Union)

from ._ffi import constant, ffi, lib, new_options
from ._handle import Handle, ms
from .errors import AetheriumError, Cancelled, Timeout, check

if TYPE_CHECKING:
    from .vm import VM

STREAMS = {lib.AETH_STREAM_STDOUT: "stdout", lib.AETH_STREAM_STDERR: "stderr"}

#: How long one wait on a command lasts before Python looks at signals and
#: cancellation again (ms). Short enough for a prompt Ctrl-C, long enough to
#: cost nothing (one wake-up per slice of a silent command).
SLICE_MS = 100

#: AETH_EXEC_WAIT_GRACE_MS: how long after its timeout a command's exit
#: report may come (s).
_GRACE_S = int(constant("AETH_EXEC_WAIT_GRACE_MS")) / 1000.0

#: The library's default output_limit (bytes kept per stream).
DEFAULT_OUTPUT_LIMIT = 1 << 20

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: exec(user=...): a uid, "uid", "uid:gid", a user name or "name:group"
#: (looked up in the guest's /etc/passwd and /etc/group), or (uid, gid).
User = Union[int, str, Tuple[int, int]]
Argv = Union[str, bytes, Sequence[StrPath]]
Env = Mapping[str, Optional[str]]


class _Stop:
    """The type of STOP."""

    _instance: Optional[_Stop] = None

    def __new__(cls) -> _Stop:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "aetherium.STOP"


#: Return this from an output callback (on_output, on_stdout, on_stderr) to
#: kill the command. Any other return value, truthy or not, is ignored, so
#: that e.g. ``on_stdout=buf.write`` (which returns a byte count) is safe.
STOP = _Stop()

#: on_output(stream, chunk): stream is "stdout" or "stderr".
OutputCallback = Callable[[str, bytes], object]
#: on_stdout(chunk) / on_stderr(chunk).
ChunkCallback = Callable[[bytes], object]


def b(s: StrPath) -> bytes:
    """str/bytes/PathLike -> bytes for a C string argument."""
    if isinstance(s, bytes):
        return s
    s = os.fspath(s)
    return s if isinstance(s, bytes) else s.encode()


class CommandFailed(AetheriumError):
    """exec(..., check=True) and the command exited non-zero (or was killed).
    The ExecResult is in .result."""

    def __init__(self, argv: object, result: ExecResult) -> None:
        why = ("timed out" if result.timed_out else
               "killed by signal %d" % result.signal if result.signal else
               "exit code %d" % result.exit_code)
        tail = result.stderr.strip()[-500:]
        super().__init__("command %r failed (%s)%s" % (
            argv, why, (": " + tail) if tail else ""))
        self.result = result


class ExecResult:
    """How a command ended.  stdout/stderr are str decoded as UTF-8 with
    errors="replace"; stdout_bytes/stderr_bytes are the raw bytes.
    exit_code is -1 when a signal killed it (signal then set)."""

    __slots__ = ("exit_code", "signal", "timed_out", "stdout_bytes",
                 "stderr_bytes", "stdout_truncated", "stderr_truncated",
                 "duration_ms", "exec_errno")

    def __init__(self, exit_code: int, signal: int = 0, timed_out: bool = False,
                 stdout_bytes: bytes = b"", stderr_bytes: bytes = b"",
                 stdout_truncated: bool = False, stderr_truncated: bool = False,
                 duration_ms: int = 0, exec_errno: int = 0) -> None:
        self.exit_code = exit_code
        self.signal = signal
        self.timed_out = timed_out
        self.stdout_bytes = stdout_bytes
        self.stderr_bytes = stderr_bytes
        self.stdout_truncated = stdout_truncated
        self.stderr_truncated = stderr_truncated
        self.duration_ms = duration_ms
        self.exec_errno = exec_errno

    @classmethod
    def _take(cls, ptr: Any, taken: Optional[Dict[str, bytearray]] = None,
              limit: int = 0, dropped: Optional[Dict[str, bool]] = None) -> ExecResult:
        """Copy a C result and free it (the one place results are freed).
        `taken`: output already pulled with aeth_exec_next(), which comes
        before what the C result still holds; at most `limit` bytes of the
        two are kept per stream (0: no cap here)."""
        try:
            def data(name: str) -> Tuple[bytes, bool]:
                p, n = getattr(ptr, name + "_data"), getattr(ptr, name + "_len")
                rest = ffi.buffer(p, n)[:] if p != ffi.NULL else b""
                out = bytes(taken[name]) + rest if taken else rest
                cut = bool(dropped and dropped.get(name))
                if limit and len(out) > limit:
                    out, cut = out[:limit], True
                return out, cut or bool(getattr(ptr, name + "_truncated"))
            out, out_cut = data("stdout")
            err, err_cut = data("stderr")
            return cls(int(ptr.exit_code), int(ptr.term_signal),
                       bool(ptr.timed_out), out, err, out_cut, err_cut,
                       int(ptr.duration_ms), int(ptr.exec_errno))
        finally:
            lib.aeth_exec_result_free(ptr)

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def duration(self) -> float:
        """Seconds, measured in the guest."""
        return self.duration_ms / 1000.0

    def __repr__(self) -> str:
        return ("ExecResult(exit_code=%d, signal=%d, timed_out=%s, "
                "stdout=%r, stderr=%r)" % (self.exit_code, self.signal,
                                            self.timed_out, self.stdout[:60],
                                            self.stderr[:60]))


def merge_env(base: Optional[Env], env: Optional[Env]) -> Optional[Dict[str, Optional[str]]]:
    """A VM's default env with a call's env on top (None: nothing to set)."""
    if not base and env is None:
        return None
    out: Dict[str, Optional[str]] = dict(base or {})
    out.update(env or {})
    return out


def _guest_db(vm: VM, path: str) -> List[List[str]]:
    """The colon-separated lines of a guest file (/etc/passwd, /etc/group);
    none when it does not exist (the initramfs has no users)."""
    from .errors import NotFound
    try:
        text = vm.get_file(path, max_size=4 << 20).decode("utf-8", "replace")
    except NotFound:
        return []
    return [ln.split(":") for ln in text.splitlines() if ln and not ln.startswith("#")]


def _number(s: str) -> Optional[int]:
    return int(s) if s.isdigit() else None


def resolve_user(vm: VM, user: User) -> Tuple[int, int, Dict[str, str]]:
    """(uid, gid, env to add) for exec(user=...).  A name is looked up in
    the guest's /etc/passwd (uid, primary gid, home) and a group name in
    /etc/group; a bare uid takes its passwd entry's gid, or the uid's own
    number when it has none (never root's group by accident)."""
    from .errors import InvalidArgument, NotFound
    if isinstance(user, tuple):
        if len(user) != 2:
            raise InvalidArgument("user=(uid, gid) takes two numbers")
        return int(user[0]), int(user[1]), {}
    if isinstance(user, bool) or not isinstance(user, (int, str)):
        raise InvalidArgument("user must be a uid, 'uid:gid', a name or (uid, gid)")
    if isinstance(user, int):
        if user < 0:  # the library checks the upper bound
            raise InvalidArgument("user=%d: a uid is 0 or more" % user)
        name, group = str(user), ""
    else:
        name, _, group = user.partition(":")
    if not name:
        raise InvalidArgument("user=%r names no user" % (user,))
    uid = _number(name)
    passwd = _guest_db(vm, "/etc/passwd")
    entry = next((e for e in passwd if len(e) >= 7 and
                  (e[0] == name if uid is None else e[2] == name)), None)
    if uid is None:
        if entry is None:
            raise NotFound("user %r is not in /etc/passwd of VM %s: give a "
                           "uid (user=1000 or '1000:1000')" % (name, vm.id))
        uid = int(entry[2])
    extra: Dict[str, str] = {}
    if entry is not None:
        extra = {"HOME": entry[5], "USER": entry[0], "LOGNAME": entry[0]}
    if group:
        gid = _number(group)
        if gid is None:
            g = next((e for e in _guest_db(vm, "/etc/group")
                      if len(e) >= 3 and e[0] == group), None)
            if g is None:
                raise NotFound("group %r is not in /etc/group of VM %s"
                               % (group, vm.id))
            gid = int(g[2])
    else:
        gid = int(entry[3]) if entry is not None and entry[3].isdigit() else uid
    return uid, gid, extra


def _options(argv: Argv, stdin: Union[bytes, str, None] = None,
             env: Optional[Env] = None, cwd: Optional[StrPath] = None,
             timeout: Optional[float] = None, output_limit: Optional[int] = None,
             shell: bool = False, keep_stdin_open: bool = False,
             uid: int = -1, gid: int = -1) -> Tuple[Any, List[Any]]:
    """An aeth_exec_options and the Python objects that must outlive it."""
    args: List[StrPath]
    if isinstance(argv, (str, bytes)):
        args, shell = [argv], True
    else:
        args = list(argv)
    bargs = [b(a) for a in args]
    if not bargs:
        raise ValueError("argv must not be empty")
    opts, keep = new_options("aeth_exec_options")
    cargs = [ffi.new("char[]", a) for a in bargs]
    c_argv = ffi.new("char *[]", cargs + [ffi.NULL])
    keep += [cargs, c_argv]
    opts.argv = c_argv
    if env is not None:
        entries = [b(k) + b"=" + b(v) if v is not None else b(k)
                   for k, v in env.items()]
        cenv = [ffi.new("char[]", e) for e in entries]
        c_env = ffi.new("char *[]", cenv + [ffi.NULL])
        keep += [cenv, c_env]
        opts.env = c_env
    if cwd is not None:
        c_cwd = ffi.new("char[]", b(cwd))
        keep.append(c_cwd)
        opts.cwd = c_cwd
    if stdin is not None:
        data = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
        c_in = ffi.new("char[]", data)
        keep.append(c_in)
        opts.stdin_data = c_in
        opts.stdin_len = len(data)
    opts.timeout_ms = ms(timeout)
    opts.output_limit = output_limit or 0
    opts.shell = 1 if shell else 0
    opts.keep_stdin_open = 1 if keep_stdin_open else 0
    opts.uid = uid
    opts.gid = gid
    return opts, keep


_TIMEOUT = object()  # a slice passed without output


def run(vm: VM, argv: Argv, *, check: bool = False,
        on_output: Optional[OutputCallback] = None,
        on_stdout: Optional[ChunkCallback] = None,
        on_stderr: Optional[ChunkCallback] = None,
        cancel: Optional[threading.Event] = None,
        timeout: Optional[float] = None, **kw: Any) -> ExecResult:
    """VM.exec(): start the command, pull its output slice by slice (calling
    the callbacks and keeping it for the result), then take its exit.
    Leaving early (an exception in a callback, KeyboardInterrupt, `cancel`
    set) kills the command."""
    limit = kw.get("output_limit") or DEFAULT_OUTPUT_LIMIT
    deadline = (None if not timeout else
                time.monotonic() + timeout + _GRACE_S)
    with Process(vm, argv, keep_stdin_open=False, timeout=timeout, **kw) as p:
        p._keep_output(limit)
        stopped = False
        while True:
            item = p._next(SLICE_MS)
            if cancel is not None and cancel.is_set():
                raise Cancelled("exec of %r cancelled; the command was killed" % (argv,))
            if item is _TIMEOUT:
                if deadline is not None and time.monotonic() > deadline:
                    raise Timeout("no exit report from the guest within %s s of "
                                  "the command's timeout; the command was killed"
                                  % (_GRACE_S))
                continue
            if item is None:
                break
            stream: str
            chunk: bytes
            stream, chunk = item  # type: ignore[misc]
            if stopped:
                continue
            answers = []
            if on_output is not None:
                answers.append(on_output(stream, chunk))
            one = on_stdout if stream == "stdout" else on_stderr
            if one is not None:
                answers.append(one(chunk))
            if any(a is STOP for a in answers):
                stopped = True
                p.kill(_signal.SIGKILL)
        result = p.wait()
    if check and not result.ok:
        raise CommandFailed(argv, result)
    return result


def _free_exec(ptr: Any, vm: VM) -> None:
    lib.aeth_exec_free(ptr)  # kills the command if it still runs


class Process(Handle):
    """A command started in a VM (aeth_exec).  Iterate it for
    (stream, chunk) pairs; wait() for the ExecResult.  Closing it (or
    leaving its with-block) before the command ended kills it.
    One thread at a time may use a Process."""

    _what = "process"

    def __init__(self, vm: VM, argv: Argv, user: Optional[User] = None,
                 **kw: Any) -> None:
        if user is not None:
            uid, gid, extra = resolve_user(vm, user)
            env = dict(extra)
            env.update(kw.get("env") or {})  # the caller's env wins
            kw.update(uid=uid, gid=gid, env=env)
        opts, keep = _options(argv, **kw)
        out = ffi.new("aeth_exec **")
        check(lib.aeth_exec_start(out, vm._handle(), opts))  # copies opts
        self._own(out[0], _free_exec, vm)
        vm._adopt(self)
        self._result: Optional[ExecResult] = None
        self._eof = False
        # Output pulled by wait() (or, for exec(), all output): it goes
        # into the result, at most _limit bytes per stream.
        self._taken: Dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._dropped: Dict[str, bool] = {"stdout": False, "stderr": False}
        self._keep_all = False
        self._limit = kw.get("output_limit") or DEFAULT_OUTPUT_LIMIT
        self.argv = argv

    def _keep_output(self, limit: int) -> None:
        """Keep every chunk read for the result (exec())."""
        self._keep_all = True
        self._limit = limit

    def _store(self, stream: str, chunk: bytes) -> None:
        buf = self._taken[stream]
        room = self._limit - len(buf)
        if len(chunk) > room:
            self._dropped[stream] = True
            chunk = chunk[:max(room, 0)]
        buf += chunk

    def _next(self, slice_ms: int) -> object:
        """One aeth_exec_next() of at most slice_ms: a (stream, chunk),
        None at the end, or _TIMEOUT."""
        if self._eof:
            return None
        stream = ffi.new("aeth_exec_stream *")
        data = ffi.new("const void **")
        size = ffi.new("size_t *")
        rc = lib.aeth_exec_next(stream, data, size, self._handle(), slice_ms)
        if rc == lib.AETH_ETIMEOUT:
            return _TIMEOUT
        check(rc)
        if rc == 0:
            self._eof = True
            return None
        name = STREAMS.get(stream[0], str(stream[0]))
        chunk: bytes = ffi.buffer(data[0], size[0])[:]
        if self._keep_all:
            self._store(name, chunk)
        return name, chunk

    def __iter__(self) -> Iterator[Tuple[str, bytes]]:
        return self

    def __next__(self) -> Tuple[str, bytes]:
        item = self.read()
        if item is None:
            raise StopIteration
        return item

    def read(self, timeout: Optional[float] = None) -> Optional[Tuple[str, bytes]]:
        """The next (stream, chunk), or None once the command has exited
        and every chunk was read.  Raises Timeout after `timeout` seconds
        without output (default: wait as long as it takes; Ctrl-C
        interrupts the wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            slice_ms = SLICE_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("no output from %r within %s s" % (self.argv, timeout))
                slice_ms = max(1, min(SLICE_MS, int(left * 1000)))
            item = self._next(slice_ms)
            if item is not _TIMEOUT:
                return item  # type: ignore[return-value]

    def write(self, data: Union[bytes, str], timeout: Optional[float] = None) -> None:
        """Feed stdin (spawn() only).  Blocks while the agent's window is full."""
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        check(lib.aeth_exec_write_stdin(self._handle(), data, len(data),
                                        ms(timeout)))

    def close_stdin(self) -> None:
        check(lib.aeth_exec_close_stdin(self._handle()))

    def kill(self, sig: int = _signal.SIGTERM) -> None:
        """Signal the command's process group."""
        check(lib.aeth_exec_kill(self._handle(), int(sig)))

    def wait(self) -> ExecResult:
        """Wait for the end: the ExecResult (output not read by iterating
        is in it).  Repeated calls return the same result.  Ctrl-C
        interrupts the wait (the command goes on until the Process is
        closed)."""
        if self._result is None:
            while True:
                item = self._next(SLICE_MS)
                if item is None:
                    break
                if item is not _TIMEOUT and not self._keep_all:
                    self._store(*item)  # type: ignore[misc]
            out = ffi.new("aeth_exec_result **")
            check(lib.aeth_exec_wait(out, self._handle()))
            self._result = ExecResult._take(out[0], self._taken, self._limit,
                                            self._dropped)
        return self._result

    @property
    def result(self) -> ExecResult:
        return self.wait()

    def __enter__(self) -> Process:
        return self
