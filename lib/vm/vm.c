/*
 * lib/vm/vm.c - one VM's lifecycle over a backend: create, start (with the
 * agent-hello readiness loop), stop, delete, get, accessors, and the agent
 * connection the exec API borrows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "config/config_defaults.h"
#include "vm/handles.h"
#include "vm/snapshot.h"

#include "agent/agent_client.h"
#include "jail/jail_rules.h"
#include "metrics/metrics.h"

/*
 * cryptomgr.notests skips the kernel's crypto self-tests (~1 s of guest
 * time under TCG); the rest drop probes microvm has nothing for. Measured
 * in docs/image.md: together ~25 % off a TCG boot.
 */
#define CMDLINE_BASE                                                           \
	"console=ttyS0 panic=-1 quiet aeth.channel=virtio-serial aeth.port=1024" \
	" cryptomgr.notests no_timer_check i8042.noaux i8042.nokbd audit=0"     \
	" nowatchdog"
/*
 * TCG boots hung calibrating the TSC against timers microvm lacks (PIT,
 * HPET): the guest's TSC runs at the host's rate under TCG, so that rate is
 * given instead of measured. tsc=reliable keeps the clocksource watchdog,
 * which compares against jiffies that lose ticks under load, from dropping
 * the TSC later. Evidence in docs/image.md ("TCG boot hang").
 */
#define TSC_KHZ_FALLBACK 2000000L
#define CMDLINE_NET " aeth.ip=10.0.2.15/24 aeth.gw=10.0.2.2 aeth.dns=10.0.2.3"
/* The agent, PID 1 of the initramfs, switches to the root disk (the
 * backends attach it as the first virtio-blk device). */
#define CMDLINE_ROOT " aeth.root=/dev/vda aeth.rootfstype=ext4"
#define SERIAL_TAIL_BYTES 1500
/* A boot is tried twice (TSC hang) only when each attempt can have this
 * long: a normal TCG boot takes 2-3 s here, 10 s on a loaded host. */
#define BOOT_RETRY_MIN_MS 15000
/* Reconnecting to a running VM's agent: up to this long in all, each
 * hello given up to RECONNECT_ATTEMPT_MS before a new connection is tried
 * (a hello can be lost: the agent may see the previous host's hang-up
 * after the new host's hello, and drop its reply with that session). */
#define RECONNECT_TIMEOUT_MS 15000
#define RECONNECT_ATTEMPT_MS 3000
#define DEFAULT_STOP_TIMEOUT_MS 5000
#define HELLO_BACKOFF_MIN_MS 2
#define HELLO_BACKOFF_MAX_MS 50

/* The host's TSC rate in kHz, from /proc/cpuinfo's first "cpu MHz". */
static long host_tsc_khz(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	double mhz = 0;

	if (!f)
		return TSC_KHZ_FALLBACK;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
			break;
	fclose(f);
	return mhz >= 100 && mhz <= 100000 ? (long)(mhz * 1000 + 0.5)
					    : TSC_KHZ_FALLBACK;
}

/* The kernel command line the agent reads (CONTRACTS in docs/vm.md). */
static char *build_cmdline(const aeth__vm_record *r)
{
	char tcg[64] = "";

	if (r->accel == AETH_ACCEL_TCG)
		snprintf(tcg, sizeof(tcg), " tsc_early_khz=%ld tsc=reliable",
			 host_tsc_khz());
	return aeth__sprintf("%s%s%s%s", CMDLINE_BASE, tcg,
			     r->net != AETH_NET_NONE ? CMDLINE_NET : "",
			     r->rootfs_path ? CMDLINE_ROOT : "");
}

int aeth__vm_wrap(aeth_vm **out, aeth_vmm *vmm, aeth__vm_record *rec)
{
	aeth_vm *vm = calloc(1, sizeof(*vm));

	*out = NULL;
	if (!vm)
		return aeth__error_oom();
	vm->vmm = vmm;
	vm->backend = aeth__vm_backend_find(rec->backend);
	if (!vm->backend) {
		int rc = aeth__error_set(AETH_EINVALID,
					 "VM %s uses backend '%s', which this "
					 "build does not have", rec->id,
					 rec->backend ? rec->backend : "(none)");
		free(vm);
		return rc;
	}
	pthread_mutex_init(&vm->lock, NULL);
	vm->rec = *rec;
	vm->rec.jail = &vmm->jail;
	memset(rec, 0, sizeof(*rec));
	*out = vm;
	return 0;
}

