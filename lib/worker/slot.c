/*
 * lib/worker/slot.c - one slot: take a task, record it running, run its
 * handler while the heartbeat thread extends its lease, record the
 * outcome, then hand the result back through the queue (ack) or fail it
 * (nack: retried with backoff, or dead when retrying cannot help).
 * The database row is written BEFORE the queue is told, so a result the
 * submitter sees is always in PostgreSQL too.
 * When the queue is deep and the slot's recent tasks were short, it takes
 * several with one dequeue (batch_size()) and writes their running rows,
 * completed rows and acks a few at a time (one statement / round trip for
 * several); every task it holds has its lease extended by the heartbeat.
 *
 * Deferred starts: a task of a type whose recent runs took under a
 * millisecond (expected_short()) gets no "running" write before its
 * handler; its completed row carries its real start time, worker and retry
 * count, so such a task costs one row write instead of two. Should it run
 * long after all (or fail, or be forwarded), the running row is written
 * then: by the heartbeat thread after DEFERRED_ROW_MS (it looks every
 * DEFERRED_SCAN_MS while slots run deferred tasks), or before the failure.
 * A deferred task's row reads "pending" while it runs, for ~200 ms at
 * most.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "task/task.h"
#include "metrics/metrics.h"
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

/* Tasks of a batch whose handler succeeded, waiting for their completed
 * rows and acks, written together (one statement and one round trip for
 * several short tasks). */
typedef struct {
	aeth_queue_task *t[AETH__SLOT_BATCH_MAX];
	char *result[AETH__SLOT_BATCH_MAX]; /* NULL: the handler set none */
	int64_t started[AETH__SLOT_BATCH_MAX]; /* wall ms if start deferred, 0 */
	double secs[AETH__SLOT_BATCH_MAX];
	size_t idx[AETH__SLOT_BATCH_MAX];
	size_t n;
	int64_t first_ms;
} pending_acks;

/* Task i's result JSON ("null" when its handler set none). */
#define RESULT(p, i) ((p)->result[i] ? (p)->result[i] : "null")

/* Acks are held back at most this long (or until the batch ends), and
 * not while a task that may be slow runs (expected_short()). */
#define ACK_DELAY_MS 5

static void set_held(aeth__slot *s, size_t i, aeth__held_state st)
{
	pthread_mutex_lock(&s->mu);
	s->held[i] = st;
	pthread_mutex_unlock(&s->mu);
}

/* Share the leases of a batch with the heartbeat and shutdown paths. */
static void hold_batch(aeth__slot *s, aeth_queue_task **tasks, size_t n)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		s->hb[i] = *tasks[i];
		s->held[i] = AETH__HELD_WAITING;
	}
	s->nheld = n;
	pthread_mutex_unlock(&s->mu);
}

static void release_batch(aeth__slot *s)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nheld; i++)
		s->held[i] = AETH__HELD_NONE;
	s->nheld = 0;
	pthread_mutex_unlock(&s->mu);
}

/* WAITING -> RUNNING; false when the task is no longer ours to start
 * (given back at shutdown, or its lease was lost while it waited).
 * `deferred`: its running row is not written yet (the heartbeat thread
 * writes it if the task runs past DEFERRED_ROW_MS). */
static bool publish_lease(aeth__slot *s, size_t i, bool deferred)
{
	bool ours;

	pthread_mutex_lock(&s->mu);
	ours = s->held[i] == AETH__HELD_WAITING;
	if (ours) {
		s->held[i] = AETH__HELD_RUNNING;
		s->requeued = false;
		s->row_deferred = deferred;
		s->running_since = aeth__now_ms();
		s->timeout_ms = s->hb[i].timeout_ms;
		s->deadline_ms = s->timeout_ms ? s->running_since + s->timeout_ms : 0;
		s->timed_out = false;
		atomic_store(&s->cancel, 0);
	}
	pthread_mutex_unlock(&s->mu);
	/* a deadline before the heartbeat thread's next wake-up: wake it
	 * so that its wait ends at this task's deadline (under w->mu, the
	 * heartbeat has either set hb_wake_at for its wait or not looked
	 * at the slots yet: aeth__heartbeat_main). Tasks with the default
	 * 30 min timeout never wake it. */
	if (ours && s->deadline_ms) {
		pthread_mutex_lock(&s->w->mu);
		if (s->deadline_ms < s->w->hb_wake_at)
			pthread_cond_broadcast(&s->w->cond);
		pthread_mutex_unlock(&s->w->mu);
	}
	/* The heartbeat thread looks every DEFERRED_SCAN_MS while deferred
	 * tasks run: wake it (on the flag's 0 -> 1) so that it shortens a
	 * wait already begun. Checked after the task shows RUNNING: the
	 * heartbeat clears the flag, then scans the slots, so a task either
	 * is seen by that scan or sets the flag again. */
	if (ours && deferred &&
	    !atomic_load_explicit(&s->w->deferred_seen, memory_order_relaxed) &&
	    !atomic_exchange(&s->w->deferred_seen, 1)) {
		pthread_mutex_lock(&s->w->mu);
		pthread_cond_broadcast(&s->w->cond);
		pthread_mutex_unlock(&s->w->mu);
	}
	return ours;
}

