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
 *
 * Another host's VMs are never touched from here, with one exception
 * that touches only rows: a host is dead when every worker it had in the
 * registry is dead and the last of them was seen more than
 * worker.host_dead_after_ms ago (5 minutes: longer than a reboot, after
 * which the host adopts its own VMs as above). Its VMs cannot be reached
 * any more: their rows are marked failed, saying so (a compare-and-set:
 * a worker of that host that came back first keeps them), and the tasks
 * queued for its workers are taken here, where they fail with the VM's
 * state instead of waiting for ever.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "task/task.h"
#include "worker/pool.h"
#include "worker/worker_internal.h"

#define DRAIN_BATCH 50

static bool listed(char **v, const char *s);

/* What the registry says, as far as adopting goes. */
typedef struct {
	char **live;         /* ids not dead (alive or stopped: not ours to take) */
	char **dead_here;    /* dead ids of this host: their queues are drained */
	char **gone_hosts;   /* other hosts declared dead */
	char **gone_workers; /* the workers of those hosts */
} reg_view;

static void view_free(reg_view *v)
{
	aeth_strarray_free(v->live);
	aeth_strarray_free(v->dead_here);
	aeth_strarray_free(v->gone_hosts);
	aeth_strarray_free(v->gone_workers);
	memset(v, 0, sizeof(*v));
}

/* Append a copy of s to the NULL-terminated *v of room n+1. */
static void add(char **v, size_t *n, const char *s)
{
	if (v && s && (v[*n] = strdup(s)))
		(*n)++;
}

static const char *field(const cJSON *e, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, name));
}

/* Is host h dead: every entry of it dead, the youngest older than
 * dead_after_ms? */
static bool host_gone(const cJSON *a, const char *h, int64_t dead_after_ms)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, a) {
		const char *host = field(e, "host_id"), *st = field(e, "state");
		const cJSON *age = cJSON_GetObjectItemCaseSensitive(e, "age_ms");

		if (!host || strcmp(host, h))
			continue;
		if (!st || strcmp(st, "dead") || !cJSON_IsNumber(age) ||
		    age->valuedouble < (double)dead_after_ms)
			return false;
	}
	return true;
}

/* From the registry: see reg_view. false when Redis cannot tell (then
 * nothing is adopted or failed). */
static bool registry(aeth_worker *w, aeth_queue *q, reg_view *v)
{
	int64_t dead_after_ms = 300000;
	char *json = NULL;
	cJSON *a, *e;
	size_t nl = 0, nd = 0, ng = 0, nw = 0, n;

	memset(v, 0, sizeof(*v));
	aeth_config_get_int(&dead_after_ms, w->cfg, "worker.host_dead_after_ms");
	if (aeth_queue_worker_list(&json, q) != 0)
		return false;
	a = cJSON_Parse(json);
	aeth_free(json);
	n = (size_t)cJSON_GetArraySize(a) + 1;
	v->live = calloc(n, sizeof(char *));
	v->dead_here = calloc(n, sizeof(char *));
	v->gone_hosts = calloc(n, sizeof(char *));
	v->gone_workers = calloc(n, sizeof(char *));
	if (!v->live || !v->dead_here || !v->gone_hosts || !v->gone_workers) {
		cJSON_Delete(a);
		view_free(v);
		aeth__error_oom();
		return false;
	}
	cJSON_ArrayForEach(e, a) {
		const char *id = field(e, "id"), *st = field(e, "state");
		const char *host = field(e, "host_id");

		if (!id || !st)
			continue;
		if (strcmp(st, "dead") != 0)
			add(v->live, &nl, id);
		else if (host && !strcmp(host, w->host_id) && strcmp(id, w->id))
			add(v->dead_here, &nd, id);
		else if (host && strcmp(host, w->host_id) &&
			 host_gone(a, host, dead_after_ms)) {
			add(v->gone_workers, &nw, id);
			if (!listed(v->gone_hosts, host))
				add(v->gone_hosts, &ng, host);
		}
	}
	cJSON_Delete(a);
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
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, queue, 1, 1};
	aeth_queue_task *tasks[DRAIN_BATCH];
	size_t got = 0;
	int moved = 0;

	if (!queue)
		return 0;
	while (aeth_queue_dequeue_batch(tasks, &got, DRAIN_BATCH, q, &src, 1,
					0) == 0 &&
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

/* Host h is dead: mark the VMs its rows put there failed, each only if
 * the owner the row names is still one of h's dead workers. */
static void fail_host(aeth_worker *w, aeth__rec *rec, const reg_view *v, const char *h)
{
	char **ids = NULL, **owners = NULL, why[512];

	if (aeth__rec_vms_on_host(rec, w->id, h, NULL, &ids, &owners) != 0)
		return;
	for (size_t i = 0; ids[i]; i++) {
		if (listed(v->live, owners[i]))
			continue; /* its worker is alive elsewhere: not lost */
		snprintf(why, sizeof(why), "its host %s stopped answering: no worker "
			 "of it was seen for worker.host_dead_after_ms (the last was "
			 "%s); the VM cannot be reached, create a new one", h, owners[i]);
		if (aeth__rec_vm_fail_owned(rec, ids[i], owners[i], why) == 0)
			aeth__worker_say(w, NULL, "✗ VM %s on dead host %s marked failed "
					 "(its worker %s)", ids[i], h, owners[i]);
	}
	aeth_strarray_free(ids);
	aeth_strarray_free(owners);
}

int aeth__worker_adopt(aeth_worker *w, aeth__rec *rec, aeth_queue *q)
{
	char **ids = NULL, **owners = NULL;
	reg_view v;
	int rc;

	if (!registry(w, q, &v))
		return aeth_error_last_code() ? aeth_error_last_code() : AETH_EUNAVAILABLE;
	rc = aeth__rec_vms_on_host(rec, w->id, w->host_id, aeth_vmm_state_dir(w->vmm),
				   &ids, &owners);
	for (size_t i = 0; rc == 0 && ids[i]; i++)
		if (!listed(v.live, owners[i]))
			adopt_vm(w, rec, ids[i], owners[i]);
	/* the VMs moved first, so each task finds its VM's new owner */
	for (size_t i = 0; v.dead_here[i]; i++)
		drain(w, rec, q, v.dead_here[i]);
	/* spares of a dead worker's warm pools serve nobody */
	if (v.dead_here[0])
		aeth__pool_reap_dead(w, v.dead_here);
	/* dead hosts: their VMs failed first, so their tasks fail saying so */
	for (size_t i = 0; rc == 0 && v.gone_hosts[i]; i++)
		fail_host(w, rec, &v, v.gone_hosts[i]);
	for (size_t i = 0; rc == 0 && v.gone_workers[i]; i++)
		drain(w, rec, q, v.gone_workers[i]);
	aeth_strarray_free(ids);
	aeth_strarray_free(owners);
	view_free(&v);
	return rc;
}
