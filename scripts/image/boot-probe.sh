#!/bin/sh
# aeth-boot-probe: a tiny stand-in init used to measure and test the image
# without the agent. Boot with `rdinit=/sbin/aeth-boot-probe` on the kernel
# command line. It loads /etc/aeth/modules like the agent does, then writes
# "AETH-BOOT-OK <uptime>" to the serial console and to the virtio-serial port
# named "agent" (if present), and powers the guest off.
# Extra: aeth.probe=hold keeps the guest up (a shell on the console).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "AETH-INIT $(cut -d' ' -f1 /proc/uptime)" >/dev/console
if [ -r /etc/aeth/modules ]; then
	while read -r m; do
		[ -n "$m" ] && insmod "$m" 2>/dev/console
	done </etc/aeth/modules
fi
# The port shows up asynchronously after virtio_console binds: poll for it
# (up to 5 s) like the agent does.
port=""
i=0
while [ -z "$port" ] && [ $i -lt 500 ]; do
	for n in /sys/class/virtio-ports/*/name; do
		[ -r "$n" ] && [ "$(cat "$n")" = agent ] && { d=${n%/name}; port=/dev/${d##*/}; }
	done
	[ -n "$port" ] && [ -c "$port" ] && break
	port=""
	i=$((i + 1))
	usleep 10000
done
up=$(cut -d' ' -f1 /proc/uptime)
msg="AETH-BOOT-OK $up"
[ -n "$port" ] && echo "$msg" >"$port"
[ -n "$port" ] || echo "aeth-boot-probe: no virtio-serial port named agent" >/dev/console
echo "$msg" >/dev/console
case " $(cat /proc/cmdline) " in
*" aeth.probe=hold "*) exec sh </dev/console >/dev/console 2>&1 ;;
esac
poweroff -f
