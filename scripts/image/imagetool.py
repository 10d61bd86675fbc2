#!/usr/bin/python3
"""Helpers for scripts/build-image.sh (run with Debian's /usr/bin/python3).

Subcommands:
  vmlinux BZIMAGE OUT        extract the uncompressed ELF vmlinux from a bzImage
  modules MODDIR NAME...     print the .ko paths needed for NAMEs, dependencies
                             first (reads each module's .modinfo "depends=")
  cpio SPEC OUT              write an uncompressed newc archive from a spec file
  manifest ...               write manifest.json (see cmd_manifest)

No root needed: the cpio writer sets owner 0:0 and creates device nodes itself,
with a fixed mtime so the same inputs give the same bytes.
"""
import hashlib
import json
import lzma
import os
import struct
import subprocess
import sys


def die(msg):
    sys.stderr.write("build-image: error: %s\n" % msg)
    sys.exit(1)


# ---------------------------------------------------------------- vmlinux
def cmd_vmlinux(bzimage, out):
    data = open(bzimage, "rb").read()
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        die("%s is not a bzImage (no HdrS setup header)" % bzimage)
    setup_sects = data[0x1F1] or 4
    off, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + off
    payload = data[start:start + length]
    if len(payload) != length or length < 8:
        die("%s: payload (offset %d, length %d) is outside the file" % (bzimage, start, length))
    magic = payload[:4]
    # The kernel's build appends the uncompressed size (le32) after the stream.
    want = struct.unpack_from("<I", payload, length - 4)[0]
    if magic == b"\x02\x21\x4c\x18" or magic == b"\x04\x22\x4d\x18":
        # lz4 legacy frame (what the kernel uses) or modern frame; lz4 -d reads
        # both, but stop it from reading the appended size as another block.
        r = subprocess.run(["lz4", "-d", "-c"], input=payload[:-4], capture_output=True)
        if r.returncode != 0:
            die("lz4 -d failed on the kernel payload: %s" % r.stderr.decode(errors="replace"))
        elf = r.stdout
    elif magic[:2] == b"\x1f\x8b":
        import gzip
        elf = gzip.decompress(payload[:-4])
    elif magic[:4] == b"\xfd7zX":
        elf = lzma.decompress(payload[:-4])
    else:
        die("%s: unknown kernel payload compression (magic %s): install lz4 "
            "or add a decompressor here" % (bzimage, magic.hex()))
    if len(elf) != want:
        die("vmlinux is %d bytes but the kernel says %d" % (len(elf), want))
    if elf[:4] != b"\x7fELF":
        die("extracted payload is not an ELF file")
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(elf)
    os.rename(tmp, out)


