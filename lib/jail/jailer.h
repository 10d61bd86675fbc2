/*
 * lib/jail/jailer.h - the parts of the aeth-jailer program (not the
 * library): jailer.c (command line, the order of things, status),
 * sandbox.c (namespaces, mounts, credentials), netns.c (the VMM's network
 * namespace), relay.c (the egress relay).
 */
#ifndef AETH_JAIL_JAILER_H
#define AETH_JAIL_JAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jail/jail.h"
#include "jail/jail_rules.h"

typedef struct {
	const char *id;
	const char *exec;            /* the VMM binary, absolute */
	char **argv;                 /* the VMM's argv (after "--") */
	const char *root;
	const char *tmp;
	bool as_root;                /* started as root: switch to uid/gid */
	uid_t uid;
	gid_t gid;
	gid_t groups[AETH__JAIL_MAX_GROUPS];
	size_t ngroups;
	const char *devs[AETH__JAIL_MAX_DEVS];
	size_t ndevs;
	const char *cgroups[AETH__JAIL_MAX_CGROUPS];
	size_t ncgroups;
	int nfds;
	aeth__net_rule rules[AETH__NET_RULE_MAX];
	size_t nrules;
	uint32_t resolver;           /* host byte order, 0 = none */
	/* --ram-discard private: the VMM's guest memory is a private mapping
	 * of a sealed memfd (a VM restored from a snapshot) */
	bool ram_discard_private;
	bool resolv_conf;            /* bind /etc/resolv.conf for the VMM */
	/* "AETH_VM_DIR=..." in the VMM's environment: whose VM it is, for
	 * operators and tests (ps and /proc/PID/environ) */
	char vm_dir_env[4200];
} jail_spec;

/* Ports the relay listens on in the VMM's network namespace. */
#define RELAY_MAX_LISTENERS (AETH__NET_RULE_MAX + 1)

typedef struct {
	int fd;
	uint32_t addr;               /* host byte order; 0 = any */
	uint16_t port;
	bool udp;                    /* the DNS listener */
} relay_listener;

/* ---- sandbox.c ----
 * Each returns 0, or -1 with errno set and *what naming the step that
 * failed ("mount /usr", ...), for the status line. */

/* Report "what: strerror(errno)" on `err` (the child's setup error pipe)
 * and _exit: for the VMM-to-be child only. */
void jail_die(int err, const char *what) __attribute__((noreturn));

/* The user namespace of a jailer that is not root: maps its own uid and
 * gid. In the jailer, before the pid namespace. */
int jail_enter_userns(const char **what);

/* In the new mount namespace: a root holding what the VMM needs, then
 * pivot into it. */
int jail_build_root(const jail_spec *s, const char **what);

/* Drop to the VMM's credentials for good: groups, uid and gid (when
 * `switch_ids`: the jailer ran as root), no capabilities (bounding set
 * too), no new privileges. */
int jail_drop_privileges(const jail_spec *s, bool switch_ids,
			 const char **what);

/*
 * For --ram-discard private, after jail_drop_privileges() (it needs no
 * new privileges): a seccomp filter under which fallocate(fd,
 * FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ...) returns 0 without
 * doing anything. QEMU 7.2 discards guest memory the guest reported free
 * by punching a hole in the memory's file and then madvise(DONTNEED); for
 * a private mapping of a sealed memfd the first step fails (the seal:
 * the memfd is every restored VM's template and must not change) and
 * QEMU then skips the second, which is the one that returns the VM's own
 * copies of those pages. Nothing else changes: the memfd refuses the
 * hole anyway, and such a VM has no disk. 0, or -1 (errno set).
 */
int jail_ram_discard_filter(const char **what);

/* ---- netns.c ---- */

/*
 * In a fresh network namespace: bring loopback up and make every IPv4
 * address local to it (so that the VMM's outgoing connections all land
 * on the relay's listeners, whatever address they are for). 0 or -1.
 */
int jail_netns_setup(void);

/* ---- relay.c ---- */

/* Listeners for the rules (TCP per port: on the rules' own addresses,
 * or on any address for "*:PORT" and networks; UDP 53 for "dns"), in
 * the current network namespace. Returns the count or -1. */
int relay_listen(const jail_spec *s, relay_listener *out, size_t max);

/* Serve until the VMM (`vmm_pid`, our child) exits. Never returns. */
void relay_run(const jail_spec *s, relay_listener *l, size_t n,
	       pid_t vmm_pid) __attribute__((noreturn));

#endif
