/*
 * lib/vm/jail.h - the library's side of VMM confinement: a manager's
 * settings (resolved once at aeth_vmm_open), and per VM the unprivileged
 * uid, the overlay directory, the cgroup and the aeth-jailer start that
 * puts the VMM in its namespaces (lib/jail/jail.h is the jailer's side).
 *
 * What is confined, and how, is in docs/security.md. In short: with the
 * jail on (the default, required when the worker is root) a VMM runs as
 * a uid of its own, without capabilities, in its own pid, mount, network,
 * IPC and UTS namespaces, with a root that holds only /usr and a few
 * device nodes, inside a cgroup with memory, CPU and pids limits, and
 * with QEMU's seccomp filter on; the guest reaches only what its network
 * profile allows, through the jailer's relay.
 */
#ifndef AETH_VM_JAIL_H
#define AETH_VM_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aetherium/vm.h"
#include "internal.h"
#include "vm/cgroup.h"

struct aeth__vm_record;

typedef struct aeth__jail_conf {
	bool on;                  /* resolved from aeth_jail_mode */
	bool as_root;             /* we are root: VMMs get uids of their own */
	char *jailer;             /* aeth-jailer, absolute */
	unsigned int uid_base;
	unsigned int uid_count;
	char *uids_dir;           /* <state dir>/uids: one file per uid in use */
	bool cgroups;
	char *cgroup_parent;
	aeth__cgroup_host cg;
	char *overlay_base;       /* per-VM overlay dirs go below it */
	char *why_off;            /* when !on: why, for warnings and -check */
	/* firecracker backend (firecracker_jail.c): Firecracker's own
	 * jailer, absolute, NULL when not used; its --chroot-base-dir */
	char *fc_jailer;
	char *fc_chroot_base;
} aeth__jail_conf;

/* Resolve the options (mode, jailer, uid range, cgroups, overlay dir)
 * for a manager whose state dir is `state_dir`. AETH_EINVALID (with the
 * fix) when the jail is required but cannot work here. */
/* `o` is a current-version struct (aeth_vmm_open() copied the caller's). */
int aeth__jail_conf_init(aeth__jail_conf *c, const aeth_vmm_options *o,
			 const char *state_dir);
void aeth__jail_conf_clear(aeth__jail_conf *c);

/* What both backends' confinement share: zero c, then root or not, the
 * uid range, the uid reservation dir, cgroups and their parent. */
int aeth__jail_conf_common(aeth__jail_conf *c, const aeth_vmm_options *o,
			   const char *state_dir);

/* Extra guest memory the VMM itself needs (TCG code cache, device state,
 * the kernel image it reads): part of the cgroup's memory limit. */
#define AETH__VMM_OVERHEAD_MB 256

/*
 * A jailer's command line: a NULL-terminated array of malloc'd strings
 * of at most `max` entries. An allocation that fails or an entry past
 * `max` is remembered, and aeth__argv_done() then frees all and returns
 * NULL; else the array (the caller frees it with aeth_strarray_free()).
 */
typedef struct {
	char **v;
	size_t n, max;
	bool bad;
} aeth__argv;

int aeth__argv_init(aeth__argv *a, size_t max);
void aeth__argv_add(aeth__argv *a, const char *s);
void aeth__argv_addf(aeth__argv *a, const char *fmt, ...) AETH__PRINTF(2, 3);
char **aeth__argv_done(aeth__argv *a);

/* The limits of a VM's cgroup: memory = guest + AETH__VMM_OVERHEAD_MB,
 * CPU = vCPUs + half a core, 256 pids. */
void aeth__jail_cgroup_limits(const struct aeth__vm_record *r,
			      aeth__cgroup_limits *lim);

/*
 * Start the VMM `argv` for `r`: confined through aeth-jailer when the
 * jail is on, else directly (with QEMU's -sandbox only). fds[i] becomes
 * descriptor AETH__JAIL_FIRST_FD + i of the VMM (argv refers to them);
 * they stay open here (the caller closes them). Sets r->pid and its start
 * time, r->helper_pid, r->jail_uid, r->overlay_path (the VM's overlay
 * directory), r->cgroups. On failure everything set up is undone and the
 * message is the jailer's or the VMM's own.
 */
int aeth__jail_spawn(struct aeth__vm_record *r, const aeth__jail_conf *c,
		     char *const argv[], const int *fds, size_t nfds,
		     int64_t deadline_ms);

/* A program we may run as root: a regular executable owned by root (or
 * us) that nobody else can write. If not, false and the reason in why. */
bool aeth__jail_binary_trusted(const char *path, char *why, size_t n);

/*
 * Reserve a uid (= gid) of c's range that no other VM of this host uses:
 * a file <uids_dir>/<uid> holding the VM id, made O_EXCL (a file whose VM
 * is gone is taken over). Sets r->jail_uid. AETH_EBUSY when all are used.
 * aeth__jail_release_uid() (through r->jail) gives it back; idempotent.
 */
int aeth__jail_take_uid(struct aeth__vm_record *r, const aeth__jail_conf *c);
void aeth__jail_release_uid(struct aeth__vm_record *r);

/* Undo what aeth__jail_spawn set up once the VMM is gone: the relay, the
 * cgroup, the overlay and root directories, the uid. Idempotent. */
void aeth__jail_cleanup(struct aeth__vm_record *r);

#endif
