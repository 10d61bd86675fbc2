"""Local microVMs (include/aetherium/vm.h): no Redis or PostgreSQL needed.

    with aetherium.VM(vcpus=1, memory_mb=256) as vm:
        r = vm.exec(["echo", "hi"])

A VMM is the VM manager (backend, accelerator, state dir, guest image);
VM objects made without an explicit manager share a default one, opened on
first use from the environment (AETH_STATE_DIR, AETH_IMAGE_DIR, ...).
"""
from __future__ import annotations

import os
import stat
import threading
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Union

from . import _core
from . import _exec
from ._exec import (Argv, ChunkCallback, Env, ExecResult,
                    OutputCallback, Process, StrPath, User)
from ._ffi import ffi, lib, new_options
from ._handle import Handle, cstr, ms, strarray
from .errors import InvalidArgument, NotFound, check

_ACCELS: Dict[Optional[str], int] = {"auto": lib.AETH_ACCEL_AUTO, "kvm": lib.AETH_ACCEL_KVM,
           "tcg": lib.AETH_ACCEL_TCG}
_NETS: Dict[Union[None, bool, str], int] = {None: lib.AETH_NET_NONE, False: lib.AETH_NET_NONE,
         "none": lib.AETH_NET_NONE, True: lib.AETH_NET_USER,
         "user": lib.AETH_NET_USER, "tap": lib.AETH_NET_TAP}


def _set_str(opts: Any, keep: List[Any], field: str, value: object) -> None:
    if value is None:
        return
    s = ffi.new("char[]", str(value).encode())
    keep.append(s)
    setattr(opts, field, s)


def _set_strv(opts: Any, keep: List[Any], field: str,
              values: Optional[Iterable[str]]) -> None:
    """A NULL-terminated ``const char *const *`` from a list of strings."""
    if values is None:
        return
    if isinstance(values, (str, bytes)):
        raise TypeError("%s must be a list of strings, not one string" % field)
    items = [ffi.new("char[]", str(v).encode()) for v in values]
    arr = ffi.new("char *[]", items + [ffi.NULL])
    keep.extend(items)
    keep.append(arr)
    setattr(opts, field, arr)


class FileInfo(NamedTuple):
    """An entry of VM.list_dir(): name, path, type ("file", "dir",
    "symlink" or "other"), size (bytes) and mode (permission bits)."""
    name: str
    path: str
    type: str
    size: int
    mode: int


def _file_type(raw_mode: int) -> str:
    kind = stat.S_IFMT(raw_mode)
    return {stat.S_IFREG: "file", stat.S_IFDIR: "dir",
            stat.S_IFLNK: "symlink"}.get(kind, "other")


_JAILS: Dict[Union[None, bool, str], int] = {None: lib.AETH_JAIL_AUTO, "auto": lib.AETH_JAIL_AUTO,
          True: lib.AETH_JAIL_ON, "on": lib.AETH_JAIL_ON,
          False: lib.AETH_JAIL_OFF, "off": lib.AETH_JAIL_OFF}


def accel_name(code: int) -> Optional[str]:
    return cstr(lib.aeth_accel_name(code))


def _free_vmm(ptr: Any) -> None:
    lib.aeth_vmm_free(ptr)


