"""aetherium.aio: several real TCG guests booted and used at once from one
event loop; cancellation kills a command in the guest."""
import asyncio
import time

import pytest

import aetherium
import aetherium.aio as aio

N = 3


def test_many_vms_at_once(vmm):
    async def job(i):
        async with await aio.AsyncVM.create(name="aio-%d" % i, vmm=vmm,
                                            env={"JOB": str(i)}) as vm:
            await vm.put_file("/tmp/in", b"x" * (i + 1))
            assert await vm.exists("/tmp/in")
            t0 = time.monotonic()
            r = await vm.exec(["sh", "-c", 'sleep 2; echo "$JOB $(wc -c < /tmp/in)"'])
            return vm.id, r.stdout, t0, time.monotonic()

    async def main():
        return await asyncio.gather(*(job(i) for i in range(N)))

    results = asyncio.run(main())
    assert [out for _, out, _, _ in results] == ["%d %d\n" % (i, i + 1) for i in range(N)]
    assert len({vm_id for vm_id, _, _, _ in results}) == N
    # the N `sleep 2` ran at the same time: their intervals overlap
    # (one after the other, the last would start after the first ended)
    latest_start = max(t0 for _, _, t0, _ in results)
    earliest_end = min(t1 for _, _, _, t1 in results)
    assert latest_start < earliest_end, results
    assert not any(v in vmm.list() for v, _, _, _ in results)  # all deleted


def test_cancel_kills_the_command(vm):
    avm = aio.AsyncVM(vm)

    async def main():
        task = asyncio.ensure_future(avm.exec(["sleep", "31"]))
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    took = asyncio.run(main())
    assert took < 3.0, took
    deadline = time.monotonic() + 10
    while vm.exec(["sh", "-c", "ps | grep -c '[s]leep 31' || true"]).stdout.strip() != "0":
        assert time.monotonic() < deadline, "the guest's sleep 31 was not killed"
        time.sleep(0.2)


def test_errors_come_through(vm):
    avm = aio.AsyncVM(vm)

    async def main():
        with pytest.raises(aetherium.NotFound):
            await avm.get_file("/no/such/file")
        r = await avm.exec(["sh", "-c", "exit 7"])
        assert r.exit_code == 7
        entries = await avm.list_dir("/")
        assert "tmp" in [e.name for e in entries]

    asyncio.run(main())
