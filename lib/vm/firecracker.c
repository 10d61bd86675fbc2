/*
 * lib/vm/firecracker.c - the Firecracker backend.
 *
 * `firecracker --api-sock <state>/api.sock --id <vm id>` is spawned
 * detached (the --id puts the VM id in /proc/PID/cmdline, which is how a
 * later process tells our VMM from a reused pid). Once its API socket
 * answers, the VM is configured over the REST API (firecracker_api.c):
 * PUT /machine-config, /boot-source, /drives/rootfs (if a root disk is
 * used), /network-interfaces/eth0 (tap only), /vsock, then PUT /actions
 * InstanceStart. The agent is reached through Firecracker's hybrid vsock
 * (firecracker_vsock.c) on <state>/vsock.sock. Stop is SendCtrlAltDel
 * (the guest reboots; with reboot=k that ends the Firecracker process),
 * then SIGKILL after the deadline (vm.c does the kill).
 *
 * The root disk is copied per VM (reflink or sparse copy,
 * firecracker_disk.c): Firecracker has no snapshot=on like QEMU, and VMs
 * must never share a writable disk.
 *
 * With vmm.firecracker_jailer, Firecracker's own jailer starts it instead
 * (firecracker_jail.c): chrooted, as a uid of its own, in its own pid
 * namespace and cgroup. Its files then live in the jail's root and every
 * path sent to the API is the one Firecracker sees there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "vm/backend.h"
#include "vm/firecracker_api.h"
#include "vm/firecracker_disk.h"
#include "vm/firecracker_jail.h"
#include "vm/firecracker_vsock.h"

#define FC_DEFAULT_BINARY "firecracker"
#define FC_DEFAULT_PORT 1024u
#define FC_CID_FILE "guest_cid"
/* Firecracker's usual guest flags: reboot=k makes a guest reboot (and
 * SendCtrlAltDel) end the VMM; pci=off and the i8042 ones skip probes that
 * only cost boot time on a machine with neither PCI nor a real keyboard. */
static const char *const fc_boot_flags[] = {
	"reboot=k", "pci=off", "i8042.noaux", "i8042.nomux", "i8042.dumbkbd",
};

static const char *fc_binary(const aeth__vm_record *r)
{
	return r->vmm_binary && *r->vmm_binary ? r->vmm_binary : FC_DEFAULT_BINARY;
}

static bool fc_alive(const aeth__vm_record *r)
{
	return r->pid > 0 && aeth__vm_pid_alive(r->pid, r->id, r->pid_starttime);
}

/*
 * Dead for sure: /proc/PID/cmdline reads empty for a moment while a
 * process execs (a wrapper script exec'ing the real binary), so one
 * failed check is confirmed by a second a little later.
 */
static bool fc_dead(const aeth__vm_record *r)
{
	if (fc_alive(r))
		return false;
	aeth__sleep_ms(20);
	return !fc_alive(r);
}

static bool alive_cb(void *userdata)
{
	return !fc_dead(userdata);
}

/* The last KiB of what firecracker printed (its own errors come first). */
static char *vmm_log_tail(const aeth__vm_record *r)
{
	aeth__vm_record tmp = *r;

	tmp.serial_log = r->vmm_log;
	return aeth__vm_serial_tail(&tmp, 1024);
}

static bool has_word(const char *cmdline, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = cmdline; p && *p;) {
		p += strspn(p, " ");
		if (strncmp(p, prefix, n) == 0)
			return true;
		p += strcspn(p, " ");
	}
	return false;
}

/* The vsock port the agent listens on: aeth.port= of the command line. */
static unsigned int agent_port(const aeth__vm_record *r)
{
	const char *p = r->cmdline ? strstr(r->cmdline, "aeth.port=") : NULL;
	unsigned long v;

	if (!p || (p != r->cmdline && p[-1] != ' '))
		return FC_DEFAULT_PORT;
	v = strtoul(p + strlen("aeth.port="), NULL, 10);
	return v > 0 && v <= 0xffffffffUL ? (unsigned int)v : FC_DEFAULT_PORT;
}

