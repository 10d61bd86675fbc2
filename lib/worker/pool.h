/*
 * lib/worker/pool.h - warm pools: VMs a worker keeps booted and
 * agent-ready for the shapes of its configuration (pool.NAME: size,
 * vcpus, memory_mb, image, network, rootfs), so that a vm:create of such
 * a shape is a hand-out, not a boot (docs/worker.md, "Warm pools").
 *
 * - A pool VM is a VM like any other (same jail, limits, snapshot restore
 *   when its shape allows); its vm.json carries "<worker id>/<pool>" and
 *   it has no row in PostgreSQL until a vm:create takes it (then its row,
 *   name, owner and lifetime are written as for a cold VM).
 * - Taking is under the pools' lock: a VM is taken by one create only,
 *   and a VM taken or found dead is never put back.
 * - Pool VMs count against limits.vms, limits.memory_mb and
 *   limits.overlay_mb (w->pool_vms ..., under w->vm_mu; quota.c). A
 *   refill is one VM at a time, only within the limits; a user's create
 *   that would pass a limit first evicts a pool VM (users before spares).
 * - The pool thread looks at its VMs every second (VMM alive, lifetime)
 *   and refills; on a graceful stop the pool VMs are deleted; after a
 *   crash the restarted worker (same id) takes back the ones still alive
 *   (aeth__pool_reconcile), and a worker adopting a dead worker's VMs
 *   deletes that worker's pool VMs (aeth__pool_reap_dead).
 */
#ifndef AETH_WORKER_POOL_H
#define AETH_WORKER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "aetherium/vm.h"

struct aeth_worker;
struct aeth__image;
struct aeth__profile;

/* What a vm:create resolved to, as far as a pool can serve it. */
typedef struct {
	unsigned int vcpus, memory_mb;
	const char *image;    /* catalogue name */
	const char *network;  /* "none" or a profile name ("tap" never pools) */
	bool rootfs;
} aeth__pool_shape;

/* Read pool.* from the worker's configuration (names checked against the
 * catalogue). 0, or AETH_EINVALID naming the entry. */
int aeth__pools_load(struct aeth_worker *w);
void aeth__pools_free(struct aeth_worker *w);
/* Add each pool's ready and booting VMs and its size to the pool gauges
 * (aeth_pool_vms, aeth_pool_target_vms): the worker's metrics collector. */
void aeth__pools_collect(struct aeth_worker *w);

/* Start / stop the pool thread (stop deletes the pool VMs). */
int aeth__pools_start(struct aeth_worker *w);
void aeth__pools_stop(struct aeth_worker *w);

/*
 * Take a ready VM of `shape`, checked alive (its agent answers a ping):
 * the caller owns *out (a handle) and must aeth__pool_taken() once it
 * is in the VM table, or aeth__pool_drop() it. AETH_ENOTFOUND when no
 * pool of that shape has one ready.
 */
int aeth__pool_take(aeth_vm **out, struct aeth_worker *w,
		    const aeth__pool_shape *shape);
/* The taken VM is in the VM table now: its quota moves there. */
void aeth__pool_taken(struct aeth_worker *w, aeth_vm *vm);
/* The taken VM could not be handed out: delete it (and free the handle). */
void aeth__pool_drop(struct aeth_worker *w, aeth_vm *vm);

/* Delete one ready pool VM (of the fullest pool) to free its quota for a
 * user's create. true when one was deleted. */
bool aeth__pool_evict(struct aeth_worker *w);

/* At start (before the pool thread): take back this worker id's pool VMs
 * still alive and fitting a pool; delete the others. */
void aeth__pool_reconcile(struct aeth_worker *w);
/* Delete the pool VMs in this state dir of the workers listed (dead). */
void aeth__pool_reap_dead(struct aeth_worker *w, char *const *dead);

/* The pools' state for the registry: a JSON array (malloc'd text) of
 * {"name","size","ready","booting","vcpus","memory_mb","image","network",
 * "rootfs","handed_out","made","failed","last_error"}; NULL without pools. */
char *aeth__pools_json(struct aeth_worker *w);

#endif
