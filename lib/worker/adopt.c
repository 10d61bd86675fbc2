/*
 * lib/worker/adopt.c - a worker that died (killed, its machine's container
 * restarted, its id changed) leaves VMs running and tasks in its own queue
 * "worker:<id>". Another worker on the same host, in the same state dir,
 * adopts them: at its start and every few seconds after (janitor.c).
 *
 * - Dead means: its registry entry is "dead" (no heartbeat for a few
 *   intervals) or gone. A worker that stopped gracefully is not dead: its
 *   VMs wait for it to come back with the same id (reconcile.c), up to
 *   their lifetime.
 * - Same host means: the VM's row says so (vms.metadata "host" =
 *   worker.host_id, "state_dir"): a worker never touches VMs it cannot
 *   see, whatever the database says about other hosts.
 * - Each VM is taken with one compare-and-set in PostgreSQL (owner_worker
 *   = dead id -> our id), so two adopters never both take it. A VM whose
 *   VMM still runs is reattached; one whose VMM is gone is cleaned up and
 *   its row marked failed, saying why.
 * - Its warm pools' VMs (no row: nobody owns them yet) are deleted.
 * - The dead worker's queued tasks (executes and deletes routed to it) are
 *   forwarded, once each, to the queue of the VM's owner now (forward.c);
 *   a task for a VM that is gone reaches a live worker that fails it with
 *   the VM's state. Tasks it held leased come back to that queue when
 *   their lease expires and are forwarded on a later round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "worker/payload.h"
#include "worker/pool.h"
#include "worker/worker_internal.h"

#define DRAIN_BATCH 50

/* From the registry: the ids not dead (alive or stopped: their VMs are
 * not ours to take) and the dead ones of this host (their queues are
 * drained). false when Redis cannot tell (then nothing is adopted). */
static bool registry(aeth_worker *w, aeth_queue *q, char ***live, char ***dead)
{
	char *json = NULL;
	cJSON *a, *e;
	size_t nl = 0, nd = 0, n;

	*live = *dead = NULL;
	if (aeth_queue_worker_list(q, &json) != 0)
		return false;
	a = cJSON_Parse(json);
	aeth_free(json);
	n = (size_t)cJSON_GetArraySize(a) + 1;
	*live = calloc(n, sizeof(char *));
	*dead = calloc(n, sizeof(char *));
	cJSON_ArrayForEach(e, a) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "id"));
		const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "state"));
		const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e,
										    "host_id"));

		if (!*live || !*dead || !id || !st)
			continue;
		if (strcmp(st, "dead") != 0) {
			if (((*live)[nl] = strdup(id)))
				nl++;
		} else if (host && !strcmp(host, w->host_id) && strcmp(id, w->id)) {
			if (((*dead)[nd] = strdup(id)))
				nd++;
		}
	}
	cJSON_Delete(a);
	if (!*live || !*dead) {
		aeth_strarray_free(*live);
		aeth_strarray_free(*dead);
		*live = *dead = NULL;
		aeth__error_oom();
		return false;
	}
	return true;
}

static bool listed(char **v, const char *s)
{
	for (; v && *v; v++)
		if (!strcmp(*v, s))
			return true;
	return false;
}

/* Take VM `id` from dead worker `from`; reattach it or fail it. */
static void adopt_vm(aeth_worker *w, aeth__rec *rec, const char *id,
		     const char *from)
{
	aeth_vm *vm = NULL;
	char why[512];

	if (aeth__rec_vm_take(rec, id, from, w->id) != 0)
		return; /* another worker took it first, or it ended */
	if (aeth_vm_get(&vm, w->vmm, id) == 0 &&
	    aeth_vm_status(vm) == AETH_VM_RUNNING && aeth__vm_adopt(w, vm) == 0) {
		aeth__worker_say(w, NULL, "Adopted VM %s of dead worker %s", id, from);
		return;
	}
	snprintf(why, sizeof(why), "its worker %s died and its VMM is gone too",
		 from);
	if (vm) {
		aeth_vm_delete(vm);
		aeth_vm_free(vm);
	}
	aeth__rec_vm_status(rec, id, "failed", why);
	aeth__worker_say(w, NULL, "✗ VM %s: %s", id, why);
}

/* Forward what waits in dead worker `dead`'s own queue to each VM's
 * owner now. Returns how many tasks moved. */
static int drain(aeth_worker *w, aeth__rec *rec, aeth_queue *q, const char *dead)
{
	char *queue = aeth__sprintf("worker:%s", dead);
	aeth_queue_source src = {queue, 1, 1};
	aeth_queue_task *tasks[DRAIN_BATCH];
	size_t got = 0;
	int moved = 0;

	if (!queue)
		return 0;
	while (aeth_queue_dequeue_batch(q, &src, 1, 0, tasks, DRAIN_BATCH, &got) == 0 &&
	       got > 0) {
		for (size_t i = 0; i < got; i++) {
			aeth_queue_task *t = tasks[i];
			char *vm = aeth__payload_vm_id(t->payload, strlen(t->payload));
			char status[32], owner[256] = "";
			char *to;

			if (!vm || aeth__rec_vm_lookup(rec, vm, status, owner) != 0 ||
			    !owner[0] || !strcmp(owner, dead))
				snprintf(owner, sizeof(owner), "%s", w->id);
			to = aeth__sprintf("worker:%s", owner);
			if (to && aeth__forward_task(q, rec, t, to) == 0) {
				moved++;
				aeth__worker_say(w, t->id, "Task %s of dead worker %s "
						 "moved to queue %s", t->id, dead, to);
			} else {
				aeth__warn("task %s of dead worker %s: %s", t->id, dead,
					   aeth_error_last());
			}
			free(to);
			free(vm);
			aeth_queue_task_free(t);
		}
	}
	free(queue);
	return moved;
}

int aeth__worker_adopt(aeth_worker *w, aeth__rec *rec, aeth_queue *q)
{
	char **ids = NULL, **owners = NULL, **live = NULL, **dead = NULL;
	int rc;

	if (!registry(w, q, &live, &dead))
		return aeth_error_last_code() ? aeth_error_last_code() : AETH_EUNAVAILABLE;
	rc = aeth__rec_vms_on_host(rec, w->id, w->host_id, aeth_vmm_state_dir(w->vmm),
				   &ids, &owners);
	for (size_t i = 0; rc == 0 && ids[i]; i++)
		if (!listed(live, owners[i]))
			adopt_vm(w, rec, ids[i], owners[i]);
	/* the VMs moved first, so each task finds its VM's new owner */
	for (size_t i = 0; dead[i]; i++)
		drain(w, rec, q, dead[i]);
	/* spares of a dead worker's warm pools serve nobody */
	if (dead[0])
		aeth__pool_reap_dead(w, dead);
	aeth_strarray_free(ids);
	aeth_strarray_free(owners);
	aeth_strarray_free(live);
	aeth_strarray_free(dead);
	return rc;
}
