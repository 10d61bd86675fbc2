/*
 * lib/vm/qemu.c - the QEMU backend: `-M microvm`, agent on a virtio-serial
 * port whose chardev is a Unix socket server, control over QMP.
 *
 * The VMM is spawned detached (its own session, re-parented to init) so
 * that it outlives the process that started it; vm.json records its pid
 * and start time, and /proc/PID/cmdline must contain the VM id (it does:
 * `-name` and every socket path carry it) before we signal it.
 *
 * Confinement (lib/vm/jail.c): QEMU gets every file and socket as an
 * open descriptor and runs under aeth-jailer, so it needs no access to
 * the host's files at all; -sandbox adds QEMU's own seccomp filter.
 *
 * The root disk (if any) is opened with snapshot=on: QEMU writes to a
 * temporary layer in its TMPDIR (the VM's overlay directory), so VMs
 * never share a writable disk and the image is never written.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "jail/jail.h"
#include "vm/backend.h"
#include "vm/jail.h"
#include "vm/qmp.h"
#include "vm/snapshot.h"
#include "vm/vm_internal.h"

#include <cjson/cJSON.h>

#define ARGV_MAX 80
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

/* The descriptors QEMU is given: aeth__jail_spawn() puts fd[i] at
 * AETH__JAIL_FIRST_FD + i, and the command line names them by number. */
typedef struct {
	int fd[AETH__JAIL_MAX_FDS];
	size_t n;
	int kernel, initrd, rootfs, serial, qmp, agent, tap, ram; /* numbers */
} vmm_fds;

static int give(vmm_fds *f, int fd)
{
	f->fd[f->n] = fd;
	return AETH__JAIL_FIRST_FD + (int)f->n++;
}

static void vmm_fds_close(vmm_fds *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->fd[i] >= 0)
			close(f->fd[i]);
	f->n = 0;
}