/*
 * The kernel command line of the contract with the agent on vsock:
 * aeth.channel=vsock (replacing any other channel vm.c may have put),
 * aeth.port=1024 unless given, plus Firecracker's usual flags. Written
 * back to rec->cmdline so vm.json shows what the guest got. Idempotent.
 */
static int fc_boot_args(aeth__vm_record *r)
{
	aeth__buf b = AETH__BUF_INIT;
	const char *p = r->cmdline ? r->cmdline : "console=ttyS0 panic=-1 quiet";
	int rc = 0;

	while (*p && rc == 0) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n && strncmp(p, "aeth.channel=", 13) != 0)
			rc = aeth__buf_printf(&b, "%s%.*s", b.len ? " " : "", (int)n, p);
		p += n;
	}
	if (rc == 0)
		rc = aeth__buf_printf(&b, "%saeth.channel=vsock", b.len ? " " : "");
	if (rc == 0 && !has_word(b.data, "aeth.port="))
		rc = aeth__buf_printf(&b, " aeth.port=%u", FC_DEFAULT_PORT);
	for (size_t i = 0; rc == 0 && i < AETH__ARRAY_LEN(fc_boot_flags); i++) {
		char key[32];

		snprintf(key, sizeof(key), "%.*s", (int)strcspn(fc_boot_flags[i], "=") + 1,
			 fc_boot_flags[i]);
		if (!has_word(b.data, key) && !has_word(b.data, fc_boot_flags[i]))
			rc = aeth__buf_printf(&b, " %s", fc_boot_flags[i]);
	}
	if (rc != 0) {
		aeth__buf_free(&b);
		return rc;
	}
	free(r->cmdline);
	r->cmdline = aeth__buf_detach(&b, NULL);
	return 0;
}

/* fopen() of a state dir file, never through a symlink (the "e" of
 * fopen's mode has no "no follow"); writing truncates or creates 0600. */
static FILE *fopen_nofollow(const char *path, bool write)
{
	int fd = write ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			      O_NOFOLLOW, 0600) :
			 open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FILE *f = fd >= 0 ? fdopen(fd, write ? "w" : "r") : NULL;

	if (!f && fd >= 0)
		close(fd);
	return f;
}

static unsigned long read_cid(const char *dir)
{
	char path[4096], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, FC_CID_FILE);
	if (!(f = fopen_nofollow(path, false)))
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtoul(buf, NULL, 10);
}

/* Is `cid` recorded by another VM under the same vms dir? */
static bool cid_taken(const char *vms_dir, const char *self, unsigned long cid)
{
	DIR *d = opendir(vms_dir);
	struct dirent *e;
	bool taken = false;

	if (!d)
		return false;
	while (!taken && (e = readdir(d)) != NULL) {
		char sub[4096];

		if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", vms_dir, e->d_name);
		taken = read_cid(sub) == cid;
	}
	closedir(d);
	return taken;
}

/*
 * A guest CID for this VM, >= 3 and unique among the VMs of the state
 * dir: derived from the VM id (stable across restarts), bumped past any
 * sibling's. Kept in <state>/guest_cid. With hybrid vsock CIDs never meet
 * on the host (each VMM emulates its own device), so a race between two
 * concurrent starts is harmless; uniqueness keeps logs unambiguous and
 * matters if the backend ever moves to vhost-vsock.
 */
static int fc_guest_cid(const aeth__vm_record *r, unsigned int *cid_out)
{
	char *vms_dir = aeth__strdup(r->state_dir), *slash, *path;
	const char *self;
	unsigned long cid = read_cid(r->state_dir);
	uint32_t h = 2166136261u;
	FILE *f;

	if (!vms_dir)
		return AETH_ENOMEM;
	if (cid < 3 || cid > 0xfffffffeUL) {
		for (const char *p = r->id; *p; p++)
			h = (h ^ (unsigned char)*p) * 16777619u;
		cid = 3 + h % 0x7ffffff0u;
	}
	slash = strrchr(vms_dir, '/');
	self = slash ? slash + 1 : vms_dir;
	if (slash)
		*slash = '\0';
	for (int i = 0; i < 1000 && cid_taken(vms_dir, self, cid); i++)
		cid = cid >= 0x7ffffff2u ? 3 : cid + 1;
	free(vms_dir);
	path = aeth__vm_path(r, FC_CID_FILE);
	if (!path)
		return aeth_error_last_code();
	f = fopen_nofollow(path, true);
	if (!f || fprintf(f, "%lu\n", cid) < 0 || fclose(f) != 0) {
		int rc = aeth__error_errno(AETH_EIO, "cannot write %s", path);

		free(path);
		return rc;
	}
	free(path);
	*cid_out = (unsigned int)cid;
	return 0;
}