static void set_error(aeth_vm *vm, aeth_vm_state state)
{
	free(vm->rec.error);
	vm->rec.error = state == AETH_VM_FAILED ? strdup(aeth_error_last()) : NULL;
	vm->rec.state = state;
}

/* net_allow: well-formed rules, with user networking and the jail. */
static int check_net_allow(const aeth_vmm *vmm, const aeth_vm_options *o)
{
	size_t n = 0;

	for (; o->net_allow && o->net_allow[n]; n++) {
		aeth__net_rule rule;
		const char *why;

		if (aeth__net_rule_parse(o->net_allow[n], &rule, &why) != 0)
			return aeth__error_set(AETH_EINVALID, "network rule '%.80s': %s",
					       o->net_allow[n], why);
	}
	if (n == 0)
		return 0;
	if (n > AETH__NET_ALLOW_MAX)
		return aeth__error_set(AETH_EINVALID, "%zu network rules: at most %d",
				       n, AETH__NET_ALLOW_MAX);
	if (o->net != AETH_NET_USER)
		return aeth__error_set(AETH_EINVALID, "network rules need user "
				       "networking (AETH_NET_USER)");
	if (vmm->backend != &aeth__vm_backend_qemu)
		return aeth__error_set(AETH_EINVALID, "network rules need the qemu "
				       "backend (the %s backend has no user "
				       "networking)", vmm->backend->name);
	if (!vmm->jail.on)
		return aeth__error_set(AETH_EINVALID, "network rules need the VMM "
				       "jail (its network namespace and relay), which "
				       "is off here: %s", vmm->jail.why_off ?
				       vmm->jail.why_off : "vmm.jail is off");
	return 0;
}

static char **copy_strv(const char *const *v)
{
	size_t n = 0;
	char **c;

	while (v[n])
		n++;
	c = calloc(n + 1, sizeof(*c));
	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			aeth_strarray_free(c);
			return NULL;
		}
	return c;
}

static const aeth_vm_options vm_defaults = AETH_VM_OPTIONS_INIT;
static const size_t vm_sizes[] = {
	AETH__END(aeth_vm_options, boot_timeout_ms), /* 1 */
	sizeof(aeth_vm_options),                     /* 2 */
};
static const aeth__versioned vm_options_v = {
	"aeth_vm_options", "AETH_VM_OPTIONS_INIT", AETH_VM_OPTIONS_VERSION,
	vm_sizes, &vm_defaults,
};

int aeth_vm_options_init(aeth_vm_options *opts, unsigned int version)
{
	return aeth__versioned_init(&vm_options_v, opts, version);
}

