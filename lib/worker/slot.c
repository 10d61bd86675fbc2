/*
 * lib/worker/slot.c - one slot: take a task, record it running, run its
 * handler while the heartbeat thread extends its lease, record the
 * outcome, then hand the result back through the queue (ack) or fail it
 * (nack: retried with backoff, or dead when retrying cannot help).
 * The database row is written BEFORE the queue is told, so a result the
 * submitter sees is always in PostgreSQL too.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "worker/payload.h"
#include "worker/worker_internal.h"

/* ---- the aeth_task accessors for handlers ---- */

const char *aeth_task_id(const aeth_task *t) { return t->qt->id; }
const char *aeth_task_type(const aeth_task *t) { return t->qt->type; }
const char *aeth_task_payload(const aeth_task *t)
{
	return t->qt->payload ? t->qt->payload : "{}";
}
unsigned int aeth_task_retry_count(const aeth_task *t) { return t->qt->retried; }
aeth_worker *aeth_task_worker(aeth_task *t) { return t->slot->w; }

int aeth_task_set_result(aeth_task *t, const char *json)
{
	cJSON *check;
	char *copy;

	if (!json)
		return aeth__error_set(AETH_EINVALID, "task result is NULL");
	check = cJSON_Parse(json);
	if (!check)
		return aeth__error_set(AETH_EINVALID, "task result is not JSON");
	cJSON_Delete(check);
	if (!(copy = strdup(json)))
		return aeth__error_oom();
	free(t->result);
	t->result = copy;
	return 0;
}

int aeth_task_fail(aeth_task *t, int retryable, const char *message)
{
	free(t->error);
	t->error = strdup(message ? message : "failed");
	t->retryable = retryable ? 1 : 0;
	aeth__error_set(AETH_ERROR, "%s", t->error ? t->error : "failed");
	return AETH_ERROR;
}

int aeth_task_cancelled(const aeth_task *t)
{
	return atomic_load(&t->slot->cancel) != 0;
}

void aeth_task_say(aeth_task *t, const char *line)
{
	aeth__worker_say(t->slot->w, t->qt->id, "%s", line);
}

/* ---- running one task ---- */

static const aeth__handler *find_handler(aeth_worker *w, const char *type)
{
	for (size_t i = 0; type && i < w->nhandlers; i++)
		if (!strcmp(w->handlers[i].type, type))
			return &w->handlers[i];
	return NULL;
}

static void publish_lease(aeth__slot *s, aeth_queue_task *qt)
{
	pthread_mutex_lock(&s->mu);
	s->hb = *qt;
	s->busy = qt != NULL;
	s->requeued = false;
	atomic_store(&s->cancel, 0);
	pthread_mutex_unlock(&s->mu);
}

/* Ends the lease sharing; true when shutdown already gave the task back. */
static bool retract_lease(aeth__slot *s)
{
	bool requeued;

	pthread_mutex_lock(&s->mu);
	s->busy = false;
	requeued = s->requeued;
	pthread_mutex_unlock(&s->mu);
	return requeued;
}

static void finish_ok(aeth__slot *s, aeth_task *t, double secs)
{
	const char *result = t->result ? t->result : "null";
	aeth_worker *w = s->w;
	int rc;

	if (aeth__rec_task_finish(s->rec, t->qt->id, "completed", result,
				  NULL) != 0)
		aeth__warn("task %s: cannot record its result: %s", t->qt->id,
			   aeth_error_last());
	rc = aeth_queue_ack(s->q, t->qt, result);
	if (rc == AETH_ESTATE)
		aeth__warn("task %s finished after its lease was lost; another "
			   "worker may run it again", t->qt->id);
	else if (rc != 0)
		aeth__warn("task %s: ack failed: %s", t->qt->id, aeth_error_last());
	aeth__worker_say(w, t->qt->id, "Task %s completed in %.1fs", t->qt->id, secs);
}

static void finish_failed(aeth__slot *s, aeth_task *t, int rc, double secs)
{
	aeth_queue_task *qt = t->qt;
	char *err = strdup(t->error ? t->error : aeth_error_last());
	bool retryable = t->retryable >= 0 ? t->retryable == 1 :
		!(rc == AETH_EINVALID || rc == AETH_ENOTFOUND || rc == AETH_ESTATE);
	bool final = !retryable || qt->retried >= qt->max_retries;

	if (aeth__rec_task_finish(s->rec, qt->id, final ? "failed" : "retrying",
				  NULL, err ? err : "failed") != 0)
		aeth__warn("task %s: cannot record its failure: %s", qt->id,
			   aeth_error_last());
	if (aeth_queue_nack(s->q, qt, err ? err : "failed",
			    retryable ? 0 : AETH_QUEUE_NACK_NO_RETRY) != 0)
		aeth__warn("task %s: nack failed: %s", qt->id, aeth_error_last());
	aeth__worker_say(s->w, qt->id, "Task %s failed after %.1fs%s: %s", qt->id,
			 secs, final ? "" : " (will retry)", err ? err : "failed");
	free(err);
}

