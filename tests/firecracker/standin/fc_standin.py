#!/usr/bin/python3
"""A strict local stand-in for the `firecracker` binary, for tests.

Firecracker cannot be installed on our machines (see docs/firecracker.md), so
the backend is tested against this program. It takes Firecracker's
command-line flags (`--api-sock PATH --id ID`), serves Firecracker's REST API
on the Unix socket PATH, and checks every request against Firecracker's
published swagger description (tests/firecracker/firecracker-api.yaml):
method, path, body fields, their types, enums, minimum/maximum and required
fields. Wrong requests get Firecracker's answer: 400 with a JSON body
`{"fault_message": "..."}`. It also keeps Firecracker's state rules: pre-boot
resources cannot be changed after InstanceStart, InstanceStart needs a boot
source, and files named in requests must exist.

After `PUT /vsock` it listens on `uds_path` and speaks the host side of
Firecracker's hybrid vsock: the host writes `CONNECT <port>\\n` and gets
`OK <host port>\\n` when the "guest" listens on that port, or the connection
closed without a reply when it does not (yet). The guest is a local process
(the aeth-agent serving on its stdin/stdout) started per connection with the
connection as its stdin and stdout. When that agent exits by itself
(exit code 0) while the host still holds the connection, the guest was shut
down, and the stand-in exits like Firecracker does when its guest reboots.

Knobs (environment, read at start):
  AETH_FC_STANDIN_GUEST        guest command (shell words); default
                               "$AETH_BUILD_ROOT/agent/aeth-agent --stdio"
  AETH_FC_STANDIN_LOG          append one JSON line per API call / vsock connect
  AETH_FC_STANDIN_SILENT       connects closed silently after InstanceStart
                               before the guest "listens" (default 2)
  AETH_FC_STANDIN_BOOT_MS      and ms after InstanceStart before it does (100)
  AETH_FC_STANDIN_NEVER_LISTEN=1  the guest never listens
  AETH_FC_STANDIN_NO_SOCKET=1  never create the API socket (hang instead)
  AETH_FC_STANDIN_IGNORE_CAD=1 SendCtrlAltDel does not end the process
  AETH_FC_STANDIN_FAULT=PATH   every PUT on PATH gets a 400 (fault injection)

Snapshots: PATCH /vm pauses and resumes; PUT /snapshot/create (paused,
Full only) writes the state file (the stand-in's JSON: machine, boot
source, drives, vsock) and a memory file of mem_size_mib MiB (sparse);
PUT /snapshot/load is refused after any other configuration (as
Firecracker: "pre-boot only", on a fresh process), needs exactly one of
mem_backend (File; Uffd is not emulated) and mem_file_path, checks the
memory file's size against the snapshot's, takes the vsock's uds_path
from vsock_override, and runs the VM with resume_vm. Its guest is again
a local agent per connection: the stand-in checks the calls, it has no
guest memory to restore.

Set by the jailer stand-in (jailer_standin.py) when it execs this program
in its chroot: AETH_FC_STANDIN_JAILED=1 (files named in requests must be
absolute paths inside the jail, never below the stand-in's own plumbing:
/usr, /bin, /lib, /lib64, /sbin, /.standin), AETH_FC_STANDIN_SPEC (the
spec's path in the jail) and AETH_FC_STANDIN_LOG_FD (the call log, opened
by the jailer before the chroot).
"""

import http.server
import json
import os
import re
import select
import shlex
import signal
import socket
import socketserver
import subprocess
import sys
import ctypes
import queue
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_PATH = (os.environ.get("AETH_FC_STANDIN_SPEC") or
             os.path.join(os.path.dirname(HERE), "firecracker-api.yaml"))
JAILED = os.environ.get("AETH_FC_STANDIN_JAILED") == "1"
# What only the stand-in has in its jail (see jailer_standin.py).
PLUMBING = ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/.standin")
VERSION = "1.17.0-dev"

# Resources that Firecracker only lets you change before InstanceStart.
PRE_BOOT = ("/boot-source", "/machine-config", "/drives/", "/vsock",
            "/network-interfaces/", "/cpu-config", "/logger", "/metrics",
            "/mmds/config", "/entropy", "/serial", "/pmem/", "/balloon")
