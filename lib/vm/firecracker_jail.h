/*
 * lib/vm/firecracker_jail.h - Firecracker under Firecracker's own jailer
 * (aeth_vmm_options.firecracker_jailer, vmm.firecracker_jailer; see
 * docs/firecracker.md, "Running under Firecracker's jailer").
 *
 * The jailer builds its chroot at <base>/<exec file name>/<VM id>/root,
 * copies firecracker there, joins the cgroups it is given, chroots, makes
 * /dev/kvm and /dev/net/tun, drops to the VM's uid and gid and execs
 * firecracker (here: in a new pid namespace, its pid in
 * <root>/<exec file name>.pid). Everything Firecracker opens must be in
 * that root and is named in API calls by its path inside it. The library
 * prepares the root before the jailer runs: the kernel and initrd (hard
 * links, or private copies), the VM's disk copy, all readable by the
 * VM's uid; Firecracker creates its sockets and the serial log there.
 * Every host-side file of a jailed VM sits directly in the root (a
 * directory the VM's uid owns, below root-owned ones), so O_NOFOLLOW on
 * the last component is enough to never follow a link it planted.
 */
#ifndef AETH_VM_FIRECRACKER_JAIL_H
#define AETH_VM_FIRECRACKER_JAIL_H

#include <stdbool.h>
#include <stdint.h>

#include "vm/backend.h"
#include "vm/jail.h"

/* What Firecracker sees in its root (and what the API is told). */
#define AETH__FC_JAIL_API_SOCK "/api.sock"
#define AETH__FC_JAIL_VSOCK "/vsock.sock"
#define AETH__FC_JAIL_SERIAL "/serial.log"
#define AETH__FC_JAIL_KERNEL "/vmlinux"
#define AETH__FC_JAIL_INITRD "/initrd"
#define AETH__FC_JAIL_DISK "/rootfs.img"

/*
 * The firecracker backend's settings (vmm.c, at aeth_vmm_open): those the
 * QEMU jail shares (uid range and reservations, cgroups) and, when
 * firecracker_jailer is set, the jailer (absolute, trusted) and the
 * chroot base (created 0700, canonical). Refuses (AETH_EINVALID, naming
 * vmm.firecracker_jailer) a jailer that is missing or writable by others,
 * or a caller that is not root.
 */
int aeth__fc_jail_conf_init(aeth__jail_conf *c, const aeth_vmm_options *o,
			    const char *state_dir);

/* One start of a jailed VM: where its jail is, and what runs. */
typedef struct aeth__fc_jail {
	char *exec_file;  /* firecracker, canonical (as the jailer sees it) */
	char *dir;        /* <base>/<exec file name>/<VM id> */
	char *root;       /* <dir>/root: Firecracker's "/" */
	char *pid_file;   /* <root>/<exec file name>.pid */
	char **argv;      /* the jailer's command line */
} aeth__fc_jail;

/* Does this manager run Firecracker under the jailer? */
bool aeth__fc_jail_wanted(const aeth__vm_record *r);

/*
 * Lay out r's jail: fill j's paths and point r->api_sock, r->agent_sock,
 * r->serial_log at their host paths in the root (before anything is made,
 * so a failure can be cleaned up from the record).
 */
int aeth__fc_jail_layout(aeth__fc_jail *j, aeth__vm_record *r);

/*
 * Make the root (removing a stale one of this VM first), reserve the
 * VM's uid, put the kernel, initrd and disk copy in it (r->overlay_path),
 * record the cgroup directories the jailer will make (r->cgroups) and
 * build j->argv. Undone by aeth__fc_jail_cleanup().
 */
int aeth__fc_jail_build(aeth__fc_jail *j, aeth__vm_record *r);

/*
 * After the jailer (pid `jailer`) was started: wait for the pid file and
 * set r->pid (Firecracker's pid, in our pid namespace) and its start
 * time. Fails with the jailer's own words (its log) when it exits first.
 */
int aeth__fc_jail_wait_pid(const aeth__fc_jail *j, aeth__vm_record *r,
			   pid_t jailer, int64_t deadline_ms);

/* `host` (a path in `root`) as Firecracker sees it, or NULL if outside. */
const char *aeth__fc_jail_inner(const char *root, const char *host);

/* The jail root of r from its record (its API socket lives there), or
 * NULL when r does not run jailed. malloc'd. */
char *aeth__fc_jail_root_of(const aeth__vm_record *r);

/* Remove r's jail directory, its cgroups and its uid reservation once
 * Firecracker is gone. Idempotent; nothing for an unjailed VM. */
void aeth__fc_jail_cleanup(aeth__vm_record *r);

void aeth__fc_jail_clear(aeth__fc_jail *j);

#endif