class VMM(Handle):
    """A VM manager (aeth_vmm).  Thread-safe: may be shared by threads.

    Every argument is optional (None = the library's default):
    backend ("qemu" or "firecracker"), accel ("auto", "kvm", "tcg"),
    state_dir, image_dir, kernel_path, initrd_path, rootfs_path,
    qemu_binary, firecracker_binary, boot_timeout (seconds), jail,
    cgroups, overlay_dir, snapshots (True: start VMs from the snapshot of
    their shape, docs/vm.md "Snapshots"), snapshot_dir, tcg_tb_mb.
    """

    _what = "VM manager"

    def __init__(self, backend: Optional[str] = None, accel: Optional[str] = None,
                 state_dir: Optional[str] = None, image_dir: Optional[str] = None,
                 kernel_path: Optional[str] = None, initrd_path: Optional[str] = None,
                 rootfs_path: Optional[str] = None, qemu_binary: Optional[str] = None,
                 firecracker_binary: Optional[str] = None,
                 boot_timeout: Optional[float] = None,
                 jail: Union[None, bool, str] = None, cgroups: bool = True,
                 overlay_dir: Optional[str] = None, snapshots: bool = False,
                 snapshot_dir: Optional[str] = None,
                 tcg_tb_mb: Optional[int] = None) -> None:
        _core._ensure_init()
        opts, keep = new_options("aeth_vmm_options")
        if jail not in _JAILS:
            raise ValueError("jail must be None/'auto', True/'on' or False/'off'")
        opts.jail = _JAILS[jail]
        opts.no_cgroups = 0 if cgroups else 1
        _set_str(opts, keep, "overlay_dir", overlay_dir)
        opts.snapshots = (lib.AETH_SNAPSHOTS_AUTO if snapshots
                          else lib.AETH_SNAPSHOTS_OFF)
        _set_str(opts, keep, "snapshot_dir", snapshot_dir)
        if tcg_tb_mb is not None:
            opts.tcg_tb_mb = int(tcg_tb_mb)
        if accel is not None:
            if accel not in _ACCELS:
                raise ValueError("accel must be one of %s" % ", ".join(str(k) for k in _ACCELS))
            opts.accel = _ACCELS[accel]
        for field, value in (("backend", backend), ("state_dir", state_dir),
                             ("image_dir", image_dir), ("kernel_path", kernel_path),
                             ("initrd_path", initrd_path), ("rootfs_path", rootfs_path),
                             ("qemu_binary", qemu_binary),
                             ("firecracker_binary", firecracker_binary)):
            _set_str(opts, keep, field, value)
        opts.boot_timeout_ms = ms(boot_timeout, "boot_timeout")
        out = ffi.new("aeth_vmm **")
        check(lib.aeth_vmm_open(out, opts))  # copies the strings
        self._own(out[0], _free_vmm)

    def close(self) -> None:
        """Close every VM object made from this manager (owned VMs are
        deleted, attached ones only released), then free the manager."""
        super().close()

    @property
    def state_dir(self) -> Optional[str]:
        return cstr(lib.aeth_vmm_state_dir(self._handle()))

    @property
    def backend(self) -> Optional[str]:
        return cstr(lib.aeth_vmm_backend(self._handle()))

    @property
    def accel(self) -> Optional[str]:
        """The accelerator in use: "kvm" or "tcg" (never "auto")."""
        return accel_name(lib.aeth_vmm_accel(self._handle()))

    def list(self) -> List[str]:
        """Ids of every VM recorded in the state dir."""
        out = ffi.new("char ***")
        check(lib.aeth_vm_list(out, self._handle()))
        try:
            return strarray(out[0])
        finally:
            lib.aeth_strarray_free(out[0])

    def get(self, vm_id: str, owned: bool = False) -> VM:
        """A handle on an existing VM (e.g. started by another process).
        Closing it only releases the handle unless owned=True.
        Raises NotFound for an unknown id."""
        out = ffi.new("aeth_vm **")
        check(lib.aeth_vm_get(out, self._handle(), str(vm_id).encode()))
        return VM._wrap(out[0], self, owned)

    def create(self, **kwargs: Any) -> VM:
        """Same as VM(vmm=self, **kwargs)."""
        return VM(vmm=self, **kwargs)

    def reap(self, all: bool = False) -> List[str]:
        """Remove VMs whose VMM process is gone (all=True: every VM).
        Returns the ids removed."""
        out = ffi.new("char ***")
        rc = lib.aeth_vmm_reap(out, self._handle(), 1 if all else 0)
        try:
            ids = strarray(out[0])
        finally:
            lib.aeth_strarray_free(out[0])
        check(rc)
        return ids


_default_lock = threading.Lock()
_default_vmm: Optional[VMM] = None


def default_vmm() -> VMM:
    """The manager VM() uses when none is given (opened on first use)."""
    global _default_vmm
    with _default_lock:
        if _default_vmm is None or _default_vmm.closed:
            _default_vmm = VMM()
        return _default_vmm


def _release_vm(ptr: Any, state: Dict[str, bool], vmm: VMM) -> None:
    """Free a VM handle; delete the VM first when state["delete"].
    `vmm` is passed only to keep the manager alive until now."""
    if state["delete"]:
        lib.aeth_vm_delete(ptr)  # errors here have nobody to go to
    lib.aeth_vm_free(ptr)