/* Ends the handler's run; true when shutdown already gave the task back.
 * *deferred: its running row is still unwritten; *timed_out: it ran past
 * its timeout_ms. */
static bool retract_lease(aeth__slot *s, size_t i, bool *deferred,
			  bool *timed_out)
{
	bool requeued;

	pthread_mutex_lock(&s->mu);
	requeued = s->requeued;
	*timed_out = s->timed_out ||
		(s->deadline_ms && aeth__now_ms() >= s->deadline_ms);
	s->deadline_ms = 0;
	s->held[i] = requeued ? AETH__HELD_GONE : AETH__HELD_NONE;
	*deferred = s->row_deferred;
	s->row_deferred = false;
	pthread_mutex_unlock(&s->mu);
	return requeued;
}

static void task_row(const aeth_queue_task *qt, aeth__task_row *row)
{
	memset(row, 0, sizeof(*row));
	row->id = qt->id;
	row->type = qt->type;
	row->payload = qt->payload ? qt->payload : "{}";
	row->queue = qt->queue;
	row->max_retries = qt->max_retries;
	row->timeout_ms = qt->timeout_ms;
}

/* The running row of a task (worker, retry count, start time). */
static int record_running_one(aeth__rec *rec, const char *worker_id,
			      const aeth_queue_task *qt)
{
	aeth__task_row row;

	task_row(qt, &row);
	return aeth__rec_task_running(rec, &row, worker_id, qt->retried);
}

/* A batch row write failed: the rows are written one by one instead
 * (slower, same outcome). Said once per slot as a warning (a lasting
 * cause, e.g. a database whose schema lacks migration 0005, costs every
 * batch), then at debug level. */
static void batch_write_failed(aeth__slot *s)
{
	if (!s->batch_warned)
		aeth__warn("worker %s slot %d: batch row write failed (%s); "
			   "writing the rows one by one", s->w->id, s->index,
			   aeth_error_last());
	else
		aeth__debug("worker %s slot %d: batch row write failed (%s); "
			    "writing the rows one by one", s->w->id, s->index,
			    aeth_error_last());
	s->batch_warned = true;
}

/* Task i's completed row alone (its running row first if deferred). */
static int record_one(aeth__slot *s, pending_acks *p, size_t i)
{
	int rc = p->started[i] > 0 ? record_running_one(s->rec, s->w->id, p->t[i]) : 0;

	return rc ? rc : aeth__rec_task_finish(s->rec, p->t[i]->id, "completed",
					       RESULT(p, i), NULL);
}

/* The one-task writes of the rows not done yet; the last failure's code. */
static int record_left(aeth__slot *s, pending_acks *p, bool *done)
{
	int rc, last = 0;

	for (size_t i = 0; i < p->n; i++)
		if (!done[i] && !(done[i] = (rc = record_one(s, p, i)) == 0))
			last = rc;
	return last;
}

/* The completed rows of the pending tasks: one statement for several
 * (or for one whose start was deferred: it has one write, not two). A row
 * the statement did not find (a task enqueued without one) or a failed
 * statement falls back to the one-task writes. done[i]: task i's row is
 * written (or it has none). Returns the last failure's code, or 0. */
