"""TaskResult reads the vm:execute result fields: today's (exit_code,
stdout, stderr) and the richer ones (truncation, timed_out, signal,
duration_ms, base64 for output that is not UTF-8), defaulting when a
result lacks them.  No services needed: results are JSON rows."""
import base64
import json

import pytest

import aetherium
from aetherium import Task, TaskResult


def _result(res):
    return TaskResult(Task({"id": "t1", "type": "vm:execute",
                            "status": "completed", "result": res}))


def test_seed_result_defaults():
    r = _result({"vm_id": "v", "exit_code": 0, "stdout": "hi\n", "stderr": ""})
    assert (r.exit_code, r.stdout, r.stderr, r.vm_id) == (0, "hi\n", "", "v")
    assert r.stdout_bytes == b"hi\n" and r.stderr_bytes == b""
    assert not r.stdout_truncated and not r.stderr_truncated
    assert not r.timed_out and r.signal == 0
    assert r.duration_ms is None and r.duration is None and r.ok


def test_rich_result():
    r = _result({"exit_code": 143, "stdout": "x" * 10, "stderr": "",
                 "stdout_truncated": True, "stderr_truncated": False,
                 "timed_out": True, "signal": 15, "duration_ms": 1234})
    assert r.stdout_truncated and not r.stderr_truncated
    assert r.timed_out and r.signal == 15 and not r.ok
    assert r.duration_ms == 1234 and r.duration == 1.234
    assert "timed_out=True" in repr(r)


def test_binary_output_is_decoded_from_base64():
    raw = b"\xff\x00ok\x80"
    r = _result({"exit_code": 0, "stdout": raw.decode("utf-8", "replace"),
                 "stdout_b64": base64.b64encode(raw).decode(),
                 "stderr_b64": base64.b64encode(b"\xfe").decode()})
    assert r.stdout_bytes == raw and r.stderr_bytes == b"\xfe"
    assert r.stdout == raw.decode("utf-8", "replace")  # as recorded
    assert r.stderr == "\ufffd"  # no text recorded: decoded from the bytes


def test_bad_base64_is_an_error():
    with pytest.raises(aetherium.AetheriumError) as ei:
        _result({"exit_code": 0, "stdout_b64": "not base64!"})
    assert "stdout_b64" in str(ei.value)


def test_result_round_trips_as_json():
    row = {"exit_code": 1, "stdout": "", "stderr": "e", "signal": None}
    r = _result(json.loads(json.dumps(row)))
    assert r.signal == 0 and r.exit_code == 1 and not r.ok


def test_signal_as_number_or_name():
    assert _result({"signal": 9}).signal == 9
    assert _result({"signal": "15"}).signal == 15
    assert _result({"signal": "SIGKILL"}).signal == 9
    assert _result({"signal": "term"}).signal == 15
    assert _result({"signal": "nonsense"}).signal == 0
    assert _result({"signal": False}).signal == 0