class VM(Handle):
    """A microVM.  VM(...) defines and boots a new VM and owns it: close(),
    leaving the with-block, garbage collection or interpreter exit delete
    it.  Pass keep=True to leave it running when the object goes (close()
    then only releases the handle; find it again with VMM.get(id)).

    Arguments: name, vcpus (1), memory_mb (256), network (False/"none",
    True/"user" for user-mode networking, "tap" with tap_name), allow
    (with "user": the destinations the guest may reach, e.g.
    ["host:9418", "*:443", "dns"]; nothing by default, see
    docs/security.md), rootfs_path, boot_timeout (seconds), id (a UUID),
    vmm (a VMM; default: default_vmm()), start (True: boot now), ttl (the
    VM's lifetime in seconds: VMM.reap() removes it after; expires_ms
    says when), env (variables set for every command), user (the user
    every command runs as, see exec()).

    Threading: exec/spawn/put_file/get_file may run from several threads
    at once on one VM; start/stop/delete/close must not race them.
    """

    _what = "VM"

    def __init__(self, name: Optional[str] = None, vcpus: Optional[int] = None,
                 memory_mb: Optional[int] = None,
                 network: Union[None, bool, str] = None,
                 tap_name: Optional[str] = None, rootfs_path: Optional[str] = None,
                 boot_timeout: Optional[float] = None, id: Optional[str] = None,
                 vmm: Optional[VMM] = None, keep: bool = False, start: bool = True,
                 allow: Optional[Iterable[str]] = None, ttl: Optional[int] = None,
                 env: Optional[Env] = None, user: Optional[User] = None) -> None:
        vmm = vmm or default_vmm()
        self.env: Dict[str, Optional[str]] = dict(env or {})
        self.user: Optional[User] = user
        opts, strs = new_options("aeth_vm_options")
        _set_strv(opts, strs, "net_allow", allow)
        if ttl is not None:
            opts.ttl_s = int(ttl)
        _set_str(opts, strs, "name", name)
        _set_str(opts, strs, "id", id)
        _set_str(opts, strs, "tap_name", tap_name)
        _set_str(opts, strs, "rootfs_path", rootfs_path)
        if vcpus is not None:
            opts.vcpus = vcpus
        if memory_mb is not None:
            opts.memory_mb = memory_mb
        if network not in _NETS:
            raise ValueError("network must be None, False, True, 'user' or 'tap'")
        opts.net = _NETS[network]
        opts.boot_timeout_ms = ms(boot_timeout, "boot_timeout")
        out = ffi.new("aeth_vm **")
        check(lib.aeth_vm_create(out, vmm._handle(), opts))
        self._init(out[0], vmm, delete=not keep)
        if start:
            try:
                self.start()
            except BaseException:
                self._state["delete"] = True
                self.close()  # remove what create made
                raise

    @classmethod
    def _wrap(cls, ptr: Any, vmm: VMM, owned: bool) -> VM:
        self = cls.__new__(cls)
        self.env = {}
        self.user = None
        self._init(ptr, vmm, delete=owned)
        return self

    def _init(self, ptr: Any, vmm: VMM, delete: bool) -> None:
        self._vmm = vmm
        self._state = {"delete": delete}
        self._own(ptr, _release_vm, self._state, vmm)
        vmm._adopt(self)

    def close(self) -> None:
        """Delete the VM (unless keep=True / attached with VMM.get) and
        release the handle.  Idempotent."""
        super().close()

    def detach(self) -> Optional[str]:
        """Release the handle but leave the VM as it is (running VMs keep
        running).  Returns the VM's id."""
        with self._lock:
            vm_id = self.id
            self._state["delete"] = False
            self.close()
            return vm_id

    # Lifecycle
    def start(self) -> None:
        """Boot; returns once the guest agent answered."""
        check(lib.aeth_vm_start(self._handle()))

    def stop(self, timeout: Optional[float] = None) -> None:
        """Power off (killing the VMM after `timeout` seconds, default 5)."""
        check(lib.aeth_vm_stop(self._handle(), ms(timeout)))

    def delete(self) -> None:
        """Stop the VM and remove all its resources; the object is closed."""
        with self._lock:
            for child in list(self._children):
                child.close()
            check(lib.aeth_vm_delete(self._handle()))
            self.detach()

    def ping(self, timeout: Optional[float] = 5) -> None:
        """Round trip to the guest agent (raises Timeout / Unavailable)."""
        check(lib.aeth_vm_ping(self._handle(), ms(timeout)))

    # Commands and files (include/aetherium/exec.h)
    def exec(self, argv: Argv, *, stdin: Union[bytes, str, None] = None,
             env: Optional[Env] = None, cwd: Optional[StrPath] = None,
             timeout: Optional[float] = None, output_limit: Optional[int] = None,
             shell: bool = False, check: bool = False,
             on_output: Optional[OutputCallback] = None,
             on_stdout: Optional[ChunkCallback] = None,
             on_stderr: Optional[ChunkCallback] = None,
             user: Optional[User] = None) -> ExecResult:
        """Run a command to its end: an ExecResult.

        argv: a list of str/bytes (no shell), or one str run with
        /bin/sh -c.  stdin: bytes or str fed to the command.  env: dict of
        variables to set on top of the VM's default env (VM(env=...));
        value None removes one.  cwd: working dir.  timeout: seconds,
        then the command's process group is killed (result.timed_out).
        output_limit: bytes kept per stream (1 MiB).  check=True raises
        CommandFailed for a non-zero exit.

        on_output(stream, chunk), on_stdout(chunk), on_stderr(chunk): called
        with bytes as output arrives ("stdout"/"stderr"), on this thread;
        the output is also kept in the result.  Their return value is
        ignored unless it is aetherium.STOP, which kills the command (so
        ``on_stdout=buf.write`` is fine); an exception kills it too and is
        re-raised here.  Ctrl-C (KeyboardInterrupt) stops the wait within
        0.1 s and kills the command.

        user: run as this user instead of root: a uid, "uid:gid", a name
        or "name:group" of the guest's /etc/passwd and /etc/group (HOME,
        USER, LOGNAME then follow the entry), or (uid, gid); default: the
        VM's `user` (VM(user=...)), else root.  A bare uid without a
        passwd entry gets its own number as gid.  Needs a guest agent of
        protocol level 2 (InvalidArgument otherwise).
        """
        return _exec.run(self, argv, stdin=stdin, env=_exec.merge_env(self.env, env),
                         cwd=cwd, timeout=timeout, output_limit=output_limit,
                         shell=shell, check=check, on_output=on_output,
                         on_stdout=on_stdout, on_stderr=on_stderr,
                         user=user if user is not None else self.user)

    def exec_stream(self, argv: Argv, **kwargs: Any) -> Process:
        """Start a command and iterate its output as (stream, chunk) pairs,
        stream "stdout" or "stderr", chunk bytes.  Returns a Process; after
        the loop, .wait() (or .result) gives the ExecResult.
        Same arguments as exec() (no callbacks/check)."""
        kwargs["env"] = _exec.merge_env(self.env, kwargs.get("env"))
        kwargs.setdefault("user", self.user)
        return Process(self, argv, keep_stdin_open=False, **kwargs)

    def spawn(self, argv: Argv, **kwargs: Any) -> Process:
        """Start a command with stdin left open: a Process with write(),
        close_stdin(), kill(), iteration over output and wait()."""
        kwargs["env"] = _exec.merge_env(self.env, kwargs.get("env"))
        kwargs.setdefault("user", self.user)
        return Process(self, argv, keep_stdin_open=True, **kwargs)

    def put_file(self, path: StrPath, data: Union[bytes, bytearray, memoryview, str],
                 mode: int = 0o644) -> None:
        """Write bytes (or str, as UTF-8) to `path` in the guest, atomically."""
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        check(lib.aeth_vm_file_put(self._handle(), _exec.b(path), data,
                                   len(data), mode))

    def get_file(self, path: StrPath, max_size: Optional[int] = None) -> bytes:
        """The bytes of `path` in the guest (NotFound, TooBig past max_size
        bytes, default 16 MiB: AETH_FILE_GET_MAX_DEFAULT).  Larger files:
        download()."""
        data = ffi.new("void **")
        size = ffi.new("size_t *")
        check(lib.aeth_vm_file_get(data, size, self._handle(), _exec.b(path),
                                   max_size or 0))
        try:
            return bytes(ffi.buffer(data[0], size[0])[:])
        finally:
            lib.aeth_free(data[0])

    def download(self, path: StrPath, local_path: StrPath,
                 max_size: Optional[int] = None) -> int:
        """Copy `path` in the guest to the file `local_path` (created or
        truncated), streamed: memory stays small whatever the size.
        Returns the byte count.  TooBig past max_size bytes (default 256
        MiB, the protocol's limit), NotFound; on failure local_path is
        removed."""
        size = ffi.new("size_t *")
        with open(local_path, "wb") as f:
            try:
                check(lib.aeth_vm_file_get_fd(size, self._handle(),
                                              _exec.b(path), f.fileno(),
                                              max_size or 0))
            except BaseException:
                f.close()
                os.unlink(local_path)
                raise
        return int(size[0])

    # Directories and names (protocol level 2: aeth_vm_file_stat/list/
    # mkdir/remove); as root, like put_file/get_file; symlinks are never
    # followed.
    def stat(self, path: StrPath) -> FileInfo:
        """FileInfo of `path` (NotFound; a symlink is described, not
        followed)."""
        mode = ffi.new("unsigned int *")
        size = ffi.new("uint64_t *")
        check(lib.aeth_vm_file_stat(mode, size, self._handle(), _exec.b(path)))
        p = os.fsdecode(_exec.b(path))
        return FileInfo(os.path.basename(p.rstrip("/")) or p, p,
                        _file_type(mode[0]), int(size[0]), mode[0] & 0o7777)

    def exists(self, path: StrPath) -> bool:
        """Whether `path` exists in the guest (a dangling symlink counts)."""
        try:
            self.stat(path)
        except (NotFound, InvalidArgument) as e:  # ENOENT, ENOTDIR
            if isinstance(e, InvalidArgument) and "protocol level" in str(e):
                raise
            return False
        return True

    def list_dir(self, path: StrPath) -> List[FileInfo]:
        """The entries of the directory `path` (not . and ..), sorted by
        name: FileInfo(name, path, type, size, mode).  NotFound,
        InvalidArgument (not a directory), TooBig (over ~30000 entries)."""
        names = ffi.new("char ***")
        modes = ffi.new("unsigned int **")
        sizes = ffi.new("uint64_t **")
        count = ffi.new("size_t *")
        check(lib.aeth_vm_file_list(names, modes, sizes, count, self._handle(),
                                    _exec.b(path)))
        try:
            base = os.fsdecode(_exec.b(path)).rstrip("/")
            out = []
            for i in range(count[0]):
                name = os.fsdecode(ffi.string(names[0][i]))
                raw = int(modes[0][i])
                out.append(FileInfo(name, base + "/" + name, _file_type(raw),
                                    int(sizes[0][i]), raw & 0o7777))
        finally:
            lib.aeth_strarray_free(names[0])
            lib.aeth_free(modes[0])
            lib.aeth_free(sizes[0])
        return sorted(out)

    def mkdir(self, path: StrPath, mode: int = 0o755, parents: bool = False) -> None:
        """Make the directory `path` with permission bits `mode` (no umask;
        AlreadyExists; NotFound when its parent is missing, unless
        parents=True, which also accepts an existing directory, as
        mkdir -p)."""
        check(lib.aeth_vm_file_mkdir(self._handle(), _exec.b(path), mode,
                                     1 if parents else 0))

    def remove(self, path: StrPath, recursive: bool = False) -> None:
        """Remove a file, a symlink or an empty directory (NotFound;
        InvalidArgument for a directory with entries unless
        recursive=True, which removes it and all it holds, never
        following a symlink)."""
        check(lib.aeth_vm_file_remove(self._handle(), _exec.b(path),
                                      1 if recursive else 0))

    # Accessors
    @property
    def id(self) -> Optional[str]:
        return cstr(lib.aeth_vm_id(self._handle()))

    @property
    def name(self) -> Optional[str]:
        return cstr(lib.aeth_vm_name(self._handle()))

    @property
    def status(self) -> Optional[str]:
        """"creating", "running", "stopped", "failed" or "deleted"."""
        return cstr(lib.aeth_vm_state_name(lib.aeth_vm_status(self._handle())))

    @property
    def backend(self) -> Optional[str]:
        return cstr(lib.aeth_vm_backend(self._handle()))

    @property
    def accel(self) -> Optional[str]:
        return accel_name(lib.aeth_vm_accel(self._handle()))

    @property
    def pid(self) -> int:
        return int(lib.aeth_vm_pid(self._handle()))

    @property
    def vcpus(self) -> int:
        return int(lib.aeth_vm_vcpus(self._handle()))

    @property
    def origin(self) -> str:
        """How its last start made it: "cold" (booted), "snapshot"
        (restored from the snapshot of its shape) or "pool" (handed out
        by a worker's warm pool)."""
        return str(cstr(lib.aeth_origin_name(lib.aeth_vm_origin(self._handle()))))

    @property
    def start_ms(self) -> int:
        """How long that start took, in ms (0 before a start)."""
        return int(lib.aeth_vm_start_ms(self._handle()))

    @property
    def expires_ms(self) -> int:
        """When the VM's lifetime ends (ms since the epoch), or 0: never."""
        return int(lib.aeth_vm_expires_ms(self._handle()))

    @property
    def memory_mb(self) -> int:
        return int(lib.aeth_vm_memory_mb(self._handle()))

    @property
    def serial_log(self) -> Optional[str]:
        return cstr(lib.aeth_vm_serial_log(self._handle()))

    @property
    def state_dir(self) -> Optional[str]:
        return cstr(lib.aeth_vm_state_dir(self._handle()))

    @property
    def kernel_path(self) -> Optional[str]:
        return cstr(lib.aeth_vm_kernel_path(self._handle()))

    @property
    def rootfs_path(self) -> Optional[str]:
        return cstr(lib.aeth_vm_rootfs_path(self._handle()))

    def __repr__(self) -> str:
        if self.closed:
            return "<aetherium.VM closed>"
        return "<aetherium.VM %s %s>" % (self.id, self.status)