int aeth_vm_create(aeth_vm **out, aeth_vmm *vmm, const aeth_vm_options *opts)
{
	aeth_vm_options o;
	aeth__vm_record r;
	struct stat st;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_vm_create: out is NULL");
	*out = NULL;
	if ((rc = aeth__versioned_copy(&vm_options_v, &o, opts)) != 0)
		return rc;
	opts = &o;
	if (!vmm)
		return aeth__error_set(AETH_EINVALID, "aeth_vm_create: no VM manager");
	if ((rc = check_net_allow(vmm, opts)) != 0)
		return rc;
	if (opts->id && !aeth__uuid_valid(opts->id))
		return aeth__error_set(AETH_EINVALID,
				       "VM id '%s' is not a UUID", opts->id);
	if (opts->net > AETH_NET_TAP)
		return aeth__error_set(AETH_EINVALID, "unknown net mode %d",
				       (int)opts->net);
	if (opts->net == AETH_NET_TAP && (!opts->tap_name || !*opts->tap_name))
		return aeth__error_set(AETH_EINVALID,
				       "net mode tap needs tap_name (a tap device "
				       "the host has set up)");
	memset(&r, 0, sizeof(r));
	if (opts->id)
		memcpy(r.id, opts->id, 37);
	else
		aeth__uuid_new(r.id);
	r.name = aeth__strdup(opts->name ? opts->name : r.id);
	r.backend = aeth__strdup(vmm->backend->name);
	r.accel = vmm->accel;
	r.vcpus = opts->vcpus ? opts->vcpus : aeth__config_default_uint("vmm.vcpus");
	r.memory_mb = opts->memory_mb ? opts->memory_mb :
		aeth__config_default_uint("vmm.memory_mb");
	r.vmm_binary = aeth__strdup(vmm->backend == &aeth__vm_backend_qemu ?
				    vmm->qemu_binary : vmm->firecracker_binary);
	r.kernel_path = aeth__strdup(opts->kernel_path ? opts->kernel_path :
				     vmm->kernel_path);
	r.initrd_path = aeth__strdup(opts->initrd_path ? opts->initrd_path :
				     vmm->initrd_path);
	if (opts->net == AETH_NET_USER && opts->net_allow &&
	    opts->net_allow[0] && !(r.net_allow = copy_strv(opts->net_allow))) {
		rc = aeth__error_oom();
		goto fail;
	}
	r.rootfs_path = aeth__strdup(opts->rootfs_path ? opts->rootfs_path :
				     vmm->rootfs_path);
	r.net = opts->net;
	r.tap_name = aeth__strdup(opts->tap_name);
	r.cmdline = build_cmdline(&r);
	r.boot_timeout_ms = opts->boot_timeout_ms ? opts->boot_timeout_ms :
		vmm->boot_timeout_ms;
	r.state_dir = aeth__vmm_vm_dir(vmm, r.id);
	r.created_ms = aeth__wall_ms();
	if (opts->ttl_s)
		r.expires_ms = r.created_ms + (int64_t)opts->ttl_s * 1000;
	r.tcg_tb_mb = vmm->tcg_tb_mb;
	r.state = AETH_VM_CREATING;
	if (!r.name || !r.backend || !r.vmm_binary || !r.kernel_path ||
	    !r.initrd_path || !r.cmdline || !r.state_dir ||
	    (opts->tap_name && !r.tap_name)) {
		rc = aeth__error_oom();
		goto fail;
	}
	if (stat(r.state_dir, &st) == 0) {
		rc = aeth__error_set(AETH_EEXISTS, "a VM with id %s already "
				     "exists (%s)", r.id, r.state_dir);
		goto fail;
	}
	if ((rc = aeth__mkdir_p(r.state_dir, 0700)) != 0)
		goto fail;
	if ((rc = aeth__vm_record_save(&r)) != 0) {
		aeth__rm_rf(r.state_dir);
		goto fail;
	}
	return aeth__vm_wrap(out, vmm, &r);
fail:
	aeth__vm_record_clear(&r);
	return rc;
}

static int check_file(const char *what, const char *path)
{
	if (!path || access(path, R_OK) == 0)
		return 0;
	return aeth__error_errno(AETH_ENOTFOUND,
				 "guest %s not found at %s: build the image with "
				 "scripts/build-image.sh (or set AETH_IMAGE_DIR)",
				 what, path);
}

static void agent_drop(aeth_vm *vm)
{
	aeth__agent **g;

	if (!vm->agent)
		return;
	g = realloc(vm->graveyard, (vm->graveyard_len + 1) * sizeof(*g));
	if (g) {
		vm->graveyard = g;
		g[vm->graveyard_len++] = vm->agent;
	} else {
		aeth__agent_free(vm->agent); /* better than leaking the fd */
	}
	vm->agent = NULL;
}

/* Sleep `ms` (not past deadline_ms), then double it up to the cap. */
static void backoff(int *ms, int64_t deadline_ms)
{
	int64_t left = deadline_ms - aeth__now_ms();

	aeth__sleep_ms(left < *ms ? left : *ms);
	*ms = *ms * 2 > HELLO_BACKOFF_MAX_MS ? HELLO_BACKOFF_MAX_MS : *ms * 2;
}

/*
 * Connect the agent channel and say hello, until `deadline_ms`. With
 * attempt_ms 0 (a boot) the hello is sent once with all the time left:
 * QEMU keeps our bytes in the socket until the guest opens its port, so
 * the normal case needs no retry and no sleep. With attempt_ms (a
 * reconnect to a running guest) a hello unanswered that long is given up
 * and a new connection tried (see RECONNECT_ATTEMPT_MS). A connection
 * that drops (VMM restarting its chardev, agent reopening, a guest that
 * hangs up at once) is retried while time is left, after a pause growing
 * from 2 to 50 ms so a guest that keeps closing does not make us spin
 * until the deadline.
 */
