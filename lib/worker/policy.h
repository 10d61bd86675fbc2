/*
 * lib/worker/policy.h - what a worker lets a vm:create have: its image
 * catalogue, network profiles, tap allowlist, and the limits (per VM,
 * per worker, lifetimes, command timeouts), read once from the worker's
 * configuration. docs/security.md explains each rule; docs/config.md the
 * keys.
 *
 * A payload names catalogue entries, never host resources: images are
 * files below vmm.image_dir (opened without following symlinks by
 * lib/vm), profiles are lists of egress rules, taps come from
 * network.taps.
 */
#ifndef AETH_WORKER_POLICY_H
#define AETH_WORKER_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "aetherium/config.h"

typedef struct {
	char *name;
	char *kernel;      /* absolute paths below the image dir */
	char *initrd;
	char *rootfs;      /* NULL: this image has no root disk */
} aeth__image;

typedef struct {
	char *name;
	char **allow;      /* NULL-terminated rules (lib/jail/jail_rules.h) */
} aeth__profile;

typedef struct {
	aeth__image *images;      /* [0] is "default" (vmm.kernel, ...) */
	size_t nimages;
	aeth__profile *profiles;  /* "user" is always there */
	size_t nprofiles;
	char **taps;              /* NULL-terminated allowlist */
	bool network;             /* vmm.network: NICs allowed at all */
	bool use_rootfs;          /* vmm.use_rootfs: rootfs unset = true */
	/* limits.* */
	unsigned int vm_vcpus, vm_memory_mb, vms;
	uint64_t memory_mb;       /* committed guest memory, all VMs */
	uint64_t overlay_mb;      /* overlay space (root disks), all VMs */
	unsigned int ttl_s, ttl_max_s;
	unsigned int exec_timeout_ms, exec_timeout_max_ms;
} aeth__policy;

/* Read it from `cfg`, with the image dir resolved as lib/vm does
 * (realpath'd: its own symlinks are the operator's; nothing below it
 * may be one). 0, or AETH_EINVALID naming the key. */
int aeth__policy_load(aeth__policy *p, const aeth_config *cfg);
void aeth__policy_clear(aeth__policy *p);

const aeth__image *aeth__policy_image(const aeth__policy *p, const char *name);
const aeth__profile *aeth__policy_profile(const aeth__policy *p,
					  const char *name);
bool aeth__policy_tap_allowed(const aeth__policy *p, const char *tap);

/*
 * Call `cb` (infra_warnings.h) for every way a guest network profile
 * reaches the worker's own Redis or PostgreSQL over TCP: a "host:PORT"
 * rule on the port of a loopback endpoint, an address rule covering an
 * endpoint's address, "*:PORT" on the port of a public one. Names are not
 * resolved (nothing is said about them). Returns how many it found.
 */
typedef void (*aeth__policy_warn_cb)(const char *what, const char *detail,
				     const char *fix, void *userdata);
int aeth__policy_exposure(const aeth__policy *p, const char *redis_url,
			  const char *database_url, aeth__policy_warn_cb cb,
			  void *userdata);

/* "default, debian" / "user, git": names for messages (malloc'd). */
char *aeth__policy_image_names(const aeth__policy *p);
char *aeth__policy_profile_names(const aeth__policy *p);

#endif