static int build_argv(argv_t *a, const aeth__vm_record *r, const vmm_fds *f)
{
	bool kvm = r->accel == AETH_ACCEL_KVM;
	bool jailed = r->jail && r->jail->on;
	bool snap = r->boot_mode != AETH__BOOT_COLD;

	arg(a, r->vmm_binary ? r->vmm_binary : "qemu-system-x86_64");
	arg(a, "-name");
	argf(a, "aeth-%s", r->id);
	arg(a, "-M");
	arg(a, snap ? "microvm,x-option-roms=off,isa-serial=on,memory-backend=ram0"
		    : "microvm,x-option-roms=off,isa-serial=on");
	arg(a, "-accel");
	if (kvm)
		arg(a, "kvm");
	else if (r->tcg_tb_mb) /* QEMU's default grows to 1 GiB per VM */
		argf(a, "tcg,thread=multi,tb-size=%u", r->tcg_tb_mb);
	else
		arg(a, "tcg,thread=multi");
	arg(a, "-cpu");
	arg(a, kvm ? "host" : "max");
	arg(a, "-m");
	argf(a, "%u", r->memory_mb);
	arg(a, "-smp");
	argf(a, "%u", r->vcpus);
	if (snap) {
		/* A template's guest memory is a shared mapping of our memfd
		 * (what it wrote is there once it is saved); a restored VM's
		 * a private one of the snapshot's sealed memfd: its pages are
		 * shared with every other VM of the snapshot until written. */
		arg(a, "-object");
		argf(a, "memory-backend-file,id=ram0,size=%uM,mem-path=/proc/self/"
		     "fd/%d,share=%s", r->memory_mb, f->ram,
		     r->boot_mode == AETH__BOOT_TEMPLATE ? "on" : "off");
	}
	arg(a, "-nodefaults");
	arg(a, "-no-user-config");
	arg(a, "-nographic");
	arg(a, "-no-reboot");
	/* QEMU's own seccomp filter, in every mode (docs/security.md). */
	arg(a, "-sandbox");
	arg(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
	       "resourcecontrol=deny");
	/* Files come as descriptors the library opened and checked; QEMU
	 * reopens them read-only through its own /proc. */
	arg(a, "-kernel");
	argf(a, "/proc/self/fd/%d", f->kernel);
	if (f->initrd >= 0) {
		arg(a, "-initrd");
		argf(a, "/proc/self/fd/%d", f->initrd);
	}
	arg(a, "-append");
	arg(a, r->cmdline);
	/* A named chardev (not -serial file:) so that ready() can swap its
	 * backend for a ring buffer once the guest has booted; the log file
	 * is ours, handed over as an fd set (QEMU may not open our files). */
	if (r->boot_mode == AETH__BOOT_RESTORE) {
		/* nothing to boot, nothing for serial.log: the bounded ring
		 * from the start (its boot was the template's) */
		arg(a, "-chardev");
		arg(a, "ringbuf,id=" SERIAL_CHARDEV ",size=" SERIAL_RING_BYTES);
	} else {
		arg(a, "-add-fd");
		argf(a, "fd=%d,set=1", f->serial);
		arg(a, "-chardev");
		arg(a, "file,id=" SERIAL_CHARDEV ",path=/dev/fdset/1");
	}
	arg(a, "-serial");
	arg(a, "chardev:" SERIAL_CHARDEV);
	arg(a, "-chardev");
	argf(a, "socket,id=qmp,fd=%d,server=on,wait=off", f->qmp);
	arg(a, "-mon");
	arg(a, "chardev=qmp,mode=control");
	/* max_ports=2: the default 31 ports cost boot time under PVM (no
	 * difference measured under TCG: docs/image.md). */
	arg(a, "-device");
	arg(a, "virtio-serial-device,max_ports=2");
	arg(a, "-chardev");
	argf(a, "socket,id=agent,fd=%d,server=on,wait=off", f->agent);
	arg(a, "-device");
	arg(a, "virtserialport,chardev=agent,name=agent");
	if (r->net == AETH_NET_USER) {
		/* In the jail, slirp's connections start in the VMM's own
		 * network namespace, where only the relay's listeners are
		 * (lib/jail/netns.c). Without it, restrict=on: nothing. */
		arg(a, "-netdev");
		arg(a, jailed ? "user,id=n0,ipv6=off" : "user,id=n0,ipv6=off,restrict=on");
		arg(a, "-device");
		arg(a, "virtio-net-device,netdev=n0");
	} else if (r->net == AETH_NET_TAP) {
		arg(a, "-netdev");
		argf(a, "tap,id=n0,fd=%d", f->tap);
		arg(a, "-device");
		arg(a, "virtio-net-device,netdev=n0");
	}
	if (!snap || jailed) {
		/* Free page reporting: the guest hands back the memory it
		 * frees (QEMU discards it). A restored VM's memory is a
		 * private mapping of a sealed memfd: QEMU 7.2 first punches
		 * a hole in the file, which the seal refuses, and would then
		 * not drop the VM's own pages; aeth-jailer's --ram-discard
		 * makes that first step a no-op (lib/jail/jailer.h). Without
		 * the jail a snapshot's VMs have no balloon (the template's
		 * devices are the restored VMs'). */
		arg(a, "-device");
		arg(a, "virtio-balloon-device,free-page-reporting=on");
	}
	if (r->boot_mode == AETH__BOOT_RESTORE) {
		/* Its state comes over QMP (restore()) once the agent's
		 * channel is connected. */
		arg(a, "-incoming");
		arg(a, "defer");
	}
	if (f->rootfs >= 0) {
		/* snapshot=on: writes go to a temporary layer in TMPDIR, the
		 * VM's overlay directory; the image is never written. */
		arg(a, "-drive");
		argf(a, "id=rootfs,file=/proc/self/fd/%d,format=raw,if=none,"
		     "snapshot=on", f->rootfs);
		arg(a, "-device");
		arg(a, "virtio-blk-device,drive=rootfs");
	}
	if (a->oom)
		return aeth__error_oom();
	a->v[a->n] = NULL;
	return 0;
}

/* A listening Unix socket at `path` (replacing a stale one), for QEMU. */
static int listen_at(const aeth__vm_record *r, const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return aeth__error_set(AETH_ETOOBIG, "socket path %s is too long",
				       path);
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 4) != 0) {
		int rc = aeth__error_errno(AETH_EIO, "VM %s: cannot listen on %s",
					   r->id, path);

		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

/* The tap device `name`, attached for QEMU (the host set it up). */
static int open_tap(const aeth__vm_record *r)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return aeth__error_errno(AETH_EUNAVAILABLE, "VM %s: cannot open "
					 "/dev/net/tun for tap %s", r->id,
					 r->tap_name);
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", r->tap_name);
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		int rc = aeth__error_errno(AETH_EUNAVAILABLE, "VM %s: cannot attach "
					   "to tap device %s", r->id, r->tap_name);

		close(fd);
		return rc;
	}
	return fd;
}