static int agent_connect_hello(aeth_vm *vm, int64_t deadline_ms,
			       unsigned int attempt_ms)
{
	int rc, pause_ms = HELLO_BACKOFF_MIN_MS;
	char peer[48];

	snprintf(peer, sizeof(peer), "VM %s", vm->rec.id);
	for (;;) {
		aeth__agent *a = NULL;
		int fd;
		int64_t left;

		rc = vm->backend->agent_connect(&vm->rec, deadline_ms, &fd);
		if (rc)
			return rc;
		if ((rc = aeth__agent_open(&a, fd, peer)) != 0)
			return rc;
		left = deadline_ms - aeth__now_ms();
		if (attempt_ms && left > attempt_ms)
			left = attempt_ms;
		rc = aeth__agent_hello(a, left > 0 ? (unsigned int)left : 1, NULL);
		if (rc == 0) {
			vm->agent = a;
			return 0;
		}
		aeth__agent_free(a);
		if ((rc == AETH_ETIMEOUT && !attempt_ms) ||
		    aeth__now_ms() >= deadline_ms || !vm->backend->alive(&vm->rec))
			return rc;
		if (rc == AETH_ETIMEOUT)
			aeth__info("VM %s: no hello reply from its agent within %u ms; "
				   "connecting again", vm->rec.id, attempt_ms);
		backoff(&pause_ms, deadline_ms);
	}
}

static void kill_and_clean(aeth_vm *vm)
{
	vm->backend->kill(&vm->rec);
	vm->backend->cleanup(&vm->rec);
	vm->rec.pid = 0;
	vm->rec.pid_starttime = 0;
}

/* One boot attempt, until `deadline`. A VMM that exits on its own
 * (refused the memory, bad image, guest panic) sets vm->boot_exited: its
 * own words are the reason, and trying again would fail the same way. */
static int boot_once(aeth_vm *vm, int64_t deadline)
{
	int64_t t0 = aeth__now_ms();
	int rc;

	vm->boot_exited = false;
	rc = vm->backend->start(&vm->rec, deadline);
	if (rc != 0) {
		/* nothing ran (a file refused, the jail could not be set up):
		 * the backend's own words say it all, no serial log to quote */
		kill_and_clean(vm);
		return rc;
	}
	rc = agent_connect_hello(vm, deadline, 0);
	if (rc == 0 && vm->backend->ready)
		rc = vm->backend->ready(&vm->rec, deadline);
	if (rc == 0) {
		aeth__debug("VM %s ready in %lld ms", vm->rec.id,
			    (long long)(aeth__now_ms() - t0));
		return 0;
	}
	{
		bool died = vm->rec.pid && !vm->backend->alive(&vm->rec);
		char *tail = aeth__vm_serial_tail(&vm->rec, SERIAL_TAIL_BYTES);
		char *vmm = died ? aeth__vm_file_tail(vm->rec.vmm_log, 1024) : NULL;
		size_t n = vmm ? strlen(vmm) : 0;

		while (n && (vmm[n - 1] == '\n' || vmm[n - 1] == '\r'))
			vmm[--n] = '\0';
		if (died)
			rc = aeth__error_set(AETH_ERROR, "VM %s (%s, %s): the VMM "
					     "exited %lld ms after it started, "
					     "saying: %s; serial log %s ends "
					     "with:\n%s", vm->rec.id,
					     vm->backend->name,
					     aeth_accel_name(vm->rec.accel),
					     (long long)(aeth__now_ms() - t0),
					     n ? vmm : "(nothing)",
					     vm->rec.serial_log ? vm->rec.serial_log : "-",
					     tail && *tail ? tail : "(empty)");
		else
			rc = aeth__error_wrap(rc, "VM %s (%s, %s) did not become "
					      "ready within %lld ms; serial log %s "
					      "ends with:\n%s\n--- cause", vm->rec.id,
					      vm->backend->name,
					      aeth_accel_name(vm->rec.accel),
					      (long long)(aeth__now_ms() - t0),
					      vm->rec.serial_log ? vm->rec.serial_log : "-",
					      tail && *tail ? tail : "(empty)");
		vm->boot_exited = died;
		free(tail);
		free(vmm);
	}
	kill_and_clean(vm);
	return rc;
}

/*
 * Boot from the kernel. A defence against rare hung TCG boots (docs/vm.md,
 * "TSC hang"): with room for two attempts the first gets half the boot
 * timeout and a silent guest is booted once more in the rest. The whole
 * boot never takes longer than boot_timeout_ms; a VMM that exited is not
 * retried.
 */
