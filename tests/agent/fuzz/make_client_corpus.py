#!/usr/bin/env python3
"""Write the seed corpus of the client fuzz target (fuzz_client.c) into
client_corpus/: replies an agent sends (docs/protocol.md), valid ones
first, for the requests the target has in flight: id 1 hello, 2 ping,
3 exec, 4 file get (max_len 4096), 5 file put. (The target feeds a
file in pieces of 1 + its first byte % 17 bytes: "A" gives 15.)

    tests/agent/fuzz/make_client_corpus.py   # rewrites client_corpus/
"""
import os
import struct

HELLO_OK, PONG, ERROR, OK, STARTED, OUTPUT, EXIT, STDIN_ACK, GET_DATA = (
    2, 4, 5, 6, 17, 20, 21, 24, 36)
F = dict(version=1, info=2, window=9, data=10, stream=11, exit_code=12,
         signal=13, timed_out=14, stdout_trunc=15, stderr_trunc=16,
         duration_ms=17, pid=18, size=21, code=23, message=24, exec_errno=26)
HELLO, PING, EXEC, GET, PUT = 1, 2, 3, 4, 5


def field(name, value):
    if isinstance(value, int):
        v = struct.pack(">q", value)
    elif isinstance(value, str):
        v = value.encode() + b"\0"
    else:
        v = bytes(value)
    return struct.pack(">BI", F[name], len(v)) + v


def frame(type_, id_, **fields):
    payload = b"".join(field(k, v) for k, v in fields.items())
    return b"AE\x01" + struct.pack(">BII", type_, id_, len(payload)) + payload


def started(window=262144):
    return frame(STARTED, EXEC, pid=57, window=window)


def exit_(code=0, **kw):
    return frame(EXIT, EXEC, exit_code=code, signal=0, timed_out=0,
                 stdout_trunc=0, stderr_trunc=0, duration_ms=12, **kw)


SEEDS = {
    "hello_ping": frame(HELLO_OK, HELLO, version=1,
                        info='{"agent_version":"0.1.0","protocol":1}')
    + frame(PONG, PING),
    "exec_output_exit": started()
    + frame(OUTPUT, EXEC, stream=1, data=b"hi\n")
    + frame(OUTPUT, EXEC, stream=2, data=b"done\n")
    + exit_(0),
    "exec_stdin_ack": started(window=3) + frame(STDIN_ACK, EXEC, window=3)
    + frame(OUTPUT, EXEC, stream=1, data=b"abc") + exit_(0),
    "exec_missing_binary": started()
    + frame(OUTPUT, EXEC, stream=2,
            data=b"aeth-agent: cannot run 'nope': No such file or directory\n")
    + exit_(127, exec_errno=2),
    "exec_timed_out": started() + frame(EXIT, EXEC, exit_code=-1, signal=9,
                                        timed_out=1, duration_ms=3000),
    "exec_refused": frame(ERROR, EXEC, code=-9,
                          message="too many commands (64): try again"),
    "get": frame(GET_DATA, GET, data=b"aetherium\n") + frame(OK, GET, size=10),
    "get_chunks": frame(GET_DATA, GET, data=b"x" * 2048)
    + frame(GET_DATA, GET, data=b"y" * 2048) + frame(OK, GET, size=4096),
    "get_too_much": frame(GET_DATA, GET, data=b"z" * 4000)
    + frame(GET_DATA, GET, data=b"z" * 200) + frame(OK, GET, size=4200),
    "get_not_found": frame(ERROR, GET, code=-3,
                           message="/no/such/file: No such file or directory"),
    "put_ok": frame(OK, PUT, size=5),
    "errors_control_bytes": frame(ERROR, PING, code=-5,
                                  message="evil\x1b[2J\r\nline2\x07")
    + frame(ERROR, HELLO, code=42, message="a positive code"),
    "stream_error": frame(ERROR, 0, code=-8, message="bad frame header"),
    "late_frames": started() + exit_(3) + exit_(4)
    + frame(OUTPUT, EXEC, stream=1, data=b"late") + frame(PONG, PING)
    + frame(PONG, PING),
    "unknown_type_and_id": frame(99, EXEC, data=b"?")
    + frame(OUTPUT, 77, stream=1, data=b"nobody")
    + frame(GET_DATA, EXEC, data=b"not a get"),
    "everything": frame(HELLO_OK, HELLO, version=1, info="{}") + started()
    + frame(GET_DATA, GET, data=b"part") + frame(PONG, PING)
    + frame(OUTPUT, EXEC, stream=1, data=b"o" * 1000)
    + frame(OK, PUT, size=0) + frame(OK, GET, size=4) + exit_(0),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "client_corpus")
    os.makedirs(out, exist_ok=True)
    for name, body in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(body)


if __name__ == "__main__":
    main()