static int record_completed(aeth__slot *s, pending_acks *p, bool *done)
{
	const char *ids[AETH__SLOT_BATCH_MAX], *res[AETH__SLOT_BATCH_MAX];
	unsigned int retried[AETH__SLOT_BATCH_MAX];
	bool deferred = false;

	for (size_t i = 0; i < p->n; i++) {
		done[i] = false;
		ids[i] = p->t[i]->id;
		res[i] = RESULT(p, i);
		retried[i] = p->t[i]->retried;
		deferred = deferred || p->started[i] > 0;
	}
	if ((p->n > 1 || deferred) &&
	    aeth__rec_tasks_completed(s->rec, ids, res,
				      p->started, retried, s->w->id, p->n,
				      done) != 0)
		batch_write_failed(s);
	return record_left(s, p, done);
}

/* Ack n tasks whose rows are written. While Redis is away the acks are
 * held and sent again once it is back (its append-only file kept the
 * leases, which the heartbeat extends again), rather than left to the
 * lease's expiry, which would run the tasks a second time; until the
 * worker stops. */
static void ack_held(aeth__slot *s, aeth_queue_task **ack, const char **res,
		     size_t n, int *rcs)
{
	aeth_queue_task *again[AETH__SLOT_BATCH_MAX];
	const char *again_res[AETH__SLOT_BATCH_MAX];
	int again_rcs[AETH__SLOT_BATCH_MAX];
	size_t at[AETH__SLOT_BATCH_MAX];

	aeth_queue_ack_batch(rcs, s->q, ack, res, n);
	for (unsigned int wait = 200; !atomic_load(&s->w->stopping);
	     wait = wait < 5000 ? 2 * wait : 5000) {
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (rcs[i] == AETH_EUNAVAILABLE) {
				again[k] = ack[i];
				again_res[k] = res[i];
				at[k++] = i;
			}
		if (k == 0)
			return;
		if (wait == 200)
			aeth__warn("worker %s slot %d: cannot tell the queue that %zu "
				   "task(s) completed (%s): holding the acks until "
				   "Redis is back", s->w->id, s->index, k,
				   aeth_error_last());
		aeth__worker_nap(s->w, wait);
		aeth_queue_ack_batch(again_rcs, s->q, again, again_res, k);
		for (size_t j = 0; j < k; j++)
			rcs[at[j]] = again_rcs[j];
	}
}

/* Rows first (the result a submitter sees is always in PostgreSQL), then
 * the acks, one round trip each for the whole list. A task whose row
 * cannot be written (the database is away) is not acked: it is given back
 * to be retried after a backoff, as one whose running row cannot be
 * written, so that the queue never says completed where PostgreSQL does
 * not. */
static void flush_acks(aeth__slot *s, pending_acks *p)
{
	bool recorded[AETH__SLOT_BATCH_MAX];
	aeth_queue_task *ack[AETH__SLOT_BATCH_MAX];
	const char *res[AETH__SLOT_BATCH_MAX];
	int rcs[AETH__SLOT_BATCH_MAX];
	size_t na = 0, a = 0;
	char *why = NULL;
	int rec_rc;

	if (p->n == 0)
		return;
	/* PostgreSQL away: hold the results (the heartbeat keeps their
	 * leases) and write them once it is back, rather than give the tasks
	 * back to run again; until the worker stops */
	rec_rc = record_completed(s, p, recorded);
	for (unsigned int wait = 200; rec_rc == AETH_EUNAVAILABLE &&
	     !atomic_load(&s->w->stopping); wait = wait < 5000 ? 2 * wait : 5000) {
		if (wait == 200)
			aeth__warn("worker %s slot %d: cannot record the results of "
				   "finished tasks (%s): holding them until "
				   "PostgreSQL is back", s->w->id, s->index,
				   aeth_error_last());
		aeth__worker_nap(s->w, wait);
		rec_rc = record_left(s, p, recorded);
	}
	for (size_t i = 0; i < p->n; i++) {
		if (recorded[i]) {
			ack[na] = p->t[i];
			res[na] = RESULT(p, i);
			rcs[na++] = AETH_EUNAVAILABLE;
		} else if (!why) {
			why = aeth__sprintf("cannot record its result: %s",
					    aeth_error_last());
		}
	}
	if (na)
		ack_held(s, ack, res, na, rcs);
	for (size_t i = 0; i < p->n; i++) {
		const char *id = p->t[i]->id;

		if (!recorded[i]) {
			aeth__warn("task %s: %s; given back, to be retried", id,
				   why ? why : "cannot record its result");
			if (aeth_queue_nack(s->q, p->t[i], why ? why :
					    "cannot record its result", 0) != 0)
				aeth__warn("task %s: nack failed: %s", id,
					   aeth_error_last());
		} else {
			int rc = rcs[a++];

			if (rc == AETH_ESTATE)
				aeth__warn("task %s finished after its lease was lost; "
					   "another worker may run it again", id);
			else if (rc != 0)
				aeth__warn("task %s: ack failed: %s", id,
					   aeth_error_last());
			aeth__worker_say(s->w, id, "Task %s completed in %.1fs", id,
					 p->secs[i]);
		}
		set_held(s, p->idx[i], AETH__HELD_NONE);
		free(p->result[i]);
	}
	p->n = 0;
	if (why) /* the database is away: do not spin through the queue */
		aeth__worker_nap(s->w, 1000);
	free(why);
}