static void run_one(aeth__slot *s, aeth_queue_task *qt)
{
	aeth_worker *w = s->w;
	aeth_task t = {s, qt, NULL, NULL, -1, NULL};
	const aeth__handler *h = find_handler(w, qt->type);
	aeth__task_row row = {0};
	int64_t t0 = aeth__now_ms();
	int rc;

	row.id = qt->id;
	row.type = qt->type;
	row.payload = qt->payload ? qt->payload : "{}";
	row.queue = qt->queue;
	row.max_retries = qt->max_retries;
	row.timeout_ms = qt->timeout_ms;
	if (aeth__rec_task_running(s->rec, &row, w->id, qt->retried) != 0) {
		/* Without the database nothing can be recorded: give the task
		 * back (it is retried later) rather than run it unrecorded. */
		aeth__warn("task %s: cannot record it running: %s", qt->id,
			   aeth_error_last());
		aeth_queue_nack(s->q, qt, aeth_error_last(), 0);
		aeth__worker_nap(w, 1000);
		return;
	}
	publish_lease(s, qt);
	if (!h) {
		char *msg = aeth__sprintf("unknown task type \"%s\": this worker "
					  "handles %s", qt->type ? qt->type : "",
					  aeth_worker_types(w));

		rc = aeth_task_fail(&t, 0, msg ? msg : "unknown task type");
		free(msg);
	} else {
		aeth_error_clear();
		rc = h->fn(&t, h->userdata);
	}
	if (retract_lease(s)) {
		aeth__info("task %s: already given back to the queue at shutdown",
			   qt->id);
	} else if (rc == 0 && t.forward_to) {
		if ((rc = aeth__forward(s, &t)) != 0) {
			free(t.error);
			t.error = aeth__sprintf("cannot forward the task to %s: %s",
						t.forward_to, aeth_error_last());
			t.retryable = 1;
			finish_failed(s, &t, rc, (double)(aeth__now_ms() - t0) / 1000.0);
		} else {
			aeth__worker_say(w, qt->id, "Task %s forwarded to %s", qt->id,
					 t.forward_to);
		}
	} else if (rc == 0) {
		finish_ok(s, &t, (double)(aeth__now_ms() - t0) / 1000.0);
	} else {
		finish_failed(s, &t, rc, (double)(aeth__now_ms() - t0) / 1000.0);
	}
	free(t.result);
	free(t.error);
	free(t.forward_to);
}

void *aeth__slot_main(void *arg)
{
	aeth__slot *s = arg;
	aeth_worker *w = s->w;
	unsigned int backoff = 200;

	while (!atomic_load(&w->stopping)) {
		aeth_queue_task *qt = NULL;
		/* a short block so a stop is noticed within a second */
		int rc = aeth_queue_dequeue(s->q, w->sources, w->nsources, 1000, &qt);

		if (rc == AETH_ETIMEOUT || rc == AETH_EPROTO)
			continue;
		if (rc != 0) {
			aeth__warn("worker %s slot %d: %s (retrying in %u ms)", w->id,
				   s->index, aeth_error_last(), backoff);
			aeth__worker_nap(w, backoff);
			backoff = backoff >= 5000 ? 5000 : backoff * 2;
			continue;
		}
		backoff = 200;
		run_one(s, qt);
		aeth_queue_task_free(qt);
	}
	pthread_mutex_lock(&w->mu);
	s->exited = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Every tick (lease/3, at most AETH__REG_INTERVAL_MS): refresh this
 * worker's registry entry and extend the lease of every running task. */
void *aeth__heartbeat_main(void *arg)
{
	aeth_worker *w = arg;
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;
	unsigned int tick = aeth__worker_reg_interval(w);
	bool reg_failing = false;

	qo.url = w->redis_url;
	qo.ns = w->redis_ns;
	qo.worker_id = w->id;
	qo.lease_ms = w->lease_ms;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		if (!w->hb_stop) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(tick % 1000) * 1000000L;
			ts.tv_sec += tick / 1000 + ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&w->cond, &w->mu, &ts);
		}
		if (w->hb_stop) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		pthread_mutex_unlock(&w->mu);
		if (!q && aeth_queue_open(&q, &qo) != 0) {
			aeth__warn("heartbeat: %s", aeth_error_last());
			continue;
		}
		if (aeth__worker_register(w, q) != 0) {
			if (!reg_failing)
				aeth__warn("worker %s: cannot refresh its registry entry: %s",
					   w->id, aeth_error_last());
			reg_failing = true;
		} else {
			reg_failing = false;
		}
		for (unsigned int i = 0; i < w->concurrency; i++) {
			aeth__slot *s = &w->slots[i];
			int rc = 0;

			pthread_mutex_lock(&s->mu);
			if (s->busy && !s->requeued)
				rc = aeth_queue_heartbeat(q, &s->hb);
			if (rc == AETH_ESTATE || rc == AETH_ETIMEOUT) {
				aeth__warn("task %s: %s; asking its handler to stop",
					   s->hb.id, rc == AETH_ESTATE ? "lease lost" :
					   "ran past its timeout");
				atomic_store(&s->cancel, 1);
			} else if (rc != 0) {
				aeth__warn("task %s: heartbeat failed: %s", s->hb.id,
					   aeth_error_last());
			}
			pthread_mutex_unlock(&s->mu);
		}
	}
	aeth_queue_free(q);
	return NULL;
}