int aeth__vm_boot_cold(aeth_vm *vm)
{
	int64_t t0 = aeth__now_ms(), deadline = t0 + vm->rec.boot_timeout_ms;
	bool retry = vm->rec.accel == AETH_ACCEL_TCG &&
		     vm->rec.boot_timeout_ms >= 2 * BOOT_RETRY_MIN_MS;
	int rc = boot_once(vm, retry ? t0 + vm->rec.boot_timeout_ms / 2 : deadline);

	if (rc == AETH_ETIMEOUT && retry && deadline - aeth__now_ms() >=
	    BOOT_RETRY_MIN_MS) {
		aeth__warn("%s; booting it once more in the %lld ms left of "
			   "its boot timeout", aeth_error_last(),
			   (long long)(deadline - aeth__now_ms()));
		rc = boot_once(vm, deadline);
	}
	return rc;
}

/*
 * Restore from the snapshot in `dir` (rec.boot_mode and rec.ram_fd set by
 * snapshot.c): start the VMM waiting for its state, load the state and
 * connect the agent's channel (QEMU: connect first, so the guest never
 * sees its host go away: the template was connected too), then say
 * hello as a new host.
 */
int aeth__vm_restore_once(aeth_vm *vm, const char *dir)
{
	int64_t deadline = aeth__now_ms() + vm->rec.boot_timeout_ms;
	aeth__agent *a = NULL;
	char peer[48];
	int fd = -1, rc;

	snprintf(peer, sizeof(peer), "VM %s", vm->rec.id);
	rc = vm->backend->start(&vm->rec, deadline);
	if (rc == 0 && vm->backend->connect_before_restore)
		rc = vm->backend->agent_connect(&vm->rec, deadline, &fd);
	if (rc == 0)
		rc = vm->backend->restore(&vm->rec, dir, deadline);
	if (rc == 0 && !vm->backend->connect_before_restore)
		rc = vm->backend->agent_connect(&vm->rec, deadline, &fd);
	if (rc == 0) {
		rc = aeth__agent_open(&a, fd, peer);
		fd = -1; /* taken, also on failure */
	}
	if (rc == 0) {
		int64_t left = deadline - aeth__now_ms();

		rc = aeth__agent_hello(a, left > 0 ? (unsigned int)left : 1, NULL);
	}
	if (rc == 0 && vm->backend->ready)
		rc = vm->backend->ready(&vm->rec, deadline);
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		vm->agent = a;
		return 0;
	}
	{
		bool died = vm->rec.pid && !vm->backend->alive(&vm->rec);
		char *log = died ? aeth__vm_file_tail(vm->rec.vmm_log, 1024) : NULL;

		rc = aeth__error_wrap(rc, "VM %s: restoring snapshot %s%s%s",
				      vm->rec.id, dir,
				      died ? ": the VMM exited, saying: " : "",
				      log && *log ? log : "");
		free(log);
	}
	aeth__agent_free(a);
	kill_and_clean(vm);
	return rc;
}

/*
 * What makes this VM itself (docs/protocol.md, "setup"): fresh entropy,
 * the wall clock, its host name (its id) and its id. A restored VM needs
 * it (it woke up with the template's RNG state, clock and name); a cold
 * one gets it too, so every VM looks the same from inside. An agent older
 * than protocol 2 cannot take it: fine for a cold boot, not for a
 * restore (snapshot.c never snapshots such an agent).
 */
static int give_identity(aeth_vm *vm, int64_t deadline)
{
	uint8_t entropy[64];
	aeth__agent_identity id;
	int64_t left = deadline - aeth__now_ms();
	int rc;

	if (aeth__agent_version(vm->agent) < 2) {
		if (vm->rec.origin == AETH_ORIGIN_SNAPSHOT)
			return aeth__error_set(AETH_EPROTO, "VM %s: its agent cannot "
					       "take a setup request", vm->rec.id);
		aeth__debug("VM %s: agent protocol %u: no setup (host name, clock, "
			    "entropy) sent", vm->rec.id,
			    aeth__agent_version(vm->agent));
		return 0;
	}
	if (getrandom(entropy, sizeof(entropy), 0) != (ssize_t)sizeof(entropy))
		return aeth__error_errno(AETH_EIO, "VM %s: getrandom", vm->rec.id);
	id.hostname = vm->rec.id;
	id.vm_id = vm->rec.id;
	id.time_ms = aeth__wall_ms();
	id.entropy = entropy;
	id.entropy_len = sizeof(entropy);
	rc = aeth__agent_setup(vm->agent, &id, left > 2000 ? (unsigned int)left
							   : 2000);
	explicit_bzero(entropy, sizeof(entropy));
	if (rc)
		return aeth__error_wrap(rc, "VM %s: giving the guest its identity",
					vm->rec.id);
	return 0;
}

