#!/usr/bin/env bash
# Build the Aetherium guest image from Debian packages only.
#
#   scripts/build-image.sh [--out DIR] [--agent PATH] [--rootfs] [--force]
#                          [--modules "m1 m2 ..."] [--kernel-package PKG]
#
# Produces in OUT (default ${AETH_IMAGE_DIR:-$HOME/.cache/aetherium/image}):
#   vmlinux        uncompressed ELF kernel (PVH-bootable by QEMU, Firecracker)
#   initrd.cpio    uncompressed newc initramfs, /init = the aeth-agent
#   rootfs.ext4    only with --rootfs: Debian minbase + git, agent at /usr/sbin
#   manifest.json  what went in; the build is skipped while inputs_hash matches
# Downloads (apt-get download, no root-owned system changes) are cached in
# OUT/debs. See docs/image.md.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$REPO/scripts/image"
PY=/usr/bin/python3
TOOL="$HERE/imagetool.py"

OUT="${AETH_IMAGE_DIR:-$HOME/.cache/aetherium/image}"
AGENT="${AETH_AGENT_BIN:-$REPO/build/agent/aeth-agent}"
ROOTFS=0
FORCE=0
KPKG=""
# Load order roots; imagetool resolves each module's "depends=" first.
# ext4 is built into Debian's cloud kernel (then it is skipped); listed so a
# kernel with modular ext4 still gets crc16/mbcache/jbd2/ext4.
MODULES="virtio virtio_ring virtio_mmio virtio_console virtio_blk virtio_balloon failover net_failover virtio_net vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport ext4"
# Used by image/rootfs.sh (sourced for --rootfs).
# shellcheck disable=SC2034
SUITE=bookworm
# shellcheck disable=SC2034
MIRROR=http://deb.debian.org/debian
# shellcheck disable=SC2034
ROOTFS_SIZE_MB=0   # 0 = content size + headroom

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT=$2; shift 2 ;;
	--out=*) OUT=${1#*=}; shift ;;
	--agent) AGENT=$2; shift 2 ;;
	--agent=*) AGENT=${1#*=}; shift ;;
	--rootfs) ROOTFS=1; shift ;;
	--force) FORCE=1; shift ;;
	--modules) MODULES=$2; shift 2 ;;
	--kernel-package) KPKG=$2; shift 2 ;;
	--rootfs-size-mb) ROOTFS_SIZE_MB=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "build-image: unknown argument $1" >&2; usage 2 >&2 ;;
	esac
done

T0=$(date +%s%N)
say() {
	local ds=$((($(date +%s%N) - T0) / 100000000))
	printf 'build-image: [%3d.%ds] %s\n' $((ds / 10)) $((ds % 10)) "$*"
}
die() { echo "build-image: error: $*" >&2; exit 1; }

for t in apt-get apt-cache dpkg dpkg-deb lz4 "$PY"; do
	command -v "$t" >/dev/null || die "$t not found: run scripts/setup.sh (installs lz4, cpio, busybox-static, e2fsprogs)"
done

[ -f "$AGENT" ] || die "agent binary not found at $AGENT: build it with 'meson compile -C build' (or pass --agent PATH / set AETH_AGENT_BIN)"
AGENT=$(readlink -f "$AGENT")
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
DEBS="$OUT/debs"
WORK="$OUT/work"
mkdir -p "$DEBS" "$WORK"

