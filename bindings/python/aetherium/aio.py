"""asyncio API: many sandboxes at once from one event loop.

    import asyncio, aetherium.aio as aio

    async def one(i):
        async with await aio.AsyncVM.create(name="job-%d" % i) as vm:
            return (await vm.exec(["echo", str(i)])).stdout

    print(asyncio.run(asyncio.gather(*(one(i) for i in range(4)))))

The library's calls block (a boot, a command, a wait in Redis) with the GIL
released, so this module runs each of them on a thread of its own pool
(at most MAX_THREADS at once, 64 by default: one per command or boot in
flight) and awaits it.  Cancelling an awaited exec() kills the command in
the guest within 0.1 s (the same slices that make Ctrl-C work); cancelling
create() waits for the boot to end and deletes the VM.  Nothing here has
logic of its own: the objects are the synchronous ones (AsyncVM.vm,
AsyncClient's Clients), with the same rules (docs/python.md, "Threads").
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from typing import Any, Callable, Dict, List, Optional, TypeVar, Union

from . import _exec
from ._exec import Argv, ExecResult, StrPath
from .client import Client, Task, TaskResult
from .vm import VM, FileInfo

T = TypeVar("T")

#: Most library calls in flight at once (threads of the pool).
MAX_THREADS = 64

_pool_lock = threading.Lock()
_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=MAX_THREADS, thread_name_prefix="aeth-aio")
        return _pool


async def to_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call of the binding on the pool and await it."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(),
                                      functools.partial(fn, *args, **kwargs))


class AsyncVM:
    """A VM for asyncio code.  Make one with ``await AsyncVM.create(...)``
    (the arguments of aetherium.VM) or wrap a VM: AsyncVM(vm).  Closing it
    (``async with``, close()) deletes the VM as VM.close() does."""

    def __init__(self, vm: VM) -> None:
        self.vm = vm

    @classmethod
    async def create(cls, **kwargs: Any) -> AsyncVM:
        """Define and boot a VM (aetherium.VM(**kwargs)) on the pool."""
        fut = asyncio.ensure_future(to_thread(VM, **kwargs))
        try:
            return cls(await asyncio.shield(fut))
        except asyncio.CancelledError:
            # The boot cannot be interrupted half-way: let it end, then
            # delete what it made.
            try:
                vm = await fut
            except BaseException:  # noqa: BLE001 - the boot failed anyway
                raise asyncio.CancelledError() from None
            await to_thread(vm.close)
            raise

    @property
    def id(self) -> Optional[str]:
        return self.vm.id

    async def exec(self, argv: Argv, **kwargs: Any) -> ExecResult:
        """VM.exec() awaited (same arguments).  Output callbacks run on a
        pool thread.  Cancellation kills the command."""
        cancel = threading.Event()
        kwargs["env"] = _exec.merge_env(self.vm.env, kwargs.get("env"))
        kwargs.setdefault("user", self.vm.user)
        fut = asyncio.ensure_future(to_thread(_exec.run, self.vm, argv,
                                              cancel=cancel, **kwargs))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            cancel.set()
            try:
                await fut  # returns within a slice, the command killed
            except BaseException:  # noqa: BLE001 - Cancelled, as asked
                pass
            raise

    async def put_file(self, path: StrPath, data: Union[bytes, str],
                       mode: int = 0o644) -> None:
        await to_thread(self.vm.put_file, path, data, mode)

    async def get_file(self, path: StrPath, max_size: Optional[int] = None) -> bytes:
        return await to_thread(self.vm.get_file, path, max_size)

    async def download(self, path: StrPath, local_path: StrPath,
                       max_size: Optional[int] = None) -> int:
        return await to_thread(self.vm.download, path, local_path, max_size)

    async def stat(self, path: StrPath) -> FileInfo:
        return await to_thread(self.vm.stat, path)

    async def exists(self, path: StrPath) -> bool:
        return await to_thread(self.vm.exists, path)

    async def list_dir(self, path: StrPath) -> List[FileInfo]:
        return await to_thread(self.vm.list_dir, path)

    async def mkdir(self, path: StrPath, mode: int = 0o755,
                    parents: bool = False) -> None:
        await to_thread(self.vm.mkdir, path, mode, parents)

    async def remove(self, path: StrPath, recursive: bool = False) -> None:
        await to_thread(self.vm.remove, path, recursive)

    async def ping(self, timeout: Optional[float] = 5) -> None:
        await to_thread(self.vm.ping, timeout)

    async def close(self) -> None:
        """VM.close(): delete it (unless kept) and release the handle."""
        await to_thread(self.vm.close)

    async def delete(self) -> None:
        await to_thread(self.vm.delete)

    async def __aenter__(self) -> AsyncVM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "<aetherium.aio.AsyncVM %r>" % (self.vm,)


class AsyncClient:
    """Client for asyncio code: up to `size` Clients (connections to Redis
    and PostgreSQL) opened as needed, so that that many calls (e.g. waits
    for tasks) run at once; more wait for a free one.  Same arguments and
    methods as aetherium.Client, awaited."""

    def __init__(self, database_url: Optional[str] = None,
                 redis_url: Optional[str] = None,
                 redis_ns: Optional[str] = None, size: int = 4) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._args: Dict[str, Optional[str]] = dict(
            database_url=database_url, redis_url=redis_url, redis_ns=redis_ns)
        self._size = size
        self._opened = 0
        self._all: List[Client] = []
        self._free: List[Client] = []
        self._cond: Optional[asyncio.Condition] = None

    async def _take(self) -> Client:
        if self._cond is None:
            self._cond = asyncio.Condition()
        async with self._cond:
            while not self._free and self._opened >= self._size:
                await self._cond.wait()
            if self._free:
                return self._free.pop()
            self._opened += 1
        try:
            c = await to_thread(Client, **self._args)
        except BaseException:
            async with self._cond:
                self._opened -= 1
                self._cond.notify()
            raise
        self._all.append(c)
        return c

    async def _give(self, c: Client) -> None:
        assert self._cond is not None
        async with self._cond:
            self._free.append(c)
            self._cond.notify()

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        c = await self._take()
        fut = asyncio.ensure_future(to_thread(getattr(c, name), *args, **kwargs))
        try:
            return await asyncio.shield(fut)
        finally:
            if fut.done():
                await self._give(c)
            else:
                # Cancelled while the C call runs: the Client comes back
                # once that call returns (a wait ends at its timeout).
                loop = asyncio.get_running_loop()
                fut.add_done_callback(
                    lambda _f: loop.create_task(self._give(c)))

    async def submit(self, type: str, payload: Any, **kwargs: Any) -> str:
        return str(await self._call("submit", type, payload, **kwargs))

    async def wait(self, task_id: str, timeout: Optional[float] = None) -> Task:
        task: Task = await self._call("wait", task_id, timeout)
        return task

    async def task(self, task_id: str) -> Task:
        task: Task = await self._call("task", task_id)
        return task

    async def run(self, type: str, payload: Any, timeout: Optional[float] = None,
                  **kwargs: Any) -> Task:
        task: Task = await self._call("run", type, payload, timeout, **kwargs)
        return task

    async def create_vm(self, name: str, **kwargs: Any) -> str:
        return str(await self._call("create_vm", name, **kwargs))

    async def execute(self, vm_id: str, command: str, args: Any = (),
                      **kwargs: Any) -> TaskResult:
        res: TaskResult = await self._call("execute", vm_id, command, args, **kwargs)
        return res

    async def delete_vm(self, vm_id: str, **kwargs: Any) -> Task:
        task: Task = await self._call("delete_vm", vm_id, **kwargs)
        return task

    async def put_file(self, vm_id: str, path: str, data: Any,
                       **kwargs: Any) -> Task:
        task: Task = await self._call("put_file", vm_id, path, data, **kwargs)
        return task

    async def get_file(self, vm_id: str, path: str, **kwargs: Any) -> bytes:
        data: bytes = await self._call("get_file", vm_id, path, **kwargs)
        return data

    async def list_vms(self) -> List[Dict[str, Any]]:
        rows: List[Dict[str, Any]] = await self._call("list_vms")
        return rows

    async def list_tasks(self, limit: int = 20) -> List[Dict[str, Any]]:
        rows: List[Dict[str, Any]] = await self._call("list_tasks", limit)
        return rows

    async def close(self) -> None:
        """Close every Client (wait for calls in flight first)."""
        for c in list(self._all):
            await to_thread(c.close)
        self._all.clear()
        self._opened = 0
        self._free.clear()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
