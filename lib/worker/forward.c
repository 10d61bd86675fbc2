/*
 * lib/worker/forward.c - a vm:execute / vm:delete that reached a worker
 * not owning the VM (e.g. put on a shared queue by a producer that does
 * not route like aeth-submit) is forwarded, once, to the owner's queue
 * worker:<owner> under the same task id. The payload carries a hop count
 * ("forward_hops") so a task can never bounce between workers: a task
 * that was forwarded already and still lands on a non-owner fails.
 *
 * Order, so that a submitter waiting for the task never sees a wrong
 * outcome: the tasks row goes back to "pending" first, then the task is
 * enqueued on the owner's queue (the id index now points there), and only
 * then is this worker's copy acked with {"forwarded_to": queue}. A waiter
 * woken by that ack finds the row not final and waits again (client.c),
 * now on the owner's queue. tasks.queue is set to the owner's queue too.
 *
 * The owner must be running (builtin.c checks the worker registry before
 * it forwards): a task for a VM whose owner stopped or stopped
 * heartbeating fails at once.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "worker/worker_internal.h"

unsigned int aeth__forward_hops(const char *payload)
{
	cJSON *j = payload ? cJSON_Parse(payload) : NULL;
	cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "forward_hops");
	unsigned int n = cJSON_IsNumber(h) && h->valuedouble > 0 ?
		(h->valuedouble > 1000 ? 1000 : (unsigned int)h->valuedouble) : 0;

	cJSON_Delete(j);
	return n;
}

/* The payload with forward_hops = hops (malloc'd; NULL on error). */
static char *with_hops(const char *payload, unsigned int hops)
{
	cJSON *j = cJSON_Parse(payload ? payload : "{}");
	char *out = NULL;

	if (cJSON_IsObject(j)) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, "forward_hops");
		cJSON_AddNumberToObject(j, "forward_hops", hops);
		out = cJSON_PrintUnformatted(j);
	}
	cJSON_Delete(j);
	return out;
}

int aeth__forward(aeth__slot *s, aeth_task *t)
{
	return aeth__forward_task(s->q, s->rec, t->qt, t->forward_to);
}

int aeth__forward_task(aeth_queue *q, aeth__rec *rec, aeth_queue_task *qt,
		       const char *to)
{
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	char *payload = with_hops(qt->payload, aeth__forward_hops(qt->payload) + 1);
	cJSON *res;
	char *result = NULL;
	int rc;

	if (!payload)
		return aeth__error_set(AETH_EINVALID, "task %s: cannot forward a "
				       "payload that is not a JSON object", qt->id);
	if ((rc = aeth__rec_task_pending(rec, qt->id)) != 0 ||
	    (rc = aeth__rec_task_queue(rec, qt->id, to)) != 0) {
		free(payload);
		return rc;
	}
	eo.queue = to;
	eo.id = qt->id;
	eo.max_retries = qt->max_retries;
	eo.timeout_ms = qt->timeout_ms;
	rc = aeth_queue_enqueue(NULL, q, qt->type, payload, &eo);
	free(payload);
	if (rc == AETH_EEXISTS) /* forwarded before (a re-run after a lost ack) */
		rc = 0;
	if (rc != 0)
		return rc;
	res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "forwarded_to", to);
	result = cJSON_PrintUnformatted(res);
	cJSON_Delete(res);
	rc = aeth_queue_ack(q, qt, result ? result : "{}");
	free(result);
	if (rc == AETH_ESTATE) /* lease lost: the copy comes back, is forwarded again (EEXISTS) */
		rc = 0;
	return rc;
}