bool aeth__vm_boot_vmm_exited(const aeth_vm *vm)
{
	return vm && vm->boot_exited;
}

int aeth_vm_start(aeth_vm *vm)
{
	int64_t t0 = aeth__now_ms();
	int rc;

	if (aeth_vm_status(vm) == AETH_VM_RUNNING)
		return aeth__error_set(AETH_ESTATE, "VM %s is already running",
				       vm->rec.id);
	if (vm->rec.state == AETH_VM_DELETED)
		return aeth__error_set(AETH_ESTATE, "VM %s was deleted",
				       vm->rec.id);
	if ((rc = check_file("kernel", vm->rec.kernel_path)) != 0 ||
	    (rc = check_file("initramfs", vm->rec.initrd_path)) != 0 ||
	    (rc = check_file("root filesystem", vm->rec.rootfs_path)) != 0)
		goto fail;
	pthread_mutex_lock(&vm->lock);
	agent_drop(vm);
	pthread_mutex_unlock(&vm->lock);
	vm->rec.state = AETH_VM_CREATING;
	free(vm->rec.snapshot);
	vm->rec.snapshot = NULL;
	vm->rec.origin = AETH_ORIGIN_COLD;
	/* 1: no snapshot for this start (said why), boot the kernel */
	rc = vm->rec.boot_mode == AETH__BOOT_COLD ? aeth__snapshot_start(vm) : 1;
	if (rc == 1) {
		vm->rec.boot_mode = vm->rec.boot_mode == AETH__BOOT_TEMPLATE ?
			AETH__BOOT_TEMPLATE : AETH__BOOT_COLD;
		rc = aeth__vm_boot_cold(vm);
	} else if (rc == 0) {
		vm->rec.origin = AETH_ORIGIN_SNAPSHOT;
	}
	if (rc == 0 && vm->rec.boot_mode != AETH__BOOT_TEMPLATE &&
	    (rc = give_identity(vm, t0 + vm->rec.boot_timeout_ms)) != 0)
		kill_and_clean(vm);
	if (vm->rec.boot_mode != AETH__BOOT_TEMPLATE)
		vm->rec.boot_mode = AETH__BOOT_COLD;
	if (rc)
		goto fail;
	vm->rec.start_ms = aeth__now_ms() - t0;
	set_error(vm, AETH_VM_RUNNING);
	aeth__debug("VM %s ready (%s) in %lld ms", vm->rec.id,
		    aeth_origin_name(vm->rec.origin), (long long)vm->rec.start_ms);
	return aeth__vm_record_save(&vm->rec);
fail:
	set_error(vm, AETH_VM_FAILED);
	{
		/* Keep the boot failure as the message, not a save error. */
		char *msg = aeth__strdup(aeth_error_last());

		aeth__vm_record_save(&vm->rec);
		if (msg)
			aeth__error_set(rc, "%s", msg);
		free(msg);
	}
	return rc;
}

static int stop_locked(aeth_vm *vm, unsigned int timeout_ms)
{
	int64_t deadline = aeth__now_ms() +
		(timeout_ms ? timeout_ms : DEFAULT_STOP_TIMEOUT_MS);
	aeth__vm_record *r = &vm->rec;

	if (vm->backend->alive(r)) {
		/* Graceful: the agent powers the guest off; QEMU runs with
		 * -no-reboot so it exits. Only if the channel is up already. */
		pthread_mutex_lock(&vm->lock);
		if (vm->agent && aeth__agent_alive(vm->agent)) {
			int64_t soft = aeth__now_ms() + 2000;

			if (soft > deadline)
				soft = deadline;
			if (aeth__agent_shutdown(vm->agent, 1000) == 0)
				aeth__vm_pid_wait_gone(r->pid, r->id,
						       r->pid_starttime, soft);
		}
		agent_drop(vm);
		pthread_mutex_unlock(&vm->lock);
		if (vm->backend->alive(r) &&
		    vm->backend->powerdown(r, deadline) != 0)
			aeth__warn("VM %s: %s; killing it", r->id,
				   aeth_error_last());
	}
	kill_and_clean(vm);
	set_error(vm, AETH_VM_STOPPED);
	return 0;
}