# What this stand-in emulates beyond validation; the rest is refused honestly.
EMULATED = {("PUT", "/machine-config"), ("PUT", "/boot-source"),
            ("PUT", "/drives/{drive_id}"), ("PUT", "/vsock"),
            ("PUT", "/actions"), ("PUT", "/network-interfaces/{iface_id}"),
            ("PUT", "/serial"), ("PATCH", "/vm"), ("PUT", "/snapshot/create"),
            ("PUT", "/snapshot/load"),
            ("GET", "/"), ("GET", "/version"),
            ("GET", "/machine-config"), ("GET", "/vm/config")}


def jail_check(what, path):
    """A jailed Firecracker sees only its chroot; the stand-in's own
    plumbing there is not part of it."""
    if not JAILED:
        return
    norm = os.path.normpath(path)
    if (not path.startswith("/") or ".." in path.split("/") or
            any(norm == p or norm.startswith(p + "/") for p in PLUMBING)):
        raise Fault("The %s cannot be opened: No such file or directory "
                    "(os error 2) (jailed stand-in: %s is not a path inside "
                    "the jail)" % (what, path))


def log(msg):
    sys.stderr.write("fc-standin[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


class Fault(Exception):
    """A request Firecracker would answer with 400."""


class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.routes = []
        for tmpl, ops in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)",
                              re.escape(tmpl)) + "$"
            self.routes.append((re.compile(rx), tmpl, ops))

    def resolve(self, schema):
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.doc["definitions"][name]
        return schema

    def route(self, method, path):
        for rx, tmpl, ops in self.routes:
            m = rx.match(path)
            if m and method.lower() in ops:
                return tmpl, ops[method.lower()], m.groupdict()
        raise Fault("Invalid request method and/or path: %s %s." %
                    (method, path))

    def check(self, schema, value, where):
        schema = self.resolve(schema)
        kind = schema.get("type")
        if kind == "object" or (kind is None and "properties" in schema):
            if not isinstance(value, dict):
                raise Fault("%s: invalid type: expected a JSON object" % where)
            props = schema.get("properties", {})
            for key in schema.get("required", []):
                if key not in value:
                    raise Fault("%s: missing field `%s`" % (where, key))
            for key, sub in value.items():
                if key not in props:
                    if schema.get("additionalProperties"):
                        continue
                    raise Fault("%s: unknown field `%s`, expected one of %s" %
                                (where, key,
                                 ", ".join("`%s`" % p for p in props)))
                self.check(props[key], sub, "%s.%s" % (where, key))
            return
        if kind == "string":
            if not isinstance(value, str):
                raise Fault("%s: invalid type: %r, expected a string" %
                            (where, value))
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise Fault("%s: invalid type: %r, expected an integer" %
                            (where, value))
            if "minimum" in schema and value < schema["minimum"]:
                raise Fault("%s: %d is below the minimum %d" %
                            (where, value, schema["minimum"]))
            if "maximum" in schema and value > schema["maximum"]:
                raise Fault("%s: %d is above the maximum %d" %
                            (where, value, schema["maximum"]))
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Fault("%s: invalid type: %r, expected a number" %
                            (where, value))
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise Fault("%s: invalid type: %r, expected a boolean" %
                            (where, value))
        elif kind == "array":
            if not isinstance(value, list):
                raise Fault("%s: invalid type: expected an array" % where)
            for i, item in enumerate(value):
                self.check(schema.get("items", {}), item, "%s[%d]" % (where, i))
        if "enum" in schema and value not in schema["enum"]:
            raise Fault("%s: unknown variant `%s`, expected one of %s" %
                        (where, value, ", ".join(
                            "`%s`" % e for e in schema["enum"])))


