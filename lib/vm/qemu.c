/*
 * lib/vm/qemu.c - the QEMU backend: `-M microvm`, agent on a virtio-serial
 * port whose chardev is a Unix socket server, control over QMP.
 *
 * The VMM is spawned detached (its own session, re-parented to init) so
 * that it outlives the process that started it; vm.json records its pid
 * and start time, and /proc/PID/cmdline must contain the VM id (it does:
 * `-name` and every socket path carry it) before we signal it.
 *
 * The root disk (if any) is opened with snapshot=on: QEMU writes to a
 * temporary overlay that it creates unlinked, so VMs never share a
 * writable disk and nothing is left behind when QEMU dies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "vm/backend.h"
#include "vm/qmp.h"

#define ARGV_MAX 64
/*
 * The guest console. serial.log gets it while the guest boots (the tail
 * goes into boot-failure errors); once the agent answered, ready() swaps
 * the chardev's backend for a ring buffer of SERIAL_RING_BYTES (QMP
 * chardev-change; hw/char/serial supports it), because the guest runs
 * untrusted commands as root and could otherwise write to /dev/ttyS0
 * until the host's disk is full. The ring (the console's last 64 KiB)
 * stays readable with QMP `ringbuf-read` on qmp.sock while the VM lives.
 */
#define SERIAL_CHARDEV "ser0"
#define SERIAL_RING_BYTES "65536" /* a power of two, as QEMU requires */

typedef struct {
	char *v[ARGV_MAX + 1];
	int n;
	bool oom;
} argv_t;

static void arg(argv_t *a, const char *s)
{
	if (a->n >= ARGV_MAX || !s) {
		a->oom = true;
		return;
	}
	a->v[a->n] = strdup(s);
	if (!a->v[a->n])
		a->oom = true;
	else
		a->n++;
}

static void argf(argv_t *a, const char *fmt, ...) AETH__PRINTF(2, 3);
static void argf(argv_t *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	arg(a, s);
	free(s);
}

static void argv_free(argv_t *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

static int build_argv(argv_t *a, const aeth__vm_record *r)
{
	bool kvm = r->accel == AETH_ACCEL_KVM;

	arg(a, r->vmm_binary ? r->vmm_binary : "qemu-system-x86_64");
	arg(a, "-name");
	argf(a, "aeth-%s", r->id);
	arg(a, "-M");
	arg(a, "microvm,x-option-roms=off,isa-serial=on");
	arg(a, "-accel");
	arg(a, kvm ? "kvm" : "tcg,thread=multi");
	arg(a, "-cpu");
	arg(a, kvm ? "host" : "max");
	arg(a, "-m");
	argf(a, "%u", r->memory_mb);
	arg(a, "-smp");
	argf(a, "%u", r->vcpus);
	arg(a, "-nodefaults");
	arg(a, "-no-user-config");
	arg(a, "-nographic");
	arg(a, "-no-reboot");
	arg(a, "-kernel");
	arg(a, r->kernel_path);
	if (r->initrd_path) {
		arg(a, "-initrd");
		arg(a, r->initrd_path);
	}
	arg(a, "-append");
	arg(a, r->cmdline);
	/* A named chardev (not -serial file:) so that ready() can swap its
	 * backend for a ring buffer once the guest has booted. */
	arg(a, "-chardev");
	argf(a, "file,id=" SERIAL_CHARDEV ",path=%s", r->serial_log);
	arg(a, "-serial");
	arg(a, "chardev:" SERIAL_CHARDEV);
	arg(a, "-qmp");
	argf(a, "unix:%s,server=on,wait=off", r->api_sock);
	/* max_ports=2: the default 31 ports cost boot time (machine.md). */
	arg(a, "-device");
	arg(a, "virtio-serial-device,max_ports=2");
	arg(a, "-chardev");
	argf(a, "socket,id=agent,path=%s,server=on,wait=off", r->agent_sock);
	arg(a, "-device");
	arg(a, "virtserialport,chardev=agent,name=agent");
	if (r->net == AETH_NET_USER) {
		arg(a, "-netdev");
		arg(a, "user,id=n0");
		arg(a, "-device");
		arg(a, "virtio-net-device,netdev=n0");
	} else if (r->net == AETH_NET_TAP) {
		arg(a, "-netdev");
		argf(a, "tap,id=n0,ifname=%s,script=no,downscript=no",
		     r->tap_name);
		arg(a, "-device");
		arg(a, "virtio-net-device,netdev=n0");
	}
	if (r->rootfs_path) {
		arg(a, "-drive");
		argf(a, "id=rootfs,file=%s,format=raw,if=none,snapshot=on",
		     r->rootfs_path);
		arg(a, "-device");
		arg(a, "virtio-blk-device,drive=rootfs");
	}
	if (a->oom)
		return aeth__error_oom();
	a->v[a->n] = NULL;
	return 0;
}

static void unlink_sockets(const aeth__vm_record *r)
{
	if (r->api_sock)
		unlink(r->api_sock);
	if (r->agent_sock)
		unlink(r->agent_sock);
}

static int qemu_start(aeth__vm_record *r, int64_t deadline_ms)
{
	argv_t a = {{NULL}, 0, false};
	int rc;

	(void)deadline_ms;
	if ((rc = aeth__vm_path_set(r, &r->api_sock, "qmp.sock")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->agent_sock, "agent.sock")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->serial_log, "serial.log")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->vmm_log, "qemu.log")) != 0)
		return rc;
	if (r->net == AETH_NET_TAP && (!r->tap_name || !*r->tap_name))
		return aeth__error_set(AETH_EINVALID,
				       "VM %s: net mode tap needs tap_name", r->id);
	unlink_sockets(r);
	unlink(r->vmm_log);
	if ((rc = build_argv(&a, r)) != 0)
		goto out;
	rc = aeth__vm_spawn(a.v, r->vmm_log, &r->pid);
	if (rc == 0) {
		r->pid_starttime = aeth__vm_pid_starttime(r->pid);
		rc = aeth__vm_record_save(r);
	}