/* Queue the row write and the ack with the next ones of the batch
 * (flush_acks: row, then ack). */
static void finish_ok(aeth__slot *s, size_t i, aeth_task *t, double secs,
		      int64_t started, pending_acks *p)
{
	set_held(s, i, AETH__HELD_DONE);
	if (p->n == 0)
		p->first_ms = aeth__now_ms();
	p->t[p->n] = t->qt;
	p->result[p->n] = t->result;
	p->started[p->n] = started;
	p->secs[p->n] = secs;
	p->idx[p->n] = i;
	p->n++;
	t->result = NULL;
}

/* The type as a metric label: a registered one, never a submitter's
 * free text (bounded label sets). */
static const char *type_label(aeth_worker *w, const char *type)
{
	const aeth__handler *h = find_handler(w, type);

	return h ? h->type : "unknown";
}

static void finish_failed(aeth__slot *s, aeth_task *t, int rc, double secs)
{
	aeth_queue_task *qt = t->qt;
	char *err = strdup(t->error ? t->error : aeth_error_last());
	bool retryable = t->retryable >= 0 ? t->retryable == 1 :
		!(rc == AETH_EINVALID || rc == AETH_ENOTFOUND || rc == AETH_ESTATE);
	bool final = !retryable || qt->retried >= qt->max_retries;

	const char *tl = type_label(s->w, qt->type);

	aeth__metric_inc(AETH__M_TASKS, tl, final ? "failed" : "retrying");
	aeth__metric_inc(final ? AETH__M_TASKS_DEAD : AETH__M_TASK_RETRIES, tl,
			 NULL);
	if (aeth__rec_task_finish(s->rec, qt->id, final ? "failed" : "retrying",
				  t->result, err ? err : "failed") != 0)
		aeth__warn("task %s: cannot record its failure: %s", qt->id,
			   aeth_error_last());
	if (aeth_queue_nack(s->q, qt, err ? err : "failed",
			    retryable ? 0 : AETH_QUEUE_NACK_NO_RETRY) != 0)
		aeth__warn("task %s: nack failed: %s", qt->id, aeth_error_last());
	aeth__worker_say(s->w, qt->id, "Task %s failed after %.1fs%s: %s", qt->id,
			 secs, final ? "" : " (will retry)", err ? err : "failed");
	free(err);
}

/*
 * Run task i of the batch. `row`: its running row is written (ROW_WRITTEN),
 * to write now (ROW_NOW), or deferred to its completion (ROW_DEFERRED; see
 * the top of this file). Returns false when the task was not started (not
 * ours any more).
 */
typedef enum { ROW_WRITTEN, ROW_NOW, ROW_DEFERRED } row_plan;