/* Per-VM writable root disk: reused across stop/start, made once. */
static int fc_prepare_disk(aeth__vm_record *r)
{
	bool reflinked = false;
	int rc;

	if (!r->rootfs_path)
		return 0;
	if ((rc = aeth__vm_path_set(r, &r->overlay_path, "rootfs.img")) != 0)
		return rc;
	if (access(r->overlay_path, F_OK) == 0)
		return 0;
	if ((rc = aeth__vm_record_save(r)) != 0)
		return rc;
	rc = aeth__fc_disk_clone(r->rootfs_path, r->overlay_path, &reflinked);
	if (rc == 0)
		aeth__debug("VM %s: root disk %s %s to %s", r->id, r->rootfs_path,
			    reflinked ? "reflinked" : "sparse-copied", r->overlay_path);
	return rc;
}

/* Until the API socket accepts a connection, the VMM dies, or the deadline. */
static int wait_api_socket(const aeth__vm_record *r, int64_t deadline_ms)
{
	int64_t step = 2, start = aeth__now_ms();

	for (;;) {
		int fd = aeth__fc_unix_connect(r->api_sock);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (fc_dead(r)) {
			char *log = vmm_log_tail(r);
			int rc = aeth__error_set(AETH_EUNAVAILABLE,
						 "%s (pid %d) of VM %s exited before creating its API socket %s: %s",
						 fc_binary(r), (int)r->pid, r->id, r->api_sock,
						 log && *log ? log : "(no output in its log)");
			free(log);
			return rc;
		}
		if (aeth__now_ms() >= deadline_ms)
			return aeth__error_set(AETH_ETIMEOUT,
					       "%s (pid %d) of VM %s did not create its API socket %s within %lld ms (last connect: %s): is %s really firecracker (it must take --api-sock PATH)? see %s",
					       fc_binary(r), (int)r->pid, r->id, r->api_sock,
					       (long long)(aeth__now_ms() - start), strerror(-fd),
					       fc_binary(r), r->vmm_log);
		aeth__sleep_ms(step);
		if (step < 32)
			step *= 2;
	}
}

static unsigned int api_timeout(int64_t deadline_ms)
{
	int64_t left = deadline_ms - aeth__now_ms();

	return left < 100 ? 100 : left > 10000 ? 10000 : (unsigned int)left;
}

/*
 * The guest's serial console goes to serial.log, rate-limited: a guest
 * that floods its console (a process writing to /dev/ttyS0) would
 * otherwise fill the host's disk through Firecracker's stdout. The burst
 * holds a boot's messages; beyond it Firecracker drops what exceeds the
 * rate. A Firecracker whose API has no /serial (older releases) answers
 * 400: the VM still starts, its console then goes unbounded to
 * firecracker.log.
 */
#define FC_SERIAL_BYTES_PER_S 2048u
#define FC_SERIAL_BURST (1024u * 1024u)

static int put_serial(aeth__fc_api *api, aeth__vm_record *r, const char *path)
{
	int rc = aeth__fc_put_serial(api, path, FC_SERIAL_BYTES_PER_S,
				     FC_SERIAL_BURST);

	if (rc != 0 && aeth__fc_api_last_status(api) == 400) {
		aeth__warn("VM %s: %s; its serial console is not rate-limited "
			   "(it goes to %s)", r->id, aeth_error_last(), r->vmm_log);
		return aeth__vm_path_set(r, &r->serial_log, "firecracker.log");
	}
	return rc;
}

/* The files named in API calls, as the Firecracker process sees them. */
typedef struct {
	const char *kernel, *initrd, *disk, *vsock, *serial;
} fc_api_paths;