/* Every descriptor QEMU needs for r, numbered as build_argv() names them. */
static int open_fds(aeth__vm_record *r, vmm_fds *f)
{
	int fd;

	f->n = 0;
	f->initrd = f->rootfs = f->tap = f->ram = f->serial = -1;
#define TAKE(field, expr)                                                      \
	do {                                                                   \
		if ((fd = (expr)) < 0)                                         \
			return fd;                                             \
		f->field = give(f, fd);                                        \
	} while (0)
	TAKE(kernel, aeth__vm_open_image(r->id, "kernel", r->kernel_path));
	if (r->initrd_path)
		TAKE(initrd, aeth__vm_open_image(r->id, "initramfs", r->initrd_path));
	if (r->rootfs_path)
		TAKE(rootfs, aeth__vm_open_image(r->id, "root filesystem",
						   r->rootfs_path));
	fd = open(r->serial_log, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd < 0)
		return aeth__error_errno(AETH_EIO, "VM %s: cannot create %s", r->id,
					 r->serial_log);
	if (r->boot_mode == AETH__BOOT_RESTORE)
		close(fd); /* stays empty: the console starts in its ring */
	else
		f->serial = give(f, fd);
	TAKE(qmp, listen_at(r, r->api_sock));
	TAKE(agent, listen_at(r, r->agent_sock));
	if (r->net == AETH_NET_TAP)
		TAKE(tap, open_tap(r));
	if (r->boot_mode != AETH__BOOT_COLD) {
		if (r->ram_fd < 0)
			return aeth__error_set(AETH_EINVALID, "VM %s: no memory for "
					       "a snapshot boot", r->id);
		TAKE(ram, fcntl(r->ram_fd, F_DUPFD_CLOEXEC, 3));
	}
#undef TAKE
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
	vmm_fds f;
	int rc;

	f.n = 0;
	if ((rc = aeth__vm_path_set(r, &r->api_sock, "qmp.sock")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->agent_sock, "agent.sock")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->serial_log, "serial.log")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->vmm_log, "qemu.log")) != 0)
		return rc;
	if (r->net == AETH_NET_TAP && (!r->tap_name || !*r->tap_name))
		return aeth__error_set(AETH_EINVALID,
				       "VM %s: net mode tap needs tap_name", r->id);
	if (!r->jail)
		return aeth__error_set(AETH_ESTATE, "VM %s: no manager settings",
				       r->id);
	unlink(r->vmm_log);
	if ((rc = open_fds(r, &f)) == 0 && (rc = build_argv(&a, r, &f)) == 0)
		rc = aeth__jail_spawn(r, r->jail, a.v, f.fd, f.n, deadline_ms);
	vmm_fds_close(&f);
	if (rc == 0)
		rc = aeth__vm_record_save(r);
	else
		unlink_sockets(r);
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

	if (r->boot_mode == AETH__BOOT_RESTORE)
		return 0; /* its console is the ring already */
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

/* Poll query-migrate until the migration completed, failed or the
 * deadline passed. */
static int migration_wait(int qmp, const aeth__vm_record *r, const char *what,
			  int64_t deadline_ms)
{
	for (;;) {
		char *reply = NULL;
		cJSON *o;
		const cJSON *st, *err;
		int rc = aeth__qmp_execute(qmp, "query-migrate", deadline_ms, &reply);

		if (rc)
			return rc;
		o = cJSON_Parse(reply);
		free(reply);
		st = cJSON_GetObjectItemCaseSensitive(o, "status");
		err = cJSON_GetObjectItemCaseSensitive(o, "error-desc");
		if (cJSON_IsString(st) && !strcmp(st->valuestring, "completed")) {
			cJSON_Delete(o);
			return 0;
		}
		if (cJSON_IsString(st) && (!strcmp(st->valuestring, "failed") ||
					   !strcmp(st->valuestring, "cancelled"))) {
			rc = aeth__error_set(AETH_EIO, "VM %s: %s failed: %s", r->id,
					     what, cJSON_IsString(err) ?
					     err->valuestring : st->valuestring);
			cJSON_Delete(o);
			return rc;
		}
		cJSON_Delete(o);
		if (aeth__now_ms() >= deadline_ms)
			return aeth__error_set(AETH_ETIMEOUT, "VM %s: %s did not "
					       "finish in time", r->id, what);
		aeth__sleep_ms(2);
	}
}

/* Hand QEMU `path` (opened with `flags`) as the named fd "aeth-state". */
static int give_state_fd(int qmp, const aeth__vm_record *r, const char *path,
			 int flags, int64_t deadline_ms)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600), rc;

	if (fd < 0)
		return aeth__error_errno(AETH_EIO, "VM %s: cannot open %s", r->id,
					 path);
	rc = aeth__qmp_execute_fd(qmp, "getfd", "{\"fdname\":\"aeth-state\"}", fd,
				  deadline_ms, NULL);
	close(fd);
	return rc;
}

static const char ignore_shared[] =
	"{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":true}]}";