static bool run_one(aeth__slot *s, size_t i, aeth_queue_task *qt,
		    pending_acks *p, row_plan plan)
{
	aeth_worker *w = s->w;
	aeth_task t = {s, qt, NULL, NULL, -1, NULL};
	const aeth__handler *h = find_handler(w, qt->type);
	int64_t t0 = aeth__now_ms(), started = 0;
	bool deferred = plan == ROW_DEFERRED && h, timed_out = false;
	int rc;

	if (!publish_lease(s, i, deferred))
		return false;
	if (deferred) {
		started = aeth__wall_ms();
	} else if (plan != ROW_WRITTEN &&
		   (rc = record_running_one(s->rec, w->id, qt)) != 0) {
		/* Without the database nothing can be recorded: give the task
		 * back rather than run it unrecorded; un-started while
		 * PostgreSQL is away (no retry used up by an outage), else to
		 * be retried later. */
		aeth__warn("task %s: cannot record it running: %s", qt->id,
			   aeth_error_last());
		if (!retract_lease(s, i, &deferred, &timed_out))
			aeth_queue_nack(s->q, qt, aeth_error_last(),
					rc == AETH_EUNAVAILABLE ?
					AETH_QUEUE_NACK_RELEASE : 0);
		aeth__worker_nap(w, 1000);
		return true;
	}
	if (!h) {
		char *msg = aeth__sprintf("unknown task type \"%s\": this worker "
					  "handles %s", qt->type ? qt->type : "",
					  aeth_worker_types(w));

		rc = aeth_task_fail(&t, 0, msg ? msg : "unknown task type");
		free(msg);
	} else {
		aeth_error_clear();
		aeth__log_ctx_task(qt->id);
		rc = h->fn(&t, h->userdata);
	}
	aeth__metric_observe(AETH__M_TASK_SECONDS,
			     (double)(aeth__now_ms() - t0) / 1000.0,
			     h ? h->type : "unknown", NULL);
	if (retract_lease(s, i, &deferred, &timed_out)) {
		aeth__info("task %s: already given back to the queue at shutdown",
			   qt->id);
		aeth__metric_inc(AETH__M_TASKS, h ? h->type : "unknown",
				 "requeued");
		goto out;
	}
	if (timed_out && !t.forward_to) {
		/* whatever the handler returned: a task past its timeout ends
		 * failed (its result, if any, kept with the error) */
		free(t.error);
		t.error = aeth__sprintf("timed out: the task ran past its "
					"timeout_ms of %u ms and was cancelled",
					qt->timeout_ms);
		t.retryable = 0;
		rc = AETH_ETIMEOUT;
	}
	if (!deferred) {
		started = 0; /* the heartbeat wrote the running row meanwhile */
	} else if (rc != 0 || t.forward_to) {
		/* the failure and forward paths update a running row */
		if (record_running_one(s->rec, w->id, qt) != 0)
			aeth__warn("task %s: cannot record it running: %s", qt->id,
				   aeth_error_last());
		started = 0;
	}
	if (rc == 0 && t.forward_to) {
		if ((rc = aeth__forward(s, &t)) != 0) {
			free(t.error);
			t.error = aeth__sprintf("cannot forward the task to %s: %s",
						t.forward_to, aeth_error_last());
			t.retryable = 1;
			finish_failed(s, &t, rc, (double)(aeth__now_ms() - t0) / 1000.0);
		} else {
			aeth__worker_say(w, qt->id, "Task %s forwarded to %s", qt->id,
					 t.forward_to);
			aeth__metric_inc(AETH__M_TASKS, h->type, "forwarded");
		}
	} else if (rc == 0) {
		aeth__metric_inc(AETH__M_TASKS, h->type, "succeeded");
		finish_ok(s, i, &t, (double)(aeth__now_ms() - t0) / 1000.0,
			  started, p);
	} else {
		finish_failed(s, &t, rc, (double)(aeth__now_ms() - t0) / 1000.0);
	}
out:
	aeth__log_ctx_task(NULL);
	aeth__log_ctx_vm(NULL);
	free(t.result);
	free(t.error);
	free(t.forward_to);
	return true;
}

/* How many tasks to take at once: as many as are expected to run within
 * a small budget (min(lease/10, 50 ms)), judged by the slot's recent task
 * times, so that held tasks wait little, their leases (extended by the
 * heartbeat anyway) are never at risk, and a stop finds little un-started
 * work. A slot that has not run a task yet, or whose tasks are slow
 * (VMs), takes one. */
static size_t batch_size(const aeth__slot *s)
{
	double budget = s->w->lease_ms / 10.0 < 50.0 ? s->w->lease_ms / 10.0 : 50.0;
	double k;

	if (s->avg_ms <= 0)
		return 1;
	k = budget / s->avg_ms;
	return k < 1 ? 1 : k > AETH__SLOT_BATCH_MAX ? AETH__SLOT_BATCH_MAX : (size_t)k;
}

/* rise at once on a slow task, decay over a few fast ones */
static double blend(double avg, double d)
{
	return d >= avg ? (d > 0.05 ? d : 0.05) : 0.8 * avg + 0.2 * d;
}

