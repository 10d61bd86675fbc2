"""Shared fixtures: a private VM manager, one booted VM per module, the
services of scripts/services.sh.  Nothing here skips quietly: a missing
guest image or service fails the test with the command that fixes it."""
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

REPO = pathlib.Path(os.environ.get("AETH_SOURCE_ROOT")
                    or pathlib.Path(__file__).resolve().parents[3])


def image_dir():
    return pathlib.Path(os.environ.get("AETH_IMAGE_DIR")
                        or os.path.expanduser("~/.cache/aetherium/image"))


def require_image(rootfs=False):
    d = image_dir()
    need = ["vmlinux", "initrd.cpio"] + (["rootfs.ext4"] if rootfs else [])
    missing = [n for n in need if not (d / n).is_file()]
    if missing:
        pytest.fail("guest image incomplete in %s (missing %s): run "
                    "scripts/build-image.sh%s (or set AETH_IMAGE_DIR)"
                    % (d, ", ".join(missing), " --rootfs" if rootfs else ""),
                    pytrace=False)
    return d


def require_env(name):
    v = os.environ.get(name)
    if not v:
        pytest.fail("%s is not set: start the services with "
                    "`scripts/services.sh start && eval \"$(scripts/services.sh env)\"` "
                    "(the README's test command does this)" % name, pytrace=False)
    return v


def qemu_pids_for(state_dir):
    """PIDs of the VMM processes of state_dir's VMs: each carries its VM's
    state dir as AETH_VM_DIR in its environment (a jailer names it in its
    command line)."""
    d = str(state_dir).encode()
    marks = {"environ": b"AETH_VM_DIR=" + d + b"/", "cmdline": d + b"/vms/"}
    out = []
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        for what, mark in marks.items():
            try:
                if mark in (p / what).read_bytes():
                    out.append(int(p.name))
                    break
            except OSError:
                pass
    return out


@pytest.fixture(scope="session")
def state_dir():
    # Short path: Unix socket paths inside must stay under 108 bytes.
    d = tempfile.mkdtemp(prefix="aeth-py-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def vmm(state_dir):
    import aetherium
    require_image()
    m = aetherium.VMM(state_dir=state_dir, image_dir=str(image_dir()),
                      boot_timeout=60)
    yield m
    m.close()
    try:
        with aetherium.VMM(state_dir=state_dir) as again:
            again.reap(all=True)
    finally:
        left = qemu_pids_for(state_dir)
        assert not left, "VMM processes left behind: %s" % left


@pytest.fixture(scope="session")
def vm(vmm):
    """One booted VM shared by the exec and leak tests (TCG boots are slow)."""
    import aetherium
    with aetherium.VM(name="pytest", vmm=vmm) as v:
        yield v


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)
