"""examples/git_workflow.py end to end: a bare repository served by
`git daemon` on 127.0.0.1, cloned inside a VM (user-mode networking, the
host is 10.0.2.2 there), one file copied back out.

NEEDS the guest root filesystem with git: scripts/build-image.sh --rootfs.
Without it this test fails and says so."""
import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import REPO, git, qemu_pids_for, require_image


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_repo(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("# demo\nserved from the host\n")
    (work / "hello.sh").write_text("echo hello\n")
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid",
        "commit", "-q", "-m", "first", cwd=work)
    base = tmp_path / "srv"
    base.mkdir()
    git("clone", "-q", "--bare", str(work), str(base / "demo.git"))
    port = free_port()
    d = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                          "--base-path=%s" % base, "--listen=127.0.0.1",
                          "--port=%d" % port, str(base)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if d.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("git daemon did not start: %s" % d.stderr.read())
                time.sleep(0.05)
        yield port
    finally:
        d.terminate()
        d.wait(10)


@pytest.fixture
def own_state_dir():
    # Not the session's state dir: the shared exec VM lives there, and this
    # test checks that the example left no VMM of its own behind. Short
    # path: Unix socket paths inside must stay under 108 bytes.
    d = tempfile.mkdtemp(prefix="aeth-gw-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_example_clones_over_user_networking(served_repo, tmp_path, own_state_dir,
                                              monkeypatch, capsys):
    img = require_image(rootfs=True)
    state_dir = own_state_dir
    monkeypatch.setenv("AETH_STATE_DIR", state_dir)
    spec = importlib.util.spec_from_file_location(
        "git_workflow", REPO / "examples" / "git_workflow.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "README.copy"
    rc = mod.main(["git://10.0.2.2:%d/demo.git" % served_repo,
                   "--file", "README.md", "--out", str(out),
                   "--rootfs", str(img / "rootfs.ext4")])
    assert rc == 0
    assert out.read_text() == "# demo\nserved from the host\n"
    printed = capsys.readouterr().out
    assert "first" in printed and "hello.sh" in printed
    assert "VM deleted" in printed
    assert not qemu_pids_for(state_dir)