/* The slot's entry for `type` (NULL if not among the last few seen). */
static double *type_avg(aeth__slot *s, const char *type)
{
	for (size_t i = 0; type && i < AETH__ARRAY_LEN(s->types); i++)
		if (s->types[i].type[0] && !strcmp(s->types[i].type, type))
			return &s->types[i].avg_ms;
	return NULL;
}

static void note_time(aeth__slot *s, const char *type, int64_t ms)
{
	double d = ms < 0 ? 0 : (double)ms;
	double *avg = type_avg(s, type);

	s->avg_ms = blend(s->avg_ms, d);
	if (!avg && type && strlen(type) < sizeof(s->types[0].type)) {
		unsigned int i = s->types_next++ % AETH__ARRAY_LEN(s->types);

		snprintf(s->types[i].type, sizeof(s->types[i].type), "%s", type);
		s->types[i].avg_ms = 0;
		avg = &s->types[i].avg_ms;
	}
	if (avg)
		*avg = blend(*avg, d);
}

/* Whether a task of `type` is expected to end within ~1 ms: only then may
 * completions of the batch wait for it before being written and acked. */
static bool expected_short(aeth__slot *s, const char *type)
{
	double *avg = type_avg(s, type);

	return avg && *avg > 0 && *avg <= 1.0;
}

/* Plan the running rows of a batch: deferred for tasks expected to be
 * short, else one statement for the others (ROW_WRITTEN), or the one-task
 * write in run_one() (ROW_NOW: alone, no row yet, or the batch write
 * failed). */
static void plan_rows(aeth__slot *s, aeth_queue_task **tasks, size_t n,
		      row_plan *plan)
{
	const char *ids[AETH__SLOT_BATCH_MAX];
	unsigned int retried[AETH__SLOT_BATCH_MAX];
	size_t at[AETH__SLOT_BATCH_MAX], k = 0;
	bool recorded[AETH__SLOT_BATCH_MAX];

	for (size_t i = 0; i < n; i++) {
		plan[i] = expected_short(s, tasks[i]->type) ? ROW_DEFERRED : ROW_NOW;
		if (plan[i] == ROW_NOW) {
			ids[k] = tasks[i]->id;
			retried[k] = tasks[i]->retried;
			at[k++] = i;
		}
	}
	if (k < 2)
		return;
	if (aeth__rec_tasks_running(s->rec, ids, retried, k, s->w->id,
				    recorded) != 0)
		batch_write_failed(s);
	for (size_t j = 0; j < k; j++)
		if (recorded[j])
			plan[at[j]] = ROW_WRITTEN;
}

/* A stop came while tasks of the batch had not started: give them back
 * to the queue now, un-started (AETH_QUEUE_NACK_RELEASE: pending at the
 * head of the queue, no retry counted), so another worker runs them at
 * once; the row goes back to pending. */
void aeth__slot_release(aeth_worker *w, aeth_queue *q, aeth__rec *rec,
			aeth_queue_task *qt)
{
	int rc;

	if (aeth_queue_nack(q, qt, "worker shut down before starting the task",
			    AETH_QUEUE_NACK_RELEASE) != 0) {
		aeth__warn("task %s: cannot give it back: %s; its lease expires "
			   "and another worker takes it", qt->id, aeth_error_last());
		return;
	}
	rc = aeth__rec_task_pending(rec, qt->id);
	if (rc != 0 && rc != AETH_ENOTFOUND)
		aeth__warn("task %s: cannot record it given back: %s", qt->id,
			   aeth_error_last());
	aeth__worker_say(w, qt->id, "Task %s given back to the queue "
			 "(shutdown, not started)", qt->id);
}

static void give_back(aeth__slot *s, size_t i, aeth_queue_task *qt)
{
	bool ours;

	pthread_mutex_lock(&s->mu);
	ours = s->held[i] == AETH__HELD_WAITING;
	if (ours)
		s->held[i] = AETH__HELD_GONE;
	pthread_mutex_unlock(&s->mu);
	if (ours)
		aeth__slot_release(s->w, s->q, s->rec, qt);
}