class Machine:
    """Firecracker's pre-boot configuration and run state."""

    def __init__(self, vm_id):
        self.vm_id = vm_id
        self.lock = threading.Lock()
        self.started_at = None
        self.boot_source = None
        self.machine = {"vcpu_count": 1, "mem_size_mib": 128, "smt": False}
        self.drives = {}
        self.nets = {}
        self.vsock = None
        self.listener = None
        self.children = []
        self.connects = 0
        self.next_port = 1073741824
        self.paused = False
        self.restored = False
        self.configured = False  # anything but logger/metrics was PUT

    def open_check(self, what, path, write=False):
        jail_check(what + " file", path)
        try:
            with open(path, "r+b" if write else "rb"):
                pass
        except OSError as e:
            raise Fault("The %s file cannot be opened: %s (os error %d)" %
                        (what, e.strerror, e.errno))

    def put(self, tmpl, params, body):
        if self.started_at is not None and tmpl.startswith(PRE_BOOT):
            raise Fault("The requested operation is not supported after "
                        "starting the microVM.")
        fault = os.environ.get("AETH_FC_STANDIN_FAULT")
        if fault and fault == tmpl.split("{")[0].rstrip("/"):
            raise Fault("injected fault on %s (AETH_FC_STANDIN_FAULT)" % tmpl)
        if tmpl == "/vm":
            self.patch_vm(body["state"])
            return
        if tmpl == "/snapshot/create":
            self.snapshot_create(body)
            return
        if tmpl == "/snapshot/load":
            self.snapshot_load(body)
            return
        if tmpl not in ("/logger", "/metrics"):
            self.configured = True
        if tmpl == "/machine-config":
            body = body or {}
            cfg = {"vcpu_count": body.get("vcpu_count"),
                   "mem_size_mib": body.get("mem_size_mib"),
                   "smt": body.get("smt", False)}
            if cfg["mem_size_mib"] is None or cfg["mem_size_mib"] < 1:
                raise Fault("The memory size (MiB) is either 0, or not a "
                            "multiple of the configured page size.")
            if cfg["smt"] and cfg["vcpu_count"] > 1 and cfg["vcpu_count"] % 2:
                raise Fault("The number of vCPUs must be 1 or an even number "
                            "when SMT is enabled.")
            self.machine = cfg
        elif tmpl == "/boot-source":
            self.open_check("kernel", body["kernel_image_path"])
            if "initrd_path" in body:
                self.open_check("initrd", body["initrd_path"])
            self.boot_source = body
        elif tmpl == "/drives/{drive_id}":
            if params["drive_id"] != body["drive_id"]:
                raise Fault("The id from the path does not match the id "
                            "from the body!")
            if "path_on_host" not in body or "is_read_only" not in body:
                raise Fault("Unable to create the block device: a virtio-block"
                            " drive needs path_on_host and is_read_only")
            self.open_check("block device", body["path_on_host"],
                            write=not body["is_read_only"])
            if body["is_root_device"] and any(
                    d["is_root_device"] for k, d in self.drives.items()
                    if k != body["drive_id"]):
                raise Fault("A root block device already exists!")
            self.drives[body["drive_id"]] = body
        elif tmpl == "/network-interfaces/{iface_id}":
            if params["iface_id"] != body["iface_id"]:
                raise Fault("The id from the path does not match the id "
                            "from the body!")
            # A real Firecracker opens the tap here; nothing to emulate.
            self.nets[body["iface_id"]] = body
        elif tmpl == "/vsock":
            self.set_vsock(body)
        elif tmpl == "/serial":
            # Firecracker opens (creates) the file for appending here; the
            # stand-in's guest writes nothing to its console.
            if "serial_out_path" in body:
                jail_check("serial output file", body["serial_out_path"])
                try:
                    with open(body["serial_out_path"], "ab"):
                        pass
                except OSError as e:
                    raise Fault("Unable to open the serial output file: %s "
                                "(os error %d)" % (e.strerror, e.errno))
            self.serial = body
        elif tmpl == "/actions":
            self.action(body["action_type"])
        else:
            raise Fault("the stand-in does not emulate PUT %s" % tmpl)

    def set_vsock(self, body):
        jail_check("vsock socket", body["uds_path"])
        if self.listener is not None:
            self.listener.close()
            os.unlink(self.vsock["uds_path"])
            self.listener = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(body["uds_path"])
        except OSError as e:
            sock.close()
            raise Fault("Cannot create backend for vsock device: Error "
                        "binding to the host-side Unix socket: %s (os error "
                        "%d)" % (e.strerror, e.errno))
        sock.listen(16)
        self.vsock = body
        self.listener = sock
        threading.Thread(target=self.accept_loop, args=(sock,),
                         daemon=True).start()

    def action(self, kind):
        if kind == "InstanceStart":
            if self.started_at is not None:
                raise Fault("The requested operation is not supported after "
                            "starting the microVM.")
            if self.boot_source is None:
                raise Fault("Cannot start microvm without kernel "
                            "configuration.")
            self.started_at = time.monotonic()
            print("[stand-in] guest 'booting' with boot_args: %s" %
                  self.boot_source.get("boot_args", ""), flush=True)
        elif kind == "SendCtrlAltDel":
            if self.started_at is None:
                raise Fault("The requested operation is not supported before "
                            "starting the microVM.")
            if os.environ.get("AETH_FC_STANDIN_IGNORE_CAD") != "1":
                # The guest reboots, which ends a Firecracker process.
                threading.Timer(0.05, shutdown, args=(0,)).start()
        else:
            raise Fault("the stand-in does not emulate action %s" % kind)

    def patch_vm(self, state):
        if self.started_at is None:
            raise Fault("The requested operation is not supported before "
                        "starting the microVM.")
        self.paused = state == "Paused"

    def snapshot_create(self, body):
        if self.started_at is None:
            raise Fault("The requested operation is not supported before "
                        "starting the microVM.")
        if not self.paused:
            raise Fault("Create snapshot error: Cannot save the microVM "
                        "state: the microVM must be paused (PATCH /vm "
                        "Paused) first")
        if body.get("snapshot_type", "Full") != "Full":
            raise Fault("Create snapshot error: Diff snapshots need dirty page "
                        "tracking (track_dirty_pages), which this VM has not")
        for what in ("snapshot_path", "mem_file_path"):
            jail_check("snapshot " + what, body[what])
        state = {"standin_snapshot": 1, "machine": self.machine,
                 "boot_source": self.boot_source, "drives": self.drives,
                 "vsock": self.vsock}
        try:
            with open(body["snapshot_path"], "w", encoding="utf-8") as f:
                json.dump(state, f)
            with open(body["mem_file_path"], "wb") as f:
                f.truncate(self.machine["mem_size_mib"] << 20)
        except OSError as e:
            raise Fault("Create snapshot error: cannot write %s: %s (os error "
                        "%d)" % (e.filename, e.strerror, e.errno))

    def snapshot_load(self, body):
        if self.started_at is not None or self.configured:
            raise Fault("Loading a microVM snapshot not allowed after "
                        "configuring boot-specific resources.")
        if ("mem_backend" in body) == ("mem_file_path" in body):
            raise Fault("Load snapshot error: exactly one of mem_backend and "
                        "mem_file_path must be given")
        if "mem_backend" in body:
            if body["mem_backend"]["backend_type"] != "File":
                raise Fault("the stand-in does not emulate the Uffd memory "
                            "backend")
            mem = body["mem_backend"]["backend_path"]
        else:
            mem = body["mem_file_path"]
        jail_check("snapshot state file", body["snapshot_path"])
        jail_check("memory file", mem)
        try:
            with open(body["snapshot_path"], encoding="utf-8") as f:
                state = json.load(f)
            size = os.stat(mem).st_size
        except (OSError, ValueError) as e:
            raise Fault("Load snapshot error: Failed to restore from snapshot: "
                        "%s" % e)
        if state.get("standin_snapshot") != 1:
            raise Fault("Load snapshot error: Failed to restore from snapshot: "
                        "not a snapshot file")
        if size != state["machine"]["mem_size_mib"] << 20:
            raise Fault("Load snapshot error: the memory file has %d bytes, the "
                        "snapshot's guest %d MiB" % (size,
                                                     state["machine"]["mem_size_mib"]))
        self.machine = state["machine"]
        self.boot_source = state["boot_source"]
        self.drives = state["drives"]
        vsock = dict(state["vsock"])
        if "vsock_override" in body:
            vsock["uds_path"] = body["vsock_override"]["uds_path"]
        self.set_vsock(vsock)
        self.restored = True
        self.configured = True
        self.started_at = time.monotonic()
        self.paused = not body.get("resume_vm", False)
        print("[stand-in] guest restored from %s" % body["snapshot_path"],
              flush=True)

    def info(self):
        state = ("Not started" if self.started_at is None else
                 "Paused" if self.paused else "Running")
        return {"app_name": "Firecracker", "id": self.vm_id,
                "state": state, "vmm_version": VERSION}

    def guest_port(self):
        args = (self.boot_source or {}).get("boot_args", "")
        m = re.search(r"(?:^|\s)aeth\.port=(\d+)", args)
        return int(m.group(1)) if m else 1024

    def guest_listening(self):
        if os.environ.get("AETH_FC_STANDIN_NEVER_LISTEN") == "1":
            return False
        silent = int(os.environ.get("AETH_FC_STANDIN_SILENT", "2"))
        boot_ms = int(os.environ.get("AETH_FC_STANDIN_BOOT_MS", "100"))
        self.connects += 1
        if self.paused:
            return False
        if self.restored:  # a restored guest listens already
            return True
        up = (time.monotonic() - self.started_at) * 1000 >= boot_ms
        return up and self.connects > silent

    def accept_loop(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve_vsock, args=(conn,),
                             daemon=True).start()

    def serve_vsock(self, conn):
        # Before InstanceStart the device is not polled: wait, as the
        # connection would sit in Firecracker's backlog.
        while self.started_at is None:
            time.sleep(0.01)
        conn.settimeout(5)
        line = b""
        try:
            while not line.endswith(b"\n") and len(line) < 64:
                chunk = conn.recv(1)
                if not chunk:
                    break
                line += chunk
        except OSError:
            pass
        m = re.match(rb"^CONNECT (\d+)\n$", line)
        with self.lock:
            ok = (m is not None and int(m.group(1)) == self.guest_port()
                  and self.guest_listening())
            port = self.next_port
            self.next_port += 1
        record({"vsock": line.decode(errors="replace").strip(),
                "result": "OK" if ok else "closed"})
        if not ok:
            conn.close()
            return
        conn.settimeout(None)
        conn.sendall(b"OK %d\n" % port)
        cmd = os.environ.get("AETH_FC_STANDIN_GUEST") or "%s/agent/aeth-agent --stdio" % os.environ.get("AETH_BUILD_ROOT", "build")
        result = queue.Queue()
        SPAWN_QUEUE.put((shlex.split(cmd), conn.fileno(), result))
        child = result.get()
        if isinstance(child, OSError):
            log("cannot start the guest %r: %s" % (cmd, child))
            conn.close()
            return
        with self.lock:
            self.children.append(child)
        code = child.wait()
        # The agent ended while the host still holds the connection: it
        # was asked to shut the guest down. A guest reboot/power-off ends
        # the VMM (with the agent's reboot and boot arg reboot=k).
        host_open = not host_closed(conn)
        conn.close()
        record({"guest": "exited", "code": code, "host_open": host_open})
        if code == 0 and host_open:
            log("the guest agent shut the guest down: exiting like a VMM "
                "whose guest rebooted")
            shutdown(0)