static void api_paths(const aeth__vm_record *r, const char *jail_root,
		      fc_api_paths *p)
{
	if (!jail_root) {
		*p = (fc_api_paths){r->kernel_path, r->initrd_path, r->overlay_path,
				    r->agent_sock, r->serial_log};
		return;
	}
	p->kernel = AETH__FC_JAIL_KERNEL;
	p->initrd = r->initrd_path ? AETH__FC_JAIL_INITRD : NULL;
	p->disk = aeth__fc_jail_inner(jail_root, r->overlay_path);
	p->vsock = aeth__fc_jail_inner(jail_root, r->agent_sock);
	p->serial = aeth__fc_jail_inner(jail_root, r->serial_log);
}

/* The pre-boot configuration and InstanceStart, in Firecracker's order. */
static int fc_configure(aeth__vm_record *r, unsigned int cid, const char *jail_root,
			int64_t deadline_ms)
{
	aeth__fc_api *api = NULL;
	fc_api_paths p;
	int rc;

	api_paths(r, jail_root, &p);
	if ((rc = aeth__fc_api_open(&api, r->api_sock, api_timeout(deadline_ms))) != 0)
		return rc;
	rc = aeth__fc_put_machine_config(api, r->vcpus ? r->vcpus : 1,
					 r->memory_mb ? r->memory_mb : 256);
	if (rc == 0)
		rc = aeth__fc_put_boot_source(api, p.kernel, p.initrd, r->cmdline);
	if (rc == 0 && p.disk)
		rc = aeth__fc_put_drive(api, "rootfs", p.disk, true, false);
	if (rc == 0 && r->net == AETH_NET_TAP)
		rc = aeth__fc_put_network(api, "eth0", r->tap_name);
	if (rc == 0)
		rc = aeth__fc_put_vsock(api, cid, p.vsock);
	if (rc == 0)
		rc = put_serial(api, r, p.serial);
	if (rc == 0)
		rc = aeth__fc_put_action(api, "InstanceStart");
	aeth__fc_api_free(api);
	return rc;
}

static void fc_kill(aeth__vm_record *r)
{
	if (r->pid > 0)
		aeth__vm_pid_kill(r->pid, r->id, r->pid_starttime);
}

static void unlink_if(const char *path)
{
	if (path)
		unlink(path);
}

static void fc_cleanup(aeth__vm_record *r)
{
	char *cid_file = r->state_dir ? aeth__vm_path(r, FC_CID_FILE) : NULL;

	/* Firecracker leaves both sockets behind when it ends. */
	unlink_if(r->api_sock);
	unlink_if(r->agent_sock);
	unlink_if(r->overlay_path);
	unlink_if(cid_file);
	free(cid_file);
	aeth__fc_jail_cleanup(r);
}

static int fc_check_spec(const aeth__vm_record *r)
{
	if (r->net == AETH_NET_USER)
		return aeth__error_set(AETH_EINVALID,
				       "VM %s: the firecracker backend has no user-mode networking: use net=tap with a host tap device, or net=none",
				       r->id);
	if (r->net == AETH_NET_TAP && (!r->tap_name || !*r->tap_name))
		return aeth__error_set(AETH_EINVALID, "VM %s: net mode tap needs tap_name",
				       r->id);
	/* A jailed Firecracker opens the tap as the VM's uid, chosen at
	 * start: no operator's tap can belong to it yet. */
	if (r->net == AETH_NET_TAP && aeth__fc_jail_wanted(r))
		return aeth__error_set(AETH_EINVALID, "VM %s: tap networking under "
				       "Firecracker's jailer is not supported yet (the "
				       "tap would have to belong to the VM's uid, "
				       "which is chosen at start): use net=none, or "
				       "unset vmm.firecracker_jailer", r->id);
	if (!r->kernel_path)
		return aeth__error_set(AETH_EINVALID, "VM %s: no kernel image", r->id);
	return 0;
}