/*
 * One migration over QMP, without guest memory (x-ignore-shared: it is
 * in the memfd): `path` opened with `flags` goes to QEMU as the named fd
 * "aeth-state", `command` ("migrate" or "migrate-incoming") runs on it,
 * and we wait until it completed.
 */
static int migrate_state(int qmp, const aeth__vm_record *r, const char *path,
			 int flags, const char *command, const char *what,
			 int64_t deadline_ms)
{
	int rc = aeth__qmp_execute_args(qmp, "migrate-set-capabilities",
					ignore_shared, deadline_ms, NULL);

	if (rc == 0)
		rc = give_state_fd(qmp, r, path, flags, deadline_ms);
	if (rc == 0)
		rc = aeth__qmp_execute_args(qmp, command,
					    "{\"uri\":\"fd:aeth-state\"}",
					    deadline_ms, NULL);
	if (rc == 0)
		rc = migration_wait(qmp, r, what, deadline_ms);
	return rc;
}

/*
 * The template (its agent answered): its device state to <dir>/state by
 * migration, without its memory (x-ignore-shared: the shared memfd holds
 * it; snapshot.c writes it to <dir>/ram). QEMU is left paused, done.
 */
static int qemu_snapshot_save(aeth__vm_record *r, const char *dir,
			      int64_t deadline_ms)
{
	char *path = aeth__sprintf("%s/state", dir);
	int qmp, rc, fd;

	if (!path)
		return AETH_ENOMEM;
	qmp = aeth__qmp_open(r->api_sock, deadline_ms);
	rc = qmp < 0 ? qmp : migrate_state(qmp, r, path, O_WRONLY | O_CREAT |
					   O_EXCL, "migrate", "saving its state",
					   deadline_ms);
	if (qmp >= 0)
		close(qmp);
	if (rc == 0 && ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
			fsync(fd) != 0))
		rc = aeth__error_errno(AETH_EIO, "fsync %s", path);
	if (rc == 0)
		close(fd);
	free(path);
	return rc;
}

/* Is the agent's chardev connected (our connect() accepted by QEMU)? */
static int agent_chardev_open(int qmp, int64_t deadline_ms, bool *open_out)
{
	char *reply = NULL;
	cJSON *a, *c;
	int rc = aeth__qmp_execute(qmp, "query-chardev", deadline_ms, &reply);

	*open_out = false;
	if (rc)
		return rc;
	a = cJSON_Parse(reply);
	free(reply);
	cJSON_ArrayForEach(c, a) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "label");
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "filename");

		if (cJSON_IsString(l) && !strcmp(l->valuestring, "agent") &&
		    cJSON_IsString(f))
			*open_out = strncmp(f->valuestring, "disconnected:", 13) != 0;
	}
	cJSON_Delete(a);
	return 0;
}

/*
 * A VM started with -incoming defer, its agent's channel connected by
 * vm.c: once QEMU has accepted that connection (so the restored guest
 * finds its host connected, as the template's was, and its agent never
 * sees a hang-up), load the state of <dir>/state. The guest then runs.
 */
static int qemu_restore(aeth__vm_record *r, const char *dir, int64_t deadline_ms)
{
	char *path = aeth__sprintf("%s/state", dir);
	bool connected = false;
	int qmp, rc;

	if (!path)
		return AETH_ENOMEM;
	qmp = aeth__qmp_open(r->api_sock, deadline_ms);
	rc = qmp < 0 ? qmp : 0;
	while (rc == 0 && !connected &&
	       (rc = agent_chardev_open(qmp, deadline_ms, &connected)) == 0 &&
	       !connected) {
		if (aeth__now_ms() >= deadline_ms)
			rc = aeth__error_set(AETH_ETIMEOUT, "VM %s: QEMU did not "
					     "accept the agent connection", r->id);
		else
			aeth__sleep_ms(1);
	}
	if (rc == 0)
		rc = migrate_state(qmp, r, path, O_RDONLY, "migrate-incoming",
				   "loading its snapshot", deadline_ms);
	if (qmp >= 0)
		close(qmp);
	free(path);
	return rc;
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
	aeth__jail_cleanup(r);
}

const aeth__vm_backend aeth__vm_backend_qemu = {
	.name = "qemu",
	.start = qemu_start,
	.agent_connect = qemu_agent_connect,
	.ready = qemu_ready,
	.powerdown = qemu_powerdown,
	.kill = qemu_kill,
	.cleanup = qemu_cleanup,
	.snapshot_save = qemu_snapshot_save,
	.restore = qemu_restore,
	.snapshot_memfd = true,
	.connect_before_restore = true,
	.alive = qemu_alive,
};