def host_closed(conn):
    p = select.poll()
    p.register(conn, select.POLLRDHUP | select.POLLHUP)
    return bool(p.poll(0))


MACHINE = None
LOG_LOCK = threading.Lock()
SPAWN_QUEUE = queue.Queue()
PR_SET_PDEATHSIG = 1


def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG,
                                            signal.SIGKILL, 0, 0, 0)


def spawner():
    """Starts the guests. PR_SET_PDEATHSIG fires when the *thread* that
    forked ends, so one thread that lives as long as the process does it:
    a SIGKILLed stand-in then takes its guests with it, like a VMM."""
    while True:
        argv, fd, result = SPAWN_QUEUE.get()
        try:
            result.put(subprocess.Popen(argv, stdin=fd, stdout=fd,
                                        close_fds=True,
                                        preexec_fn=die_with_parent))
        except OSError as e:
            result.put(e)


def record(entry):
    path = os.environ.get("AETH_FC_STANDIN_LOG")
    fd = os.environ.get("AETH_FC_STANDIN_LOG_FD")
    if fd:
        with LOG_LOCK:
            os.write(int(fd), (json.dumps(entry) + "\n").encode())
        return
    if not path:
        return
    with LOG_LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def shutdown(code):
    if MACHINE is not None:
        with MACHINE.lock:
            for child in MACHINE.children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
    os._exit(code)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    spec = None

    def address_string(self):
        return "unix"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def handle_any(self):
        body = None
        entry = {"method": self.command, "path": self.path}
        try:
            if self.headers.get("Transfer-Encoding"):
                raise Fault("Transfer-Encoding is not supported; send "
                            "Content-Length")
            length = self.headers.get("Content-Length")
            raw = b""
            if length is not None:
                if not length.isdigit() or int(length) > 65536:
                    raise Fault("invalid Content-Length %r" % length)
                raw = self.rfile.read(int(length))
            elif self.command in ("PUT", "PATCH"):
                raise Fault("a request body needs a Content-Length header")
            tmpl, op, params = self.spec.route(self.command, self.path)
            body_param = [p for p in op.get("parameters", [])
                          if p.get("in") == "body"]
            if raw:
                if not body_param:
                    raise Fault("%s %s takes no body" % (self.command,
                                                         self.path))
                if self.headers.get("Content-Type", "").split(";")[0] not in \
                        ("application/json", ""):
                    raise Fault("unsupported Content-Type %r" %
                                self.headers.get("Content-Type"))
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise Fault("An error occurred when deserializing the json"
                                " body of a request: %s" % e)
                entry["body"] = body
                self.spec.check(body_param[0]["schema"], body, "body")
            elif body_param and body_param[0].get("required"):
                raise Fault("Empty request body: %s %s needs one" %
                            (self.command, self.path))
            if (self.command, tmpl) not in EMULATED:
                raise Fault("the stand-in does not emulate %s %s" %
                            (self.command, tmpl))
            with MACHINE.lock:
                if self.command == "GET":
                    out = self.get(tmpl)
                    entry["status"] = 200
                    record(entry)
                    self.reply(200, out)
                    return
                MACHINE.put(tmpl, params, body)
            entry["status"] = 204
            record(entry)
            self.reply(204)
        except Fault as e:
            entry["status"] = 400
            entry["fault"] = str(e)
            record(entry)
            log("400 %s %s: %s" % (self.command, self.path, e))
            self.reply(400, {"fault_message": str(e)})

    def get(self, tmpl):
        if tmpl == "/":
            return MACHINE.info()
        if tmpl == "/version":
            return {"firecracker_version": VERSION}
        if tmpl == "/machine-config":
            return MACHINE.machine
        return {"boot-source": MACHINE.boot_source,
                "machine-config": MACHINE.machine,
                "drives": list(MACHINE.drives.values()),
                "vsock": MACHINE.vsock}

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def parse_args(argv):
    opts = {"api_sock": None, "id": "anonymous-instance"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--version":
            print("Firecracker v%s (aetherium test stand-in)" % VERSION)
            sys.exit(0)
        if arg in ("--api-sock", "--id") and i + 1 < len(argv):
            opts[arg[2:].replace("-", "_")] = argv[i + 1]
            i += 2
            continue
        # What the jailer passes: times it measured (microseconds).
        if arg in ("--start-time-us", "--start-time-cpu-us",
                   "--parent-cpu-time-us") and i + 1 < len(argv) and \
                argv[i + 1].isdigit():
            i += 2
            continue
        sys.stderr.write("Arguments parsing error: Found argument '%s' which "
                         "wasn't expected (stand-in knows --api-sock, --id, "
                         "--start-time-us, --start-time-cpu-us, "
                         "--parent-cpu-time-us, --version)\n" % arg)
        sys.exit(153)
    if opts["api_sock"] is None:
        sys.stderr.write("Arguments parsing error: --api-sock is required "
                         "(the stand-in has no --no-api mode)\n")
        sys.exit(153)
    return opts


def main():
    global MACHINE
    opts = parse_args(sys.argv[1:])
    signal.signal(signal.SIGTERM, lambda *_: shutdown(0))
    signal.signal(signal.SIGINT, lambda *_: shutdown(0))
    if os.environ.get("AETH_FC_STANDIN_NO_SOCKET") == "1":
        log("AETH_FC_STANDIN_NO_SOCKET=1: not creating %s" % opts["api_sock"])
        while True:
            time.sleep(3600)
    Handler.spec = Spec(SPEC_PATH)
    threading.Thread(target=spawner, daemon=True).start()
    MACHINE = Machine(opts["id"])
    try:
        jail_check("API socket", opts["api_sock"])
    except Fault as e:
        sys.stderr.write("Failed to open the API socket at: %s: %s\n" %
                         (opts["api_sock"], e))
        sys.exit(1)
    if os.path.exists(opts["api_sock"]):
        sys.stderr.write("Failed to open the API socket at: %s. Check that it"
                         " is not already used.\n" % opts["api_sock"])
        sys.exit(1)
    server = Server(opts["api_sock"], Handler)
    log("serving the Firecracker API (stand-in) on %s, id %s" %
        (opts["api_sock"], opts["id"]))
    try:
        server.serve_forever()
    finally:
        shutdown(0)


if __name__ == "__main__":
    main()
