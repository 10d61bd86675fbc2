#!/usr/bin/env bash
# Bare QEMU boot time of the Aetherium image (no library): boots vmlinux +
# initrd.cpio N times with the stand-in init (rdinit=/sbin/aeth-boot-probe,
# which loads the virtio modules like the agent and writes a marker on the
# virtio-serial port "agent") and reports the median time from starting QEMU
# to that marker, as a table and as JSON (last line, or only JSON with --json).
#
#   bench/boot/bare_boot.sh [-n N] [--image-dir DIR] [--json] [bootrun.py options]
#
# Same QEMU flags as the library's qemu backend under TCG (microvm, -cpu max,
# 256 MiB, virtio-serial max_ports=2, tsc_early_khz=<host TSC kHz>);
# bench/vm/compare.py boots it with the library's exact kernel command line.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR="${AETH_IMAGE_DIR:-$HOME/.cache/aetherium/image}"
N=10
JSON=0
ARGS=()
while [ $# -gt 0 ]; do
	case "$1" in
	-n) N=$2; shift 2 ;;
	--image-dir) DIR=$2; shift 2 ;;
	--json) JSON=1; shift ;;
	-h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) ARGS+=("$1"); shift ;;
	esac
done
for f in vmlinux initrd.cpio; do
	[ -f "$DIR/$f" ] || { echo "bare_boot: $DIR/$f missing: run scripts/build-image.sh" >&2; exit 1; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
/usr/bin/python3 "$HERE/bootrun.py" --kernel "$DIR/vmlinux" --initrd "$DIR/initrd.cpio" \
	-n "$N" --json --label bare-qemu "${ARGS[@]}" >"$out" || rc=$?
if [ "$JSON" = 1 ]; then
	cat "$out"
else
	/usr/bin/python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
f = lambda v: "-" if v is None else "%.3f" % v
for b in d["boots"]:
    print("boot %2d: %s" % (b["boot"], ("%.3f s to init (guest uptime %.2f s)" % (b["time_to_init_s"], b["guest_uptime_s"] or 0)) if b["ok"] else "FAILED: " + " | ".join(b.get("serial_tail", []))))
print("%-12s %5s %4s %8s %8s %8s %13s" % ("what", "boots", "ok", "median", "min", "max", "guest-uptime"))
print("%-12s %5d %4d %8s %8s %8s %13s" % ("bare-qemu", s["boots"], s["ok"], f(s["median_s"]), f(s["min_s"]), f(s["max_s"]), f(s["median_guest_uptime_s"])))
print(json.dumps({k: s[k] for k in ("label", "boots", "ok", "failed", "median_s", "min_s", "max_s", "median_guest_uptime_s", "median_qemu_cpu_s", "loadavg_1m")}))
PY
fi
exit $rc