# ---------------------------------------------------------------- modules
def modinfo(path):
    """Return the .modinfo section of a .ko (ELF64 little endian) as a dict of lists."""
    data = open(path, "rb").read()
    if path.endswith(".xz"):
        data = lzma.decompress(data)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        die("%s is not an ELF64 kernel module" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def sh(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    strtab = sh(shstrndx)
    out = {}
    for i in range(shnum):
        s = sh(i)
        name_off = strtab[4] + s[0]
        name = data[name_off:data.index(b"\0", name_off)]
        if name == b".modinfo":
            for item in data[s[4]:s[4] + s[5]].split(b"\0"):
                if b"=" in item:
                    k, v = item.decode(errors="replace").split("=", 1)
                    out.setdefault(k, []).append(v)
    return out


def norm(name):
    return name.replace("-", "_")


def cmd_modules(moddir, names):
    index = {}
    for root, _dirs, files in os.walk(moddir):
        for f in files:
            for ext in (".ko", ".ko.xz"):
                if f.endswith(ext):
                    index[norm(f[:-len(ext)])] = os.path.join(root, f)
    builtin = set()
    bpath = os.path.join(moddir, "modules.builtin")
    if os.path.exists(bpath):
        for line in open(bpath):
            base = os.path.basename(line.strip())
            if base.endswith(".ko"):
                builtin.add(norm(base[:-3]))
    order, seen = [], set()

    def visit(name, chain):
        name = norm(name)
        if name in seen or name in builtin:
            return
        if name in chain:
            die("module dependency cycle: %s" % " -> ".join(chain + [name]))
        path = index.get(name)
        if path is None:
            die("kernel module %s not found under %s (and not built in)" % (name, moddir))
        for dep in modinfo(path).get("depends", []):
            for d in filter(None, dep.split(",")):
                visit(d, chain + [name])
        seen.add(name)
        order.append(path)
    for n in names:
        visit(n, [])
    for p in order:
        print(p)


# ---------------------------------------------------------------- cpio
def cpio_entry(out, ino, name, mode, data=b"", rdev=(0, 0), mtime=0):
    name_b = name.encode() + b"\0"
    hdr = "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X" % (
        ino, mode, 0, 0, 1, mtime, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
    out.write(hdr.encode())
    out.write(name_b)
    out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))


def cmd_cpio(spec, outpath):
    """spec lines: 'dir PATH MODE' | 'file PATH MODE SRC' | 'slink PATH TARGET'
    | 'nod PATH MODE c MAJOR MINOR' (gen_init_cpio's format, octal modes)."""
    tmp = outpath + ".tmp"
    ino = 1
    with open(tmp, "wb") as out:
        for lineno, line in enumerate(open(spec), 1):
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            kind, path = f[0], f[1].lstrip("/")
            if kind == "dir":
                cpio_entry(out, ino, path, 0o040000 | int(f[2], 8))
            elif kind == "file":
                data = open(f[3], "rb").read()
                cpio_entry(out, ino, path, 0o100000 | int(f[2], 8), data)
            elif kind == "slink":
                cpio_entry(out, ino, path, 0o120777, f[2].encode())
            elif kind == "nod":
                cpio_entry(out, ino, path, 0o020000 | int(f[2], 8),
                           rdev=(int(f[4]), int(f[5])))
            else:
                die("%s:%d: unknown entry %r" % (spec, lineno, kind))
            ino += 1
        cpio_entry(out, ino, "TRAILER!!!", 0)
    os.rename(tmp, outpath)


# ---------------------------------------------------------------- manifest
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_manifest(outdir, kv):
    """kv: key=value pairs; files=a,b lists output files to hash; keys ending
    in _json are parsed as JSON."""
    m = {"format": 1}
    files = []
    for item in kv:
        k, v = item.split("=", 1)
        if k == "files":
            files = [x for x in v.split(",") if x]
        elif k.endswith("_json"):
            m[k[:-5]] = json.loads(v)
        else:
            m[k] = v
    m["files"] = {}
    for f in files:
        p = os.path.join(outdir, f)
        size = os.path.getsize(p)
        # The root disk is big and sparse: its inputs are recorded instead.
        m["files"][f] = {"size": size, "sha256": sha256(p) if size < (256 << 20) else None}
    tmp = os.path.join(outdir, "manifest.json.tmp")
    with open(tmp, "w") as fp:
        json.dump(m, fp, indent=2, sort_keys=True)
        fp.write("\n")
    os.rename(tmp, os.path.join(outdir, "manifest.json"))


def cmd_get(path, key):
    """Print manifest value for a dotted key, empty if missing."""
    try:
        v = json.load(open(path))
        for k in key.split("."):
            v = v[k]
    except (OSError, ValueError, KeyError, TypeError):
        return
    print(v if not isinstance(v, (dict, list)) else json.dumps(v))


def main(argv):
    if len(argv) < 2:
        die("usage: imagetool.py vmlinux|modules|cpio|manifest|get|sha256 ...")
    cmd, args = argv[1], argv[2:]
    if cmd == "vmlinux" and len(args) == 2:
        cmd_vmlinux(*args)
    elif cmd == "modules" and len(args) >= 2:
        cmd_modules(args[0], args[1:])
    elif cmd == "cpio" and len(args) == 2:
        cmd_cpio(*args)
    elif cmd == "manifest" and len(args) >= 1:
        cmd_manifest(args[0], args[1:])
    elif cmd == "get" and len(args) == 2:
        cmd_get(*args)
    elif cmd == "sha256" and len(args) == 1:
        print(sha256(args[0]))
    else:
        die("bad arguments for %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