# ---- inputs -----------------------------------------------------------------
# One apt-cache call (each costs ~1 s): "pkg candidate-version" per line.
policy() {
	apt-cache policy "$@" 2>/dev/null | awk '/^[^ ]+:$/ {p=substr($1,1,length($1)-1)}
		/Candidate:/ && $2 != "(none)" {print p, $2}'
}
# apt's candidates only change with its package lists: while they are the ones
# the manifest saw, reuse its versions (apt-cache costs seconds on a busy box).
APT_STAMP=$({ stat -c '%n %s %Y' /var/lib/apt/lists/*Packages* /etc/apt/sources.list \
	/etc/apt/sources.list.d/* /etc/apt/preferences.d/* 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)
MANIFEST="$OUT/manifest.json"
if [ -z "$KPKG" ] && [ "$FORCE" = 0 ] && [ -f "$MANIFEST" ] &&
	[ "$("$PY" "$TOOL" get "$MANIFEST" apt_stamp)" = "$APT_STAMP" ]; then
	KPKG=$("$PY" "$TOOL" get "$MANIFEST" kernel_package)
	KVER_DEB=$("$PY" "$TOOL" get "$MANIFEST" kernel_deb_version)
	BBVER_DEB=$("$PY" "$TOOL" get "$MANIFEST" busybox_deb_version)
	APT_CACHED=1
	if [ -z "$KPKG" ] || [ -z "$KVER_DEB" ] || [ -z "$BBVER_DEB" ]; then
		APT_CACHED=0; KPKG=""
	fi
fi
if [ "${APT_CACHED:-0}" = 1 ]; then
	:
elif [ -z "$KPKG" ]; then
	# Newest 6.1 cloud kernel apt knows about (highest ABI number with a candidate).
	mapfile -t KCANDS < <(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
		grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' || true)
	[ ${#KCANDS[@]} -gt 0 ] || die "apt knows no linux-image-6.1.0-*-cloud-amd64 package: run 'apt-get update' (as root) and retry"
else
	KCANDS=("$KPKG")
fi
if [ "${APT_CACHED:-0}" != 1 ]; then
	VERS=$(policy busybox-static "${KCANDS[@]}")
	BBVER_DEB=$(awk '$1 == "busybox-static" {print $2}' <<<"$VERS")
	[ -n "$BBVER_DEB" ] || die "no installable busybox-static: run 'apt-get update' (as root) and retry"
	read -r KPKG KVER_DEB < <(grep '^linux-image' <<<"$VERS" | sort -t- -k4,4nr | head -1) || true
	[ -n "${KVER_DEB:-}" ] || die "no installable ${KCANDS[*]}: run 'apt-get update' (as root) and retry"
fi
KREL=${KPKG#linux-image-}

AGENT_SHA=$("$PY" "$TOOL" sha256 "$AGENT")
SCRIPT_SHA=$(cat "$0" "$TOOL" "$HERE/boot-probe.sh" | sha256sum | cut -d' ' -f1)
INPUTS_HASH=$(printf 'kernel=%s %s\nbusybox=%s\nagent=%s\nscript=%s\nmodules=%s\n' \
	"$KPKG" "$KVER_DEB" "$BBVER_DEB" "$AGENT_SHA" "$SCRIPT_SHA" "$MODULES" | sha256sum | cut -d' ' -f1)

say "kernel $KPKG $KVER_DEB, busybox-static $BBVER_DEB, agent $AGENT (${AGENT_SHA:0:12})"

# fetch PKG VERSION -> prints the cached .deb path (downloads once into OUT/debs)
fetch() {
	local pkg=$1 ver=$2 f
	for f in "$DEBS/${pkg}"_*.deb; do
		[ -f "$f" ] && [ "$(dpkg-deb -f "$f" Version)" = "$ver" ] && { echo "$f"; return; }
	done
	say "downloading $pkg $ver" >&2
	(cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
		die "apt-get download $pkg=$ver failed: run 'apt-get update' (the mirror may have moved on) and retry"
	for f in "$DEBS/${pkg}"_*.deb; do
		[ -f "$f" ] && [ "$(dpkg-deb -f "$f" Version)" = "$ver" ] && { echo "$f"; return; }
	done
	die "apt-get download $pkg=$ver left no .deb in $DEBS"
}

# ---- kernel + initramfs -----------------------------------------------------
build_base() {
	local kdeb bbdeb kx bbx stage spec
	kdeb=$(fetch "$KPKG" "$KVER_DEB")
	bbdeb=$(fetch busybox-static "$BBVER_DEB")
	kx="$WORK/kernel"; bbx="$WORK/busybox"
	rm -rf "$kx" "$bbx"; mkdir -p "$kx" "$bbx"
	say "unpacking $(basename "$kdeb")"
	dpkg -x "$kdeb" "$kx"
	dpkg -x "$bbdeb" "$bbx"
	[ -f "$kx/boot/vmlinuz-$KREL" ] || die "$kdeb has no boot/vmlinuz-$KREL"
	say "extracting vmlinux from vmlinuz-$KREL"
	"$PY" "$TOOL" vmlinux "$kx/boot/vmlinuz-$KREL" "$OUT/vmlinux"

	say "resolving modules: $MODULES"
	# shellcheck disable=SC2086 # one word per module
	mapfile -t KOS < <("$PY" "$TOOL" modules "$kx/lib/modules/$KREL" $MODULES)

	stage="$WORK/stage"; rm -rf "$stage"; mkdir -p "$stage"
	spec="$WORK/initrd.spec"
	{
		for d in bin sbin etc etc/aeth lib lib/modules lib/modules/aeth dev proc sys tmp root run mnt usr usr/bin usr/sbin var newroot; do
			case $d in tmp) echo "dir /$d 1777" ;; root) echo "dir /$d 700" ;; *) echo "dir /$d 755" ;; esac
		done
		echo "nod /dev/console 600 c 5 1"
		echo "nod /dev/null 666 c 1 3"
		echo "file /init 755 $AGENT"
		echo "file /bin/busybox 755 $bbx/bin/busybox"
		# Every applet, flattened into /bin and /sbin.
		"$bbx/bin/busybox" --list-full | sed 's#^usr/##' | sort -u | while read -r a; do
			[ "$a" = bin/busybox ] && continue
			echo "slink /$a /bin/busybox"
		done
		echo "file /sbin/aeth-boot-probe 755 $HERE/boot-probe.sh"
		: >"$stage/modules"
		for ko in "${KOS[@]}"; do
			n=$(basename "$ko"); n=${n%.xz}
			echo "file /lib/modules/aeth/$n 644 $ko"
			echo "/lib/modules/aeth/$n" >>"$stage/modules"
		done
		echo "file /etc/aeth/modules 644 $stage/modules"
		printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/passwd"
		printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/group"
		printf '# filled in by the agent from aeth.dns=\n' >"$stage/resolv.conf"
		printf 'aeth\n' >"$stage/hostname"
		# busybox resolves "localhost" from /etc/hosts only (no nss):
		# without it `wget http://localhost:PORT/` says "bad address"
		printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\taetherium aeth\n' >"$stage/hosts"
		printf '%s %s\n' "$KPKG" "$KVER_DEB" >"$stage/kernel"
		echo "file /etc/passwd 644 $stage/passwd"
		echo "file /etc/group 644 $stage/group"
		echo "file /etc/resolv.conf 644 $stage/resolv.conf"
		echo "file /etc/hostname 644 $stage/hostname"
		echo "file /etc/hosts 644 $stage/hosts"
		echo "file /etc/aeth/kernel 644 $stage/kernel"
	} >"$spec"
	say "writing initrd.cpio (${#KOS[@]} modules)"
	"$PY" "$TOOL" cpio "$spec" "$OUT/initrd.cpio"
	rm -rf "${kx:?}/usr" "${bbx:?}"   # keep lib/modules for inspection, drop the rest
	MODS_JSON=$(printf '%s\n' "${KOS[@]}" | xargs -n1 basename | sed 's/\.ko.*//' |
		"$PY" -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')
}

write_manifest() {
	local files="vmlinux,initrd.cpio" rootfs_json=${1:-null}
	[ "$rootfs_json" != null ] && files="$files,rootfs.ext4"
	"$PY" "$TOOL" manifest "$OUT" \
		"inputs_hash=$INPUTS_HASH" "kernel_package=$KPKG" "kernel_deb_version=$KVER_DEB" \
		"kernel_version=$KREL" "busybox_deb_version=$BBVER_DEB" \
		"agent_path=$AGENT" "agent_sha256=$AGENT_SHA" \
		"modules_json=$MODS_JSON" "rootfs_json=$rootfs_json" \
		"built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "apt_stamp=$APT_STAMP" \
		"cmdline=console=ttyS0 panic=-1 quiet" \
		"files=$files"
}

have_base=0
if [ "$FORCE" = 0 ] && [ -f "$MANIFEST" ] && [ -f "$OUT/vmlinux" ] && [ -f "$OUT/initrd.cpio" ] &&
	[ "$("$PY" "$TOOL" get "$MANIFEST" inputs_hash)" = "$INPUTS_HASH" ]; then
	have_base=1
	say "vmlinux + initrd.cpio up to date (inputs_hash ${INPUTS_HASH:0:12})"
	MODS_JSON=$("$PY" "$TOOL" get "$MANIFEST" modules)
fi

# Existing rootfs entry stays only while it carries the current agent.
ROOTFS_JSON=null
if [ -f "$OUT/rootfs.ext4" ] && [ "$("$PY" "$TOOL" get "$MANIFEST" rootfs.agent_sha256)" = "$AGENT_SHA" ]; then
	ROOTFS_JSON=$("$PY" "$TOOL" get "$MANIFEST" rootfs)
fi

if [ "$have_base" = 0 ]; then
	build_base
	write_manifest "$ROOTFS_JSON"
	say "built $OUT/vmlinux ($(du -h "$OUT/vmlinux" | cut -f1)) and $OUT/initrd.cpio ($(du -h "$OUT/initrd.cpio" | cut -f1))"
fi

if [ "$ROOTFS" = 1 ]; then
	# shellcheck source=image/rootfs.sh
	. "$HERE/rootfs.sh"
	build_rootfs   # sets ROOTFS_JSON
	write_manifest "$ROOTFS_JSON"
fi
say "done: $MANIFEST"