void aeth__vm_discard(aeth_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	agent_drop(vm);
	pthread_mutex_unlock(&vm->lock);
	kill_and_clean(vm);
	if (vm->rec.state_dir)
		aeth__rm_rf(vm->rec.state_dir);
	vm->rec.state = AETH_VM_DELETED;
}

int aeth__vm_fail(aeth_vm *vm, const char *reason)
{
	aeth__vm_record victim;
	int rc = 0;

	/* Kill first, outside vm->lock: a reconnect may hold it for seconds,
	 * waiting on this very guest. The record is copied under the lock
	 * (another thread may be failing the VM too: killing twice is
	 * harmless, the pid check makes it a no-op). */
	pthread_mutex_lock(&vm->lock);
	victim = vm->rec;
	pthread_mutex_unlock(&vm->lock);
	vm->backend->kill(&victim);
	pthread_mutex_lock(&vm->lock);
	agent_drop(vm);
	if (vm->rec.state != AETH_VM_FAILED) {
		aeth__warn("VM %s: %s; its VMM (pid %d) was killed", vm->rec.id,
			   reason, (int)vm->rec.pid);
		kill_and_clean(vm);
		free(vm->rec.error);
		vm->rec.error = aeth__strdup(reason);
		vm->rec.state = AETH_VM_FAILED;
		rc = aeth__vm_record_save(&vm->rec);
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

int aeth_vm_stop(aeth_vm *vm, unsigned int timeout_ms)
{
	if (vm->rec.state == AETH_VM_DELETED)
		return aeth__error_set(AETH_ESTATE, "VM %s was deleted",
				       vm->rec.id);
	stop_locked(vm, timeout_ms);
	return aeth__vm_record_save(&vm->rec);
}

int aeth_vm_delete(aeth_vm *vm)
{
	int rc;

	if (vm->rec.state == AETH_VM_DELETED)
		return 0;
	stop_locked(vm, 0);
	rc = aeth__rm_rf(vm->rec.state_dir);
	if (rc == 0)
		vm->rec.state = AETH_VM_DELETED;
	return rc;
}

void aeth_vm_free(aeth_vm *vm)
{
	if (!vm)
		return;
	if (vm->agent)
		aeth__agent_free(vm->agent);
	for (size_t i = 0; i < vm->graveyard_len; i++)
		aeth__agent_free(vm->graveyard[i]);
	free(vm->graveyard);
	pthread_mutex_destroy(&vm->lock);
	aeth__vm_record_clear(&vm->rec);
	free(vm);
}

int aeth_vm_get(aeth_vm **out, aeth_vmm *vmm, const char *id)
{
	aeth__vm_record r;
	char *dir;
	int rc;

	*out = NULL;
	if (!(dir = aeth__vmm_vm_dir(vmm, id)))
		return aeth_error_last_code();
	rc = aeth__vm_record_load(&r, dir);
	if (rc == AETH_ENOTFOUND)
		rc = aeth__error_set(AETH_ENOTFOUND,
				     "no VM with id %s in %s (aeth_vm_list shows "
				     "the VMs this state dir knows)", id,
				     vmm->vms_dir);
	free(dir);
	if (rc)
		return rc;
	if ((rc = aeth__vm_wrap(out, vmm, &r)) != 0) {
		aeth__vm_record_clear(&r);
		return rc;
	}
	aeth_vm_status(*out); /* notice a VMM that died meanwhile */
	return 0;
}

aeth_vm_state aeth_vm_status(aeth_vm *vm)
{
	if (vm->rec.state == AETH_VM_RUNNING && !vm->backend->alive(&vm->rec)) {
		aeth__error_set(AETH_EUNAVAILABLE,
				"the VMM (pid %d) of VM %s died", (int)vm->rec.pid,
				vm->rec.id);
		set_error(vm, AETH_VM_FAILED);
		aeth__vm_record_save(&vm->rec);
	}
	return vm->rec.state;
}

int aeth__vm_agent(aeth_vm *vm, aeth__agent **out)
{
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&vm->lock);
	if (vm->agent && aeth__agent_alive(vm->agent)) {
		*out = vm->agent;
		pthread_mutex_unlock(&vm->lock);
		return 0;
	}
	if (vm->rec.state != AETH_VM_RUNNING || !vm->backend->alive(&vm->rec)) {
		rc = aeth__error_set(AETH_ESTATE,
				     "VM %s is %s, not running: start it first",
				     vm->rec.id,
				     vm->rec.state == AETH_VM_RUNNING ? "dead" :
				     aeth_vm_state_name(vm->rec.state));
	} else {
		agent_drop(vm);
		rc = agent_connect_hello(vm, aeth__now_ms() + RECONNECT_TIMEOUT_MS,
					 RECONNECT_ATTEMPT_MS);
		if (rc == 0) {
			*out = vm->agent;
			aeth__metric_inc(AETH__M_AGENT_RECONNECTS, NULL, NULL);
		}
		if (rc != 0)
			aeth__error_wrap(rc, "reconnecting to the agent of VM %s",
					 vm->rec.id);
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

int aeth__vm_set_pool(aeth_vm *vm, const char *tag)
{
	char *t = NULL;

	if (tag && !(t = aeth__strdup(tag)))
		return AETH_ENOMEM;
	free(vm->rec.pool);
	vm->rec.pool = t;
	return aeth__vm_record_save(&vm->rec);
}

const char *aeth__vm_pool(const aeth_vm *vm)
{
	return vm->rec.pool;
}

aeth_net_mode aeth__vm_net(const aeth_vm *vm)
{
	return vm->rec.net;
}

int aeth__vm_claim(aeth_vm *vm, const char *name, unsigned int ttl_s,
		   int64_t handout_ms)
{
	char *n = aeth__strdup(name ? name : vm->rec.id);

	if (!n)
		return AETH_ENOMEM;
	free(vm->rec.name);
	vm->rec.name = n;
	free(vm->rec.pool);
	vm->rec.pool = NULL;
	vm->rec.expires_ms = ttl_s ? aeth__wall_ms() + (int64_t)ttl_s * 1000 : 0;
	vm->rec.origin = AETH_ORIGIN_POOL;
	vm->rec.start_ms = handout_ms;
	return aeth__vm_record_save(&vm->rec);
}

bool aeth__vm_vmm_alive(const aeth_vm *vm)
{
	return vm->backend->alive(&vm->rec);
}

const struct aeth__vm_record *aeth__vm_record_of(const aeth_vm *vm)
{
	return &vm->rec;
}

aeth_vm_state aeth__vm_recorded_state(const aeth_vm *vm)
{
	return vm->rec.state;
}

const char *aeth_vm_id(const aeth_vm *vm) { return vm->rec.id; }
const char *aeth_vm_name(const aeth_vm *vm) { return vm->rec.name; }
const char *aeth_vm_backend(const aeth_vm *vm) { return vm->backend->name; }
aeth_accel aeth_vm_accel(const aeth_vm *vm) { return vm->rec.accel; }
int aeth_vm_pid(const aeth_vm *vm) { return (int)vm->rec.pid; }
unsigned int aeth_vm_vcpus(const aeth_vm *vm) { return vm->rec.vcpus; }
unsigned int aeth_vm_memory_mb(const aeth_vm *vm) { return vm->rec.memory_mb; }
int64_t aeth_vm_expires_ms(const aeth_vm *vm) { return vm->rec.expires_ms; }
aeth_origin aeth_vm_origin(const aeth_vm *vm) { return vm->rec.origin; }
int64_t aeth_vm_start_ms(const aeth_vm *vm) { return vm->rec.start_ms; }
const char *aeth_vm_kernel_path(const aeth_vm *vm) { return vm->rec.kernel_path; }
const char *aeth_vm_rootfs_path(const aeth_vm *vm) { return vm->rec.rootfs_path; }
const char *aeth_vm_api_socket(const aeth_vm *vm) { return vm->rec.api_sock; }
const char *aeth_vm_agent_socket(const aeth_vm *vm) { return vm->rec.agent_sock; }
const char *aeth_vm_serial_log(const aeth_vm *vm) { return vm->rec.serial_log; }
const char *aeth_vm_state_dir(const aeth_vm *vm) { return vm->rec.state_dir; }
