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
up=$(cut -d' ' -f1 /proc/uptime)
msg="AETH-BOOT-OK $up"
for n in /sys/class/virtio-ports/*/name; do
	[ -r "$n" ] || continue
	if [ "$(cat "$n")" = agent ]; then
		d=${n%/name}
		echo "$msg" >"/dev/${d##*/}"
	fi
done
echo "$msg" >/dev/console
case " $(cat /proc/cmdline) " in
*" aeth.probe=hold "*) exec sh </dev/console >/dev/console 2>&1 ;;
esac
poweroff -f