/* Where the VM's files go: the state dir, or the jail's root. */
static int fc_paths(aeth__vm_record *r, aeth__fc_jail *j)
{
	int rc;

	if ((rc = aeth__vm_path_set(r, &r->vmm_log, "firecracker.log")) != 0)
		return rc;
	if (aeth__fc_jail_wanted(r))
		return aeth__fc_jail_layout(j, r);
	if ((rc = aeth__vm_path_set(r, &r->api_sock, "api.sock")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->agent_sock, "vsock.sock")) != 0 ||
	    (rc = aeth__vm_path_set(r, &r->serial_log, "serial.log")) != 0)
		return rc;
	return 0;
}

/*
 * The environment Firecracker (or its jailer) starts with: none of the
 * worker's (its database and Redis URLs may hold passwords), but PATH,
 * AETH_VM_DIR (which VM a process is) and AETH_FC_* settings meant for a
 * wrapper or the test stand-in. NULL-terminated, malloc'd strings.
 */
static char **fc_env(const aeth__vm_record *r)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **v;

	for (char **e = environ; e && *e; e++)
		n += strncmp(*e, "AETH_FC_", 8) == 0;
	if (!(v = calloc(n + 3, sizeof(*v))))
		return NULL;
	if (!(v[k++] = aeth__strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin")) ||
	    !(v[k++] = aeth__sprintf("AETH_VM_DIR=%s", r->state_dir))) {
		aeth_strarray_free(v);
		return NULL;
	}
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "AETH_FC_", 8) == 0 && !(v[k++] = aeth__strdup(*e))) {
			aeth_strarray_free(v);
			return NULL;
		}
	return v;
}

/* Start firecracker, or the jailer that starts it; r->pid is then
 * Firecracker's own. */
static int fc_spawn(aeth__vm_record *r, aeth__fc_jail *j, int64_t deadline_ms)
{
	char *argv[] = {(char *)fc_binary(r), (char *)"--api-sock", r->api_sock,
			(char *)"--id", r->id, NULL};
	char **env = fc_env(r);
	pid_t jailer = 0;
	int rc;

	r->pid = 0;
	if (!env)
		return aeth__error_oom();
	if (!j->argv) {
		rc = aeth__vm_spawn(argv, env, r->vmm_log, NULL, 0, &r->pid);
		aeth_strarray_free(env);
		if (rc != 0)
			return aeth__error_wrap(rc, "firecracker backend: cannot start \"%s\" (set the firecracker_binary option, or put firecracker on PATH)",
						fc_binary(r));
		r->pid_starttime = aeth__vm_pid_starttime(r->pid);
		return 0;
	}
	rc = aeth__vm_spawn(j->argv, env, r->vmm_log, NULL, 0, &jailer);
	aeth_strarray_free(env);
	if (rc != 0)
		return aeth__error_wrap(rc, "firecracker backend: cannot start Firecracker's jailer \"%s\" (vmm.firecracker_jailer)",
					j->argv[0]);
	rc = aeth__fc_jail_wait_pid(j, r, jailer, deadline_ms);
	if (rc != 0)
		aeth__vm_pid_kill(jailer, r->id, 0);
	return rc;
}

static int fc_start(aeth__vm_record *r, int64_t deadline_ms)
{
	aeth__fc_jail j = {0};
	unsigned int cid = 0;
	int rc;

	if ((rc = fc_check_spec(r)) != 0 || (rc = fc_paths(r, &j)) != 0 ||
	    (rc = fc_boot_args(r)) != 0 || (rc = fc_guest_cid(r, &cid)) != 0)
		goto fail;
	if (j.root)
		rc = aeth__fc_jail_build(&j, r);
	else
		rc = fc_prepare_disk(r);
	if (rc != 0 || (rc = aeth__vm_record_save(r)) != 0)
		goto fail;
	/* Firecracker refuses to start on an existing API socket. */
	unlink(r->api_sock);
	unlink(r->agent_sock);
	unlink(r->vmm_log);
	unlink(r->serial_log);
	if ((rc = fc_spawn(r, &j, deadline_ms)) != 0)
		goto fail;
	if ((rc = aeth__vm_record_save(r)) != 0 || (rc = wait_api_socket(r, deadline_ms)) != 0)
		goto fail;
	/* a restore is configured by its snapshot (fc_restore) */
	if (r->boot_mode != AETH__BOOT_RESTORE &&
	    (rc = fc_configure(r, cid, j.root, deadline_ms)) != 0) {
		aeth__error_wrap(rc, "configuring VM %s through %s", r->id, fc_binary(r));
		goto fail;
	}
	aeth__debug("VM %s: %s pid %d started%s, guest cid %u, vsock %s", r->id,
		    fc_binary(r), (int)r->pid, j.root ? " by the jailer" : "", cid,
		    r->agent_sock);
	aeth__fc_jail_clear(&j);
	return 0;
fail:
	fc_kill(r);
	r->pid = 0;
	r->pid_starttime = 0;
	fc_cleanup(r);
	aeth__fc_jail_clear(&j);
	return rc;
}