void *aeth__slot_main(void *arg)
{
	aeth__slot *s = arg;
	aeth_worker *w = s->w;
	unsigned int backoff = 200;
	pending_acks *p = calloc(1, sizeof(*p));

	aeth__log_ctx_worker(w->id);

	while (p && !atomic_load(&w->stopping)) {
		aeth_queue_task *tasks[AETH__SLOT_BATCH_MAX];
		row_plan plan[AETH__SLOT_BATCH_MAX];
		size_t got = 0;
		/* a short block so a stop is noticed within a second */
		int rc = aeth_queue_dequeue_batch(tasks, &got, batch_size(s),
						  s->q, w->sources, w->nsources,
						  1000);

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
		hold_batch(s, tasks, got);
		plan_rows(s, tasks, got, plan);
		for (size_t i = 0; i < got; i++) {
			int64_t t0 = aeth__now_ms();

			if (i > 0 && atomic_load(&w->stopping)) {
				give_back(s, i, tasks[i]);
				continue;
			}
			/* results wait at most ACK_DELAY_MS, and never for a
			 * task that may be slow (not planned as short) */
			if (p->n && (t0 - p->first_ms >= ACK_DELAY_MS ||
				     plan[i] != ROW_DEFERRED)) {
				flush_acks(s, p);
				t0 = aeth__now_ms(); /* the task's own time only */
			}
			if (run_one(s, i, tasks[i], p, plan[i]))
				note_time(s, tasks[i]->type, aeth__now_ms() - t0);
		}
		flush_acks(s, p);
		release_batch(s);
		for (size_t i = 0; i < got; i++)
			aeth_queue_task_free(tasks[i]);
	}
	if (!p)
		aeth__warn("worker %s slot %d: out of memory", w->id, s->index);
	free(p);
	pthread_mutex_lock(&w->mu);
	s->exited = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* A deferred start (top of file) that runs longer than this gets its
 * running row from the heartbeat thread, which looks every
 * DEFERRED_SCAN_MS while slots run deferred tasks (else once a tick). */
#define DEFERRED_ROW_MS 100
#define DEFERRED_SCAN_MS 100

/* The running row of slot s's deferred task if it has run for a while.
 * Under s->mu, so that it precedes the slot's completed write. `rec` is
 * the heartbeat thread's own connection. */
/* Returns true while the slot runs a deferred task whose row is still
 * unwritten (the heartbeat keeps looking every DEFERRED_SCAN_MS). */
static bool deferred_scan_slot(aeth__slot *s, aeth__rec *rec)
{
	bool waiting = false;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nheld; i++) {
		if (s->held[i] != AETH__HELD_RUNNING || s->requeued ||
		    !s->row_deferred)
			continue;
		if (aeth__now_ms() - s->running_since < DEFERRED_ROW_MS) {
			waiting = true;
		} else if (record_running_one(rec, s->w->id, &s->hb[i]) != 0) {
			aeth__warn("task %s: cannot record it running: %s",
				   s->hb[i].id, aeth_error_last());
			waiting = true;
		} else {
			s->row_deferred = false;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return waiting;
}

/* Extend the lease of every task slot s holds: the one running, those of
 * its batch waiting to start, those done but not acked yet. */
static void heartbeat_slot(aeth__slot *s, aeth_queue *q)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nheld; i++) {
		aeth__held_state st = s->held[i];
		int rc;

		if (st == AETH__HELD_NONE || st == AETH__HELD_GONE ||
		    (st == AETH__HELD_RUNNING && s->requeued))
			continue;
		rc = aeth_queue_heartbeat(q, &s->hb[i]);
		if ((rc == AETH_ESTATE || rc == AETH_ETIMEOUT) &&
		    st == AETH__HELD_RUNNING) {
			aeth__warn("task %s: %s; asking its handler to stop",
				   s->hb[i].id, rc == AETH_ESTATE ? "lease lost" :
				   "ran past its timeout");
			atomic_store(&s->cancel, 1);
		} else if (rc == AETH_ESTATE && st == AETH__HELD_WAITING) {
			aeth__warn("task %s: lease lost before it started; not "
				   "starting it", s->hb[i].id);
			s->held[i] = AETH__HELD_GONE;
		} else if (rc != 0 && rc != AETH_ETIMEOUT) {
			aeth__warn("task %s: heartbeat failed: %s", s->hb[i].id,
				   aeth_error_last());
		}
	}
	pthread_mutex_unlock(&s->mu);
}

/*
 * Cancel every running task past its timeout_ms (the handler sees
 * aeth_task_cancelled(), a vm:execute kills its command) and mark it
 * timed out. Returns `wait` cut to the next deadline, so the heartbeat
 * thread wakes for it: a timeout is enforced within a few ms, not at the
 * next heartbeat (the queue's own check, every lease/3, stays behind it).
 */
