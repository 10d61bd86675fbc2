"""The distributed path for real: private Redis + PostgreSQL (from
scripts/services.sh: AETH_TEST_DATABASE_URL / AETH_TEST_REDIS_URL), a
worker running in this process (the C run loop, in a thread), a Client
submitting the seed's vm:create / vm:execute / vm:delete tasks."""
import hashlib
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import pytest

import aetherium
from conftest import image_dir, require_env, require_image, qemu_pids_for


def psql(url, sql):
    r = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-qAt", url, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail("psql %s failed: %s (is PostgreSQL running? "
                    "scripts/services.sh start)" % (url, r.stderr.strip()),
                    pytrace=False)
    return r.stdout


@pytest.fixture(scope="module")
def services():
    admin = require_env("AETH_TEST_DATABASE_URL")
    redis_url = require_env("AETH_TEST_REDIS_URL")
    db = "aeth_py_" + uuid.uuid4().hex[:12]
    psql(admin, 'CREATE DATABASE "%s"' % db)
    # postgresql://[host]/postgres?... -> .../<db>?... (urlunsplit would
    # drop the empty host of postgresql:///x?host=/sock)
    base, sep, query = admin.partition("?")
    db_url = base.rsplit("/", 1)[0] + "/" + db + sep + query
    ns = "pytest-" + uuid.uuid4().hex[:8]
    assert aetherium.migrate(db_url) >= 1  # MIGRATE
    assert aetherium.migrate(db_url) >= 1   # repeatable
    yield {"database_url": db_url, "redis_url": redis_url, "redis_ns": ns}
    psql(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    # The test namespace's keys: the queue keys all share "{<ns>:" tags.
    sock = urllib.parse.urlsplit(redis_url)
    if sock.scheme == "unix":
        subprocess.run(["redis-cli", "-s", sock.path, "--scan", "--pattern",
                        "*%s*" % ns], capture_output=True)


@pytest.fixture(scope="module")
def worker(services):
    require_image()
    state = tempfile.mkdtemp(prefix="aeth-pyw-", dir="/tmp")
    events = []
    w = aetherium.Worker(id="pytest-" + uuid.uuid4().hex[:8], concurrency=2,
                         image_dir=str(image_dir()), state_dir=state,
                         on_event=lambda tid, line: events.append((tid, line)),
                         **services)
    w.start()
    w.events = events
    yield w
    try:
        w.stop(timeout=120)
    finally:
        w.close()
        with aetherium.VMM(state_dir=state) as m:
            m.reap(all=True)
        left = qemu_pids_for(state)
        shutil.rmtree(state, ignore_errors=True)
        assert not left, "VMs left running by the worker: %s" % left


@pytest.fixture
def client(services, worker):
    with aetherium.Client(**services) as c:
        yield c


def test_seed_workflow(client, worker):
    assert {"vm:create", "vm:execute", "vm:delete"} <= set(worker.types)
    vm_id = client.create_vm("py-demo", vcpus=1, memory_mb=256, network="user",
                             image="default", ttl=600, timeout=180)
    uuid.UUID(vm_id)
    # how the worker made it, from the vm:create result
    assert vm_id.origin in ("pool", "snapshot", "cold") and vm_id.ready_ms > 0
    vms = {v["id"]: v for v in client.list_vms()}
    assert vms[vm_id]["status"] == "running" and vms[vm_id]["name"] == "py-demo"

    r = client.execute(vm_id, "echo", ["Hello from VM"], timeout=60)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Hello from VM\n", "")
    assert r.task.worker_id == worker.id

    r = client.execute(vm_id, "sh", ["-c", "echo $X; cat; exit 3"],
                       env={"X": "envok"}, stdin="in", timeout=60)
    assert (r.exit_code, r.stdout) == (3, "envok\nin")
    assert r.signal == 0 and not r.timed_out and not r.stdout_truncated
    assert r.duration_ms is None or r.duration_ms >= 0

    # the rich result fields (timed_out, base64 of binary output) where
    # the worker records them; today's seed fields otherwise
    r = client.execute(vm_id, "sleep", ["30"], exec_timeout=1, timeout=60)
    assert not r.ok
    assert r.timed_out or (r.exit_code == 143 and "timeout" in r.stderr), r
    r = client.execute(vm_id, "printf", ["\\377ok"], timeout=60)
    assert r.stdout_bytes in (b"\xffok", "\ufffdok".encode()), r.stdout_bytes
    if "stdout_b64" in r.task.result:
        assert r.stdout_bytes == b"\xffok"

    # live output: the pieces arrive while the command runs
    got = []
    r = client.execute(vm_id, "sh", ["-c", "echo a; sleep 1; echo b >&2; "
                                     "sleep 1; echo c"], timeout=60,
                       on_output=lambda s, t: got.append((time.monotonic(), s, t)))
    assert r.exit_code == 0 and r.stdout == "a\nc\n"
    assert [(s, t) for _, s, t in got] == [("stdout", "a\n"), ("stderr", "b\n"),
                                          ("stdout", "c\n")]
    assert got[-1][0] - got[0][0] >= 1.5

    client.delete_vm(vm_id, timeout=60)
    vms = {v["id"]: v for v in client.list_vms()}
    assert vms[vm_id]["status"] == "deleted"

    tasks = client.list_tasks(limit=10)
    assert [t["status"] for t in tasks[:6]] == ["completed"] * 6
    assert "py-demo" in aetherium.render(client.list_vms(), "vms")
    workers = {w["id"]: w for w in client.list_workers()}
    assert workers[worker.id]["state"] == "alive"
    assert "vm:execute" in workers[worker.id]["types"]
    assert any(tid and "Hello" not in line for tid, line in worker.events)


def test_files_through_the_queue(client, worker):
    """vm:file_put / vm:file_get: the bytes of VM.put_file() / get_file()
    through the queue, with the same exception classes."""
    assert {"vm:file_put", "vm:file_get"} <= set(worker.types)
    vm_id = client.create_vm("py-files", timeout=180)
    every = bytes(range(256)) * 3 + b"\0"
    t = client.put_file(vm_id, "/tmp/every.bin", every, mode=0o600, timeout=60)
    assert t.result["size"] == len(every) and t.result["mode"] == 0o600
    r = client.execute(vm_id, "sha256sum", ["/tmp/every.bin"], timeout=60)
    assert r.stdout.split()[0] == hashlib.sha256(every).hexdigest()
    assert client.get_file(vm_id, "/tmp/every.bin", timeout=60) == every
    client.put_file(vm_id, "/tmp/t.txt", "text é", timeout=60)
    assert client.get_file(vm_id, "/tmp/t.txt", timeout=60) == "text é".encode()
    with pytest.raises(aetherium.NotFound) as ei:
        client.get_file(vm_id, "/tmp/none", timeout=60)
    assert isinstance(ei.value, aetherium.TaskFailed)
    assert "not_found" in ei.value.task.error
    with pytest.raises(aetherium.NotFound):
        client.put_file(vm_id, "/nodir/x", b"x", timeout=60)
    with pytest.raises(aetherium.InvalidArgument):
        client.get_file(vm_id, "/tmp", timeout=60)
    # refused before it is enqueued: the payload check of the C client
    with pytest.raises(aetherium.InvalidArgument):
        client.get_file(vm_id, "relative", timeout=60)
    client.delete_vm(vm_id, timeout=60)


def test_unknown_vm_is_not_found_and_recorded(client):
    vm_id = str(uuid.uuid4())
    with pytest.raises(aetherium.NotFound) as ei:
        client.submit("vm:execute", {"vm_id": vm_id, "command": "true"})
    assert vm_id in str(ei.value)
    task = client.task(ei.value.task_id)
    assert task.status == "failed" and task.error


def test_bad_payload_is_invalid(client):
    with pytest.raises(aetherium.InvalidArgument):
        client.submit("vm:create", {"vcpus": "many"})
    # nothing in a payload names a host path (docs/security.md)
    with pytest.raises(aetherium.InvalidArgument) as ei:
        client.submit("vm:create", {"name": "x", "rootfs": "/etc/shadow"})
    assert "not a path" in str(ei.value)
    with pytest.raises(TypeError):
        client.create_vm("x", rootfs="/etc/shadow")
    with pytest.raises(aetherium.InvalidArgument):
        client.submit("vm:create", {"name": "x\n✓ VM created: forged"})


def test_wait_timeout(services):
    # A namespace no worker listens on: the task stays pending.
    quiet = dict(services, redis_ns=services["redis_ns"] + "-quiet")
    with aetherium.Client(**quiet) as c:
        tid = c.submit("vm:create", {"name": "never"})
        with pytest.raises(aetherium.Timeout):
            c.wait(tid, timeout=0.5)
        assert c.task(tid).status == "pending"


def test_unknown_task_type_is_invalid(client):
    with pytest.raises(aetherium.InvalidArgument) as ei:
        client.submit("py:nobody", {})
    assert "py:nobody" in str(ei.value)


def test_unreachable_services_are_unavailable():
    with pytest.raises(aetherium.Unavailable) as ei:
        aetherium.Client(database_url="postgresql:///x?host=/nonexistent",
                         redis_url="unix:///nonexistent/redis.sock")
    assert "nonexistent" in str(ei.value)


def test_custom_type_right_after_start(services):
    """start() returns once the worker is in the registry: a custom type
    submitted at once reaches its Python handler."""
    w = aetherium.Worker(id="pytest-py-" + uuid.uuid4().hex[:8], concurrency=1,
                         queues="pyq=1", builtin=False, **services)
    try:
        w.handle("py:add", lambda task: {"sum": task.payload["a"] + task.payload["b"]})
        w.start(timeout=60)
        with aetherium.Client(**services) as c:
            tid = c.submit("py:add", {"a": 2, "b": 3}, queue="pyq")
            t = c.wait(tid, timeout=30)
        assert t.status == "completed" and t.result == {"sum": 5}
    finally:
        w.close()


def test_handler_result_json_cannot_encode_fails_the_task(services):
    """A handler returning a set (or NaN) must not end `completed` with a
    null result: the task fails, saying why."""
    w = aetherium.Worker(id="pytest-py-" + uuid.uuid4().hex[:8], concurrency=1,
                         queues="pyjson=1", builtin=False, **services)
    try:
        w.handle("py:set", lambda task: {1, 2})
        w.handle("py:nan", lambda task: {"x": float("nan")})
        w.handle("py:ok", lambda task: [1, "two", None])
        w.start(timeout=60)
        with aetherium.Client(**services) as c:
            done = {k: c.wait(c.submit(k, {}, queue="pyjson", max_retries=0),
                              timeout=30)
                    for k in ("py:set", "py:nan", "py:ok")}
    finally:
        w.close()
    for kind in ("py:set", "py:nan"):
        t = done[kind]
        assert t.status in ("failed", "dead"), (kind, t.row)
        assert t.result is None
        assert "json.dumps cannot encode" in t.error and kind in t.error, t.error
    assert "set is not JSON serializable" in done["py:set"].error
    assert done["py:ok"].status == "completed" and done["py:ok"].result == [1, "two", None]


def test_async_client_runs_tasks_at_once(services, worker):
    import asyncio
    import aetherium.aio as aio

    async def main():
        async with aio.AsyncClient(size=3, **services) as c:
            vm_id = await c.create_vm("py-aio", timeout=180)
            try:
                rs = await asyncio.gather(*(c.execute(vm_id, "echo", [str(i)], timeout=60)
                                            for i in range(4)))
                rows = await c.list_vms()
            finally:
                await c.delete_vm(vm_id, timeout=60)
            return vm_id, rs, rows, len(c._all)

    vm_id, rs, rows, opened = asyncio.run(main())
    assert [r.stdout for r in rs] == ["%d\n" % i for i in range(4)]
    assert vm_id in [r["id"] for r in rows]
    assert 1 < opened <= 3  # several Clients waited at once, never more than size