static int fc_agent_connect(aeth__vm_record *r, int64_t deadline_ms, int *fd_out)
{
	int rc = aeth__fc_vsock_connect(r->agent_sock, agent_port(r), deadline_ms, alive_cb,
					r, fd_out);

	if (rc == AETH_EUNAVAILABLE) {
		char *log = vmm_log_tail(r);

		aeth__error_wrap(rc, "VM %s (%s log: %s)", r->id, fc_binary(r),
				 log && *log ? log : "empty");
		free(log);
	}
	return rc;
}

static int fc_powerdown(aeth__vm_record *r, int64_t deadline_ms)
{
	aeth__fc_api *api = NULL;
	int rc;

	if (!fc_alive(r))
		return 0;
	rc = aeth__fc_api_open(&api, r->api_sock, api_timeout(deadline_ms));
	if (rc == 0)
		rc = aeth__fc_put_action(api, "SendCtrlAltDel");
	aeth__fc_api_free(api);
	if (rc != 0)
		return rc;
	return aeth__vm_pid_wait_gone(r->pid, r->id, r->pid_starttime, deadline_ms);
}

/* The calls of a snapshot step, given its files and an API client. */
typedef int (*snapshot_step)(aeth__fc_api *api, const aeth__vm_record *r,
			     const char *state, const char *ram);

static int with_snapshot(aeth__vm_record *r, const char *dir,
			 int64_t deadline_ms, snapshot_step step)
{
	char *state = aeth__sprintf("%s/state", dir);
	char *ram = aeth__sprintf("%s/ram", dir);
	aeth__fc_api *api = NULL;
	int rc = state && ram ? aeth__fc_api_open(&api, r->api_sock,
						  api_timeout(deadline_ms))
			      : AETH_ENOMEM;

	if (rc == 0)
		rc = step(api, r, state, ram);
	aeth__fc_api_free(api);
	free(state);
	free(ram);
	return rc;
}

static int save_step(aeth__fc_api *api, const aeth__vm_record *r,
		     const char *state, const char *ram)
{
	int rc = aeth__fc_patch_vm(api, "Paused");

	(void)r;
	return rc ? rc : aeth__fc_put_snapshot_create(api, state, ram);
}

static int load_step(aeth__fc_api *api, const aeth__vm_record *r,
		     const char *state, const char *ram)
{
	return aeth__fc_put_snapshot_load(api, state, ram, r->agent_sock);
}

/* The template (agent answered): paused, then a Full snapshot into dir
 * (Firecracker writes both files). Not under Firecracker's jailer
 * (snapshot.c does not ask then): its paths would be the jail's. */
static int fc_snapshot_save(aeth__vm_record *r, const char *dir,
			    int64_t deadline_ms)
{
	return with_snapshot(r, dir, deadline_ms, save_step);
}

/* A fresh Firecracker (started with AETH__BOOT_RESTORE: not configured):
 * load the snapshot, its memory mapped privately from dir/ram, the vsock
 * on this VM's socket, and run. */
static int fc_restore(aeth__vm_record *r, const char *dir, int64_t deadline_ms)
{
	return with_snapshot(r, dir, deadline_ms, load_step);
}

const aeth__vm_backend aeth__vm_backend_firecracker = {
	.name = "firecracker",
	.start = fc_start,
	.agent_connect = fc_agent_connect,
	.powerdown = fc_powerdown,
	.kill = fc_kill,
	.cleanup = fc_cleanup,
	.snapshot_save = fc_snapshot_save,
	.restore = fc_restore,
	.alive = fc_alive,
};
