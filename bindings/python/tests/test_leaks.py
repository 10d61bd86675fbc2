"""No leaks: file descriptors and RSS stay flat over many execs, file
transfers and handle create/free cycles on one real VM."""
import gc
import os

import aetherium


def fds():
    return len(os.listdir("/proc/self/fd"))


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cycle(vm, vmm, i):
    r = vm.exec(["echo", str(i)])
    assert r.stdout == "%d\n" % i
    vm.put_file("/tmp/leak", b"x" * 4096)
    assert len(vm.get_file("/tmp/leak")) == 4096
    with vm.exec_stream(["echo", "s"]) as p:
        assert b"".join(c for _, c in p) == b"s\n"
    with vmm.get(vm.id) as other:           # handle create/free
        assert other.id == vm.id
    try:
        vmm.get("00000000-0000-4000-8000-000000000000")
    except aetherium.NotFound:
        pass


def test_flat_fds_and_rss(vm, vmm):
    for i in range(30):                     # warm up caches and allocators
        cycle(vm, vmm, i)
    gc.collect()
    fd0, rss0 = fds(), rss_kb()
    n = 300
    for i in range(n):
        cycle(vm, vmm, i)
    gc.collect()
    fd1, rss1 = fds(), rss_kb()
    print("fds %d -> %d, RSS %d -> %d kB over %d cycles" % (fd0, fd1, rss0, rss1, n))
    assert fd1 == fd0, "file descriptors leaked: %d -> %d" % (fd0, fd1)
    # 300 cycles leaking even 64 bytes each would be ~19 kB; allow allocator noise.
    assert rss1 - rss0 < 4096, "RSS grew by %d kB" % (rss1 - rss0)


def test_manager_open_close_cycles(state_dir):
    for _ in range(20):
        aetherium.VMM(state_dir=state_dir).close()
    gc.collect()
    fd0, rss0 = fds(), rss_kb()
    for _ in range(500):
        with aetherium.VMM(state_dir=state_dir) as m:
            m.list()
    gc.collect()
    assert fds() == fd0
    assert rss_kb() - rss0 < 2048
