"""Commands in a VM (include/aetherium/exec.h): results, streaming, stdin."""
import os
import signal as _signal

from ._ffi import ffi, lib, new_options
from ._handle import Handle, ms
from .errors import AetheriumError, check

STREAMS = {lib.AETH_STREAM_STDOUT: "stdout", lib.AETH_STREAM_STDERR: "stderr"}


def b(s):
    """str/bytes/PathLike -> bytes for a C string argument."""
    if isinstance(s, bytes):
        return s
    s = os.fspath(s)
    return s if isinstance(s, bytes) else s.encode()


class CommandFailed(AetheriumError):
    """exec(..., check=True) and the command exited non-zero (or was killed).
    The ExecResult is in .result."""

    def __init__(self, argv, result):
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

    def __init__(self, c):
        self.exit_code = c.exit_code
        self.signal = c.term_signal
        self.timed_out = bool(c.timed_out)
        self.stdout_truncated = bool(c.stdout_truncated)
        self.stderr_truncated = bool(c.stderr_truncated)
        self.stdout_bytes = (ffi.buffer(c.stdout_data, c.stdout_len)[:]
                             if c.stdout_data != ffi.NULL else b"")
        self.stderr_bytes = (ffi.buffer(c.stderr_data, c.stderr_len)[:]
                             if c.stderr_data != ffi.NULL else b"")
        self.duration_ms = c.duration_ms
        self.exec_errno = c.exec_errno

    @classmethod
    def _take(cls, ptr):
        """Copy a C result and free it (the one place results are freed)."""
        try:
            return cls(ptr)
        finally:
            lib.aeth_exec_result_free(ptr)

    @property
    def stdout(self):
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def ok(self):
        return self.exit_code == 0 and not self.timed_out

    @property
    def duration(self):
        """Seconds, measured in the guest."""
        return self.duration_ms / 1000.0

    def __repr__(self):
        return ("ExecResult(exit_code=%d, signal=%d, timed_out=%s, "
                "stdout=%r, stderr=%r)" % (self.exit_code, self.signal,
                                            self.timed_out, self.stdout[:60],
                                            self.stderr[:60]))


def _options(argv, stdin=None, env=None, cwd=None, timeout=None,
             output_limit=None, shell=False, keep_stdin_open=False):
    """An aeth_exec_options and the Python objects that must outlive it."""
    if isinstance(argv, (str, bytes)):
        argv, shell = [argv], True
    argv = [b(a) for a in argv]
    if not argv:
        raise ValueError("argv must not be empty")
    opts, keep = new_options("aeth_exec_options")
    cargs = [ffi.new("char[]", a) for a in argv]
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
    return opts, keep


class _StreamCtx:
    def __init__(self, fn):
        self.fn = fn
        self.error = None


@ffi.callback("int(aeth_exec_stream, const void *, size_t, void *)")
def _output_cb(stream, data, size, userdata):
    ctx = ffi.from_handle(userdata)
    try:
        stop = ctx.fn(STREAMS.get(stream, str(stream)), ffi.buffer(data, size)[:])
        return 1 if stop else 0
    except BaseException as e:  # noqa: BLE001 - re-raised after the call
        ctx.error = e
        return 1  # kill the command


def run(vm, argv, check=False, on_output=None, **kw):
    opts, keep = _options(argv, **kw)
    out = ffi.new("aeth_exec_result **")
    if on_output is None:
        rc = lib.aeth_vm_exec(out, vm._handle(), opts)
        _check_rc(rc)
    else:
        ctx = _StreamCtx(on_output)
        h = ffi.new_handle(ctx)
        rc = lib.aeth_vm_exec_stream(out, vm._handle(), opts, _output_cb, h)
        if rc < 0 and ctx.error is None:
            _check_rc(rc)
        if ctx.error is not None:
            if rc >= 0:
                lib.aeth_exec_result_free(out[0])
            raise ctx.error
    del keep
    result = ExecResult._take(out[0])
    if check and not result.ok:
        raise CommandFailed(argv, result)
    return result


def _check_rc(rc):
    check(rc)


def _free_exec(ptr, vm):
    lib.aeth_exec_free(ptr)  # kills the command if it still runs


class Process(Handle):
    """A command started in a VM (aeth_exec).  Iterate it for
    (stream, chunk) pairs; wait() for the ExecResult.  Closing it (or
    leaving its with-block) before the command ended kills it.
    One thread at a time may use a Process."""

    _what = "process"

    def __init__(self, vm, argv, **kw):
        opts, keep = _options(argv, **kw)
        out = ffi.new("aeth_exec **")
        check(lib.aeth_exec_start(out, vm._handle(), opts))  # copies opts
        self._own(out[0], _free_exec, vm)
        vm._adopt(self)
        self._result = None
        self._eof = False
        self.argv = argv

    def __iter__(self):
        return self

    def __next__(self):
        item = self.read()
        if item is None:
            raise StopIteration
        return item

    def read(self, timeout=None):
        """The next (stream, chunk), or None once the command has exited
        and every chunk was read.  Raises Timeout after `timeout` seconds
        without output (default: wait as long as it takes)."""
        if self._eof:
            return None
        stream = ffi.new("aeth_exec_stream *")
        data = ffi.new("const void **")
        size = ffi.new("size_t *")
        rc = check(lib.aeth_exec_next(stream, data, size, self._handle(),
                                      ms(timeout)))
        if rc == 0:
            self._eof = True
            return None
        return STREAMS.get(stream[0], str(stream[0])), ffi.buffer(data[0], size[0])[:]

    def write(self, data, timeout=None):
        """Feed stdin (spawn() only).  Blocks while the agent's window is full."""
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        check(lib.aeth_exec_write_stdin(self._handle(), data, len(data),
                                        ms(timeout)))

    def close_stdin(self):
        check(lib.aeth_exec_close_stdin(self._handle()))

    def kill(self, sig=_signal.SIGTERM):
        """Signal the command's process group."""
        check(lib.aeth_exec_kill(self._handle(), int(sig)))

    def wait(self):
        """Wait for the end: the ExecResult (output not read by iterating
        is in it).  Repeated calls return the same result."""
        if self._result is None:
            out = ffi.new("aeth_exec_result **")
            check(lib.aeth_exec_wait(out, self._handle()))
            self._result = ExecResult._take(out[0])
        return self._result

    @property
    def result(self):
        return self.wait()