static unsigned int enforce_timeouts(aeth_worker *w, unsigned int wait)
{
	int64_t now = aeth__now_ms();

	for (unsigned int i = 0; w->slots && i < w->concurrency; i++) {
		aeth__slot *s = &w->slots[i];

		pthread_mutex_lock(&s->mu);
		if (s->deadline_ms && !s->timed_out && now >= s->deadline_ms) {
			s->timed_out = true;
			atomic_store(&s->cancel, 1);
			aeth__warn("a task of slot %d ran past its timeout of %u ms; "
				   "cancelling it", s->index, s->timeout_ms);
		} else if (s->deadline_ms && !s->timed_out &&
			   s->deadline_ms - now < (int64_t)wait) {
			wait = (unsigned int)(s->deadline_ms - now);
		}
		pthread_mutex_unlock(&s->mu);
	}
	return wait;
}

/* Every tick (lease/3, at most AETH__REG_INTERVAL_MS): refresh this
 * worker's registry entry and extend the lease of every running task. */
void *aeth__heartbeat_main(void *arg)
{
	aeth_worker *w = arg;
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;
	aeth__rec *rec = NULL;
	unsigned int tick = aeth__worker_reg_interval(w);
	bool reg_failing = false, rec_failing = false;
	int64_t last_beat = aeth__now_ms();

	qo.url = w->redis_url;
	qo.ns = w->redis_ns;
	qo.worker_id = w->id;
	qo.lease_ms = w->lease_ms;
	/* for deferred running rows (again at each tick while it fails) */
	if (aeth__rec_open(&rec, w->database_url) != 0)
		rec = NULL;
	for (;;) {
		int64_t left = last_beat + tick - aeth__now_ms();
		unsigned int wait = left <= 0 ? 0 : (unsigned int)left;

		if (atomic_load(&w->deferred_seen) && rec && wait > DEFERRED_SCAN_MS)
			wait = DEFERRED_SCAN_MS;
		pthread_mutex_lock(&w->mu);
		/* under w->mu: a task that publishes a deadline after this
		 * look broadcasts w->cond only once this thread waits on it */
		wait = enforce_timeouts(w, wait);
		w->hb_wake_at = aeth__now_ms() + wait;
		if (!w->hb_stop && wait > 0) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(wait % 1000) * 1000000L;
			ts.tv_sec += wait / 1000 + ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&w->cond, &w->mu, &ts);
		}
		if (w->hb_stop) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		pthread_mutex_unlock(&w->mu);
		enforce_timeouts(w, 0);
		for (unsigned int i = 0; rec && i < w->concurrency; i++)
			deferred_scan_slot(&w->slots[i], rec);
		if (aeth__now_ms() - last_beat < tick)
			continue; /* woken early: for long deferred tasks only */
		last_beat = aeth__now_ms();
		/* Clear the flag, then look again: a deferred task still
		 * running keeps it set (publish_lease sets it for new ones). */
		atomic_store(&w->deferred_seen, 0);
		for (unsigned int i = 0; rec && i < w->concurrency; i++)
			if (deferred_scan_slot(&w->slots[i], rec))
				atomic_store(&w->deferred_seen, 1);
		if (!q && aeth_queue_open(&q, &qo) != 0) {
			aeth__warn("heartbeat: %s", aeth_error_last());
			continue;
		}
		/* for deferred running rows; opened here, never under a
		 * slot's lock (a connect can take long) */
		if (!rec && aeth__rec_open(&rec, w->database_url) != 0 && !rec_failing) {
			aeth__warn("heartbeat: %s (running rows of long deferred "
				   "tasks wait for it)", aeth_error_last());
			rec_failing = true;
		} else if (rec) {
			rec_failing = false;
		}
		if (aeth__worker_register(w, q) != 0) {
			if (!reg_failing)
				aeth__warn("worker %s: cannot refresh its registry entry: %s",
					   w->id, aeth_error_last());
			reg_failing = true;
		} else {
			reg_failing = false;
		}
		for (unsigned int i = 0; i < w->concurrency; i++)
			heartbeat_slot(&w->slots[i], q);
	}
	aeth__rec_free(rec);
	aeth_queue_free(q);
	return NULL;
}