out:
	argv_free(&a);
	return rc;
}

/* The VMM's own words (e.g. "could not load kernel"), last ~1 KiB. */
static char *vmm_log_tail(const aeth__vm_record *r)
{
	return aeth__vm_file_tail(r->vmm_log, 1024);
}

static bool qemu_alive(const aeth__vm_record *r)
{
	return aeth__vm_pid_alive(r->pid, r->id, r->pid_starttime);
}

static int qemu_agent_connect(aeth__vm_record *r, int64_t deadline_ms,
			      int *fd_out)
{
	int step = 1, fd = -ENOENT;

	*fd_out = -1;
	for (;;) {
		if (!qemu_alive(r)) {
			char *log = vmm_log_tail(r);
			int rc = aeth__error_set(AETH_EUNAVAILABLE,
						 "QEMU (pid %d) of VM %s exited: %s",
						 (int)r->pid, r->id,
						 log && *log ? log :
						 "(no output in qemu.log)");
			free(log);
			return rc;
		}
		fd = aeth__vm_unix_connect(r->agent_sock);
		if (fd >= 0) {
			*fd_out = fd;
			return 0;
		}
		if (aeth__now_ms() >= deadline_ms)
			return aeth__error_set(AETH_ETIMEOUT,
					       "agent socket %s of VM %s: cannot "
					       "connect: %s", r->agent_sock, r->id,
					       strerror(-fd));
		aeth__sleep_ms(step);
		if (step < 16)
			step *= 2;
	}
}

static int qemu_ready(aeth__vm_record *r, int64_t deadline_ms)
{
	int fd, rc;

	fd = aeth__qmp_open(r->api_sock, deadline_ms);
	if (fd < 0)
		return fd;
	rc = aeth__qmp_execute_args(fd, "chardev-change",
				    "{\"id\":\"" SERIAL_CHARDEV "\",\"backend\":"
				    "{\"type\":\"ringbuf\",\"data\":{\"size\":"
				    SERIAL_RING_BYTES "}}}",
				    deadline_ms, NULL);
	close(fd);
	if (rc)
		return aeth__error_wrap(rc, "VM %s: cannot move the guest console "
					"from %s to a bounded ring buffer",
					r->id, r->serial_log);
	return 0;
}

static int qemu_powerdown(aeth__vm_record *r, int64_t deadline_ms)
{
	int fd, rc;
	int64_t soft;

	if (!qemu_alive(r))
		return 0;
	fd = aeth__qmp_open(r->api_sock, deadline_ms);
	if (fd < 0)
		return fd;
	/* ACPI power button first; a PID-1 agent may not handle it, so after
	 * a short while ask QEMU itself to quit (the disk is a throw-away
	 * snapshot overlay, nothing to flush that matters). */
	soft = aeth__now_ms() + 500;
	if (soft > deadline_ms)
		soft = deadline_ms;
	if (aeth__qmp_execute(fd, "system_powerdown", soft, NULL) == 0 &&
	    aeth__vm_pid_wait_gone(r->pid, r->id, r->pid_starttime, soft) == 0) {
		close(fd);
		return 0;
	}
	aeth__qmp_execute(fd, "quit", deadline_ms, NULL);
	close(fd);
	rc = aeth__vm_pid_wait_gone(r->pid, r->id, r->pid_starttime, deadline_ms);
	if (rc)
		return aeth__error_set(rc, "QEMU (pid %d) of VM %s did not exit",
				       (int)r->pid, r->id);
	return 0;
}

static void qemu_kill(aeth__vm_record *r)
{
	aeth__vm_pid_kill(r->pid, r->id, r->pid_starttime);
}

static void qemu_cleanup(aeth__vm_record *r)
{
	unlink_sockets(r);
	if (r->overlay_path)
		unlink(r->overlay_path);
}

const aeth__vm_backend aeth__vm_backend_qemu = {
	.name = "qemu",
	.start = qemu_start,
	.agent_connect = qemu_agent_connect,
	.ready = qemu_ready,
	.powerdown = qemu_powerdown,
	.kill = qemu_kill,
	.cleanup = qemu_cleanup,
	.alive = qemu_alive,
};
