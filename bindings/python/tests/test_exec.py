"""Commands and files in one real VM (TCG guest; one boot per module)."""
import hashlib
import threading

import pytest

import aetherium


def test_echo(vm):
    r = vm.exec(["echo", "hi"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "hi\n", "")
    assert r.stdout_bytes == b"hi\n" and r.ok and r.signal == 0


def test_vm_attributes(vm):
    assert vm.status == "running"
    assert vm.pid > 0 and vm.accel in ("kvm", "tcg") and vm.backend == "qemu"
    assert repr(vm).startswith("<aetherium.VM ")
    vm.ping()


def test_exit_code_stderr_and_check(vm):
    r = vm.exec(["sh", "-c", "echo oops >&2; exit 3"])
    assert r.exit_code == 3 and r.stderr == "oops\n" and not r.ok
    with pytest.raises(aetherium.CommandFailed) as ei:
        vm.exec(["sh", "-c", "echo bad >&2; exit 4"], check=True)
    assert ei.value.result.exit_code == 4 and "bad" in str(ei.value)


def test_string_runs_in_a_shell(vm):
    assert vm.exec("echo a && echo b").stdout == "a\nb\n"


def test_stdin_env_cwd(vm):
    assert vm.exec(["cat"], stdin=b"in\x00put").stdout_bytes == b"in\x00put"
    assert vm.exec(["cat"], stdin="text").stdout == "text"
    r = vm.exec(["sh", "-c", 'echo "$FOO:$BAZ"'], env={"FOO": "bar", "BAZ": "q x"})
    assert r.stdout == "bar:q x\n"
    assert vm.exec(["pwd"], cwd="/tmp").stdout == "/tmp\n"


def test_timeout_kills(vm):
    r = vm.exec(["sleep", "30"], timeout=0.5)
    assert r.timed_out and not r.ok
    assert r.duration < 10


def test_missing_command(vm):
    r = vm.exec(["no-such-command-xyz"])
    assert r.exit_code == 127 and r.exec_errno != 0
    assert "no-such-command-xyz" in r.stderr


def test_bytes_and_bad_utf8(vm):
    r = vm.exec(["printf", "\\377ok"])
    assert r.stdout_bytes == b"\xffok"
    assert r.stdout == "\ufffdok"


def test_stream_iterator(vm):
    chunks = []
    with vm.exec_stream(["sh", "-c", "echo out; echo err >&2; echo out2"]) as p:
        for stream, chunk in p:
            chunks.append((stream, chunk))
        r = p.wait()
    assert r.exit_code == 0
    out = b"".join(c for s, c in chunks if s == "stdout")
    err = b"".join(c for s, c in chunks if s == "stderr")
    assert (out, err) == (b"out\nout2\n", b"err\n")


def test_stream_callback_and_kill_from_callback(vm):
    got = []
    r = vm.exec(["sh", "-c", "echo one; echo two"],
                on_output=lambda s, c: got.append((s, c)))
    assert r.exit_code == 0 and b"".join(c for _, c in got) == b"one\ntwo\n"
    assert r.stdout == "one\ntwo\n"  # streamed and also kept
    # returning aetherium.STOP kills the command
    r = vm.exec(["sh", "-c", "echo first; sleep 30; echo never"],
                on_output=lambda s, c: aetherium.STOP)
    assert r.signal != 0 or r.exit_code != 0
    assert "never" not in r.stdout and r.duration < 25
    # an exception in the callback kills it and comes out here
    with pytest.raises(ZeroDivisionError):
        vm.exec(["sh", "-c", "echo x; sleep 30"], on_output=lambda s, c: 1 / 0)


def test_spawn_interactive(vm):
    with vm.spawn(["cat"]) as p:
        p.write(b"hello ")
        p.write("world")
        p.close_stdin()
        data = b"".join(c for s, c in p)
        assert data == b"hello world"
        assert p.wait().exit_code == 0
        assert p.result is p.wait()


def test_spawn_kill(vm):
    p = vm.spawn(["sleep", "60"])
    p.kill()
    r = p.wait()
    assert r.signal != 0 or r.exit_code != 0
    p.close()


def test_files(vm):
    blob = bytes(range(256)) * 1000
    vm.put_file("/tmp/blob", blob, mode=0o600)
    assert vm.get_file("/tmp/blob") == blob
    assert vm.exec(["stat", "-c", "%a %s", "/tmp/blob"]).stdout == "600 256000\n"
    vm.put_file("/tmp/t.txt", "text\n")
    assert vm.exec(["cat", "/tmp/t.txt"]).stdout == "text\n"
    with pytest.raises(aetherium.NotFound):
        vm.get_file("/nonexistent/file")
    with pytest.raises(aetherium.NotFound):
        vm.put_file("/nonexistent-dir/x", b"x")
    with pytest.raises(aetherium.TooBig):
        vm.get_file("/tmp/blob", max_size=100)


def test_download(vm, tmp_path):
    # 17 MiB: past get_file's default cap, streamed by download()
    assert vm.exec(["dd", "if=/dev/urandom", "of=/tmp/big", "bs=1M",
                    "count=17"]).exit_code == 0
    digest = vm.exec(["md5sum", "/tmp/big"]).stdout.split()[0]
    with pytest.raises(aetherium.TooBig):
        vm.get_file("/tmp/big")
    local = tmp_path / "big"
    assert vm.download("/tmp/big", str(local)) == 17 << 20
    assert hashlib.md5(local.read_bytes()).hexdigest() == digest
    with pytest.raises(aetherium.TooBig):
        vm.download("/tmp/big", str(tmp_path / "small"), max_size=1 << 20)
    assert not (tmp_path / "small").exists()
    vm.exec(["rm", "/tmp/big"])


def test_threads_share_one_vm(vm):
    results, errors = {}, []

    def work(i):
        try:
            results[i] = vm.exec(["sh", "-c", "echo %d" % i]).stdout
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert results == {i: "%d\n" % i for i in range(6)}
