/*
 * lib/worker/ledger.c - the ledger reconciler (ledger.h): a pass reads the
 * open task rows past the shared mark (or all of them in a full sweep),
 * looks each up in Redis, and repairs what Redis lost or contradicts;
 * then it reads the tasks Redis declared dead since the last pass. The
 * rule, per state, is in docs/queue.md ("Ledger and transport") and in
 * judge() below. SQL is in lib/store/ledger.c, Redis in lib/queue/ledger.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "queue/queue_ledger.h"
#include "store/store_ledger.h"
#include "worker/ledger.h"
#include "worker/worker_internal.h"

#define PAGE 500              /* open rows read (and looked up) at once */
#define DEAD_MAX 1000         /* dead tasks read per pass */
#define FULL_SWEEP_MS 3600000 /* a full sweep at least this often */

/* Its connections are the pass's: opened at its start, closed at its end
 * (a worker keeps no idle Redis or PostgreSQL connection for it; one that
 * finds the lock taken opens no Redis connection at all). */
struct aeth__ledger {
	aeth__ledger_config cfg; /* strings owned: the copies below */
	char *database_url, *redis_url, *redis_ns, *worker_id;
	aeth_store *store;
	aeth_queue *q;
	bool run_id_warned;
};

static char *dup_or_null(const char *s, bool *oom)
{
	char *d = s ? aeth__strdup(s) : NULL;

	*oom = *oom || (s && !d);
	return d;
}

int aeth__ledger_open(aeth__ledger **out, const aeth__ledger_config *cfg)
{
	aeth__ledger *l;
	bool oom = false;

	*out = NULL;
	if (!(l = calloc(1, sizeof(*l))))
		return aeth__error_oom();
	l->cfg = *cfg;
	l->cfg.database_url = l->database_url = dup_or_null(cfg->database_url, &oom);
	l->cfg.redis_url = l->redis_url = dup_or_null(cfg->redis_url, &oom);
	l->cfg.redis_ns = l->redis_ns = dup_or_null(cfg->redis_ns, &oom);
	l->cfg.worker_id = l->worker_id = dup_or_null(cfg->worker_id ? cfg->worker_id :
						      "", &oom);
	if (oom) {
		aeth__ledger_free(l);
		return aeth__error_oom();
	}
	*out = l;
	return 0;
}

static void disconnect(aeth__ledger *l)
{
	aeth_queue_free(l->q);
	aeth_store_free(l->store);
	l->q = NULL;
	l->store = NULL;
}

void aeth__ledger_free(aeth__ledger *l)
{
	if (!l)
		return;
	disconnect(l);
	free(l->database_url);
	free(l->redis_url);
	free(l->redis_ns);
	free(l->worker_id);
	free(l);
}

/* The queue a row's task travels on (rows written without one: default). */
static const char *row_queue(const aeth__ledger_row *r)
{
	return r->queue && aeth_queue_name_valid(r->queue) ? r->queue : "default";
}

static bool live(int state)
{
	return state == AETH_QUEUE_PENDING || state == AETH_QUEUE_ACTIVE ||
	       state == AETH_QUEUE_SCHEDULED || state == AETH_QUEUE_RETRY;
}

/* metadata.ledger of a repaired row: what, why, by whom, what Redis had. */
static char *note(const aeth__ledger *l, const char *action, const char *why,
		  const aeth__q_held *h)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(o, "action", action);
	cJSON_AddStringToObject(o, "reason", why);
	cJSON_AddStringToObject(o, "by", l->worker_id);
	cJSON_AddStringToObject(o, "redis", h->state >= 0 ?
				aeth_queue_state_name((aeth_queue_state)h->state) :
				"none");
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* Write the repair; false when the row changed meanwhile (or on error). */
static bool repair(aeth__ledger *l, const aeth__ledger_row *row, const char *status,
		   int retry_count, const char *result, const char *error,
		   const char *action, const aeth__q_held *h, aeth__ledger_stats *st,
		   int *rc)
{
	char *n = note(l, action, error ? error : "completed in Redis, not in "
		       "PostgreSQL", h);
	bool changed = false;

	*rc = n ? aeth__store_task_repair(l->store, row, status, retry_count, result,
					  error, n, &changed) : aeth__error_oom();
	free(n);
	if (*rc == 0 && !changed)
		st->raced++;
	return *rc == 0 && changed;
}

/* The queue a completed copy names when it only says where a worker
 * forwarded the task (forward.c: {"forwarded_to": "worker:<owner>"}),
 * malloc'd; NULL for a real outcome. */
static char *forwarded_to(const aeth__q_held *h)
{
	cJSON *j, *to;
	char *q = NULL;

	if (h->state != AETH_QUEUE_COMPLETED || !h->result ||
	    !strstr(h->result, "\"forwarded_to\""))
		return NULL;
	j = cJSON_Parse(h->result);
	to = cJSON_GetObjectItemCaseSensitive(j, "forwarded_to");
	if (cJSON_IsString(to) && aeth_queue_name_valid(to->valuestring))
		q = aeth__strdup(to->valuestring);
	cJSON_Delete(j);
	return q;
}

/* Put back a task Redis lost: the row first (pending again, the attempt
 * it lost counted), then Redis, only if it has no task with that id. */
static bool requeue(aeth__ledger *l, const aeth__ledger_row *row, const char *queue,
		    const aeth__q_held *h, aeth__ledger_stats *st, int *rc)
{
	/* an attempt that was running (or waiting for its retry) is used up,
	 * as when a lease expires (dequeue.lua) */
	unsigned int tries = row->retry_count + (strcmp(row->status, "pending") ? 1 : 0);
	aeth__ledger_row *full = NULL;
	size_t n = 0;
	char *why;
	aeth__q_restore t;
	int restored = 0;

	if (tries > row->max_retries) {
		bool ok;

		why = aeth__sprintf("Redis lost the task while it was %s, and its "
				    "retries are used up (%u of %u)", row->status,
				    row->retry_count, row->max_retries);
		ok = why && repair(l, row, "dead", (int)tries, NULL, why, "dead", h, st, rc);
		if (ok) {
			st->dead++;
			aeth__info("ledger: task %s: dead: %s", row->id, why);
		}
		*rc = why ? *rc : aeth__error_oom();
		free(why);
		return ok;
	}
	/* the payload, left out of the scan; a row gone meanwhile: raced */
	if ((*rc = aeth__store_tasks_by_id(l->store, (const char *const[]){row->id},
					   1, &full, &n)) != 0 || n == 0) {
		st->raced += *rc == 0;
		return false;
	}
	why = aeth__sprintf("Redis lost the task while it was %s: put back on "
			    "queue %s by the ledger reconciler", row->status, queue);
	if (!why || !repair(l, row, "pending", (int)tries, NULL, why, "requeued", h,
			    st, rc)) {
		*rc = why ? *rc : aeth__error_oom();
		free(why);
		aeth__ledger_rows_free(full, n);
		return false;
	}
	t = (aeth__q_restore){queue, row->id, row->type, full->payload,
			      row->max_retries, row->timeout_ms, tries, why};
	*rc = aeth__q_ledger_restore(l->q, &t, &restored);
	aeth__ledger_rows_free(full, n);
	if (*rc == 0) {
		st->requeued++;
		aeth__info("ledger: task %s: %s%s", row->id, why, restored ? "" :
			   " (it was back already)");
	}
	free(why);
	/* a failed put-back leaves the row pending, changed now: it is
	 * judged again once stray_after_ms passed */
	return *rc == 0;
}

/*
 * The rule for one open row, given what Redis holds of it (docs/queue.md,
 * "Ledger and transport"). Returns true when the row needs no second look
 * (repaired, or on its way in Redis); false when a later pass must judge
 * it again (too young, written by someone meanwhile, or an error in *rc).
 */
static bool judge_in(aeth__ledger *l, const aeth__ledger_row *row,
		     const char *queue, const aeth__q_held *h, bool follow,
		     aeth__ledger_stats *st, int *rc);

/* A forwarding copy in the row's queue: the task itself is on the queue
 * it names (the row's own change of queue may be what PostgreSQL lost). */
static bool judge_forwarded(aeth__ledger *l, const aeth__ledger_row *row,
			    const char *to, aeth__ledger_stats *st, int *rc)
{
	aeth__q_held there;
	bool settled;

	if ((*rc = aeth__q_ledger_peek(l->q, &to, (const char *const[]){row->id}, 1,
				       &there)) != 0)
		return false;
	settled = judge_in(l, row, to, &there, false, st, rc);
	aeth__q_held_clear(&there);
	return settled;
}

static bool judge(aeth__ledger *l, const aeth__ledger_row *row,
		  const aeth__q_held *h, aeth__ledger_stats *st, int *rc)
{
	st->read++;
	return judge_in(l, row, row_queue(row), h, true, st, rc);
}

/* judge() for the task's copy in `queue`; `follow`: a forwarding copy
 * there leads to the queue it names (once). */
static bool judge_in(aeth__ledger *l, const aeth__ledger_row *row,
		     const char *queue, const aeth__q_held *h, bool follow,
		     aeth__ledger_stats *st, int *rc)
{
	static const aeth__q_held none = {.state = -1, .other_state = -1};
	char *to = forwarded_to(h);

	*rc = 0;
	if (to && follow && strcmp(to, queue)) {
		bool settled = judge_forwarded(l, row, to, st, rc);

		free(to);
		return settled;
	}
	if (to) { /* forwarded on from where it was forwarded to: none has */
		free(to);
		h = &none;
	}
	/* on its way: queued, scheduled, waiting for a retry, or leased by a
	 * worker (in flight: never run twice by us; a lease that expires
	 * brings it back through the queue's own recovery) */
	if (live(h->state) || (h->state < 0 && live(h->other_state))) {
		st->live++;
		return true;
	}
	if (h->state == AETH_QUEUE_COMPLETED) {
		/* the worker wrote the row first; PostgreSQL lost that write
		 * (a crash with synchronous_commit = off): Redis has the result */
		if (repair(l, row, "completed", -1, h->result ? h->result : "null",
			   NULL, "completed", h, st, rc)) {
			st->completed++;
			aeth__info("ledger: task %s: completed in Redis, not in "
				   "PostgreSQL (row %s): completed with Redis's "
				   "result", row->id, row->status);
			return true;
		}
		return false;
	}
	if (h->state == AETH_QUEUE_DEAD) {
		/* Redis gave up (a lease that expired with no retry left, or a
		 * failure whose row write failed): final, with its error */
		char *why = aeth__sprintf("dead in Redis: %s", h->error ? h->error :
					  "no error recorded");
		bool ok = why && repair(l, row, "dead", -1, NULL, why, "dead", h, st, rc);

		if (ok) {
			st->dead++;
			aeth__info("ledger: task %s: %s (row was %s)", row->id, why,
				   row->status);
		}
		free(why);
		return ok;
	}
	/* not in Redis: lost, unless its row is so recent that the
	 * submitter may still be about to enqueue it */
	if (row->age_ms < (int64_t)l->cfg.stray_after_ms) {
		st->young++;
		return false;
	}
	return requeue(l, row, queue, h, st, rc);
}

/* Judge rows[0..n-1]; settled[i] as judge() says. */
static int judge_rows(aeth__ledger *l, const aeth__ledger_row *rows, size_t n,
		      bool *settled, aeth__ledger_stats *st)
{
	const char *queues[PAGE] = {NULL}, *ids[PAGE] = {NULL};
	aeth__q_held held[PAGE];
	int rc, first = 0;

	if (n > PAGE)
		return aeth__error_set(AETH_EINVALID, "ledger: %zu rows at once, at "
				       "most %d", n, PAGE);

	for (size_t i = 0; i < n; i++) {
		queues[i] = row_queue(&rows[i]);
		ids[i] = rows[i].id;
		settled[i] = false;
	}
	if ((rc = aeth__q_ledger_peek(l->q, queues, ids, n, held)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		settled[i] = judge(l, &rows[i], &held[i], st, &rc);
		if (rc != 0 && first == 0) {
			first = rc;
			aeth__warn("ledger: task %s: %s", rows[i].id, aeth_error_last());
		}
		aeth__q_held_clear(&held[i]);
	}
	return first;
}

static bool stopping(const aeth__ledger *l)
{
	return l->cfg.stopping && atomic_load(l->cfg.stopping);
}

/* The open rows from the mark on (all in a full sweep); st->mark becomes
 * the creation time of the first row a later pass must see again. */
static int sweep(aeth__ledger *l, aeth__ledger_state *state, bool full,
		 aeth__ledger_stats *st)
{
	char cur_created[40] = "", cur_id[37] = "", first[40] = "";
	bool settled[PAGE];
	int rc = 0;

	if (!full)
		snprintf(cur_created, sizeof(cur_created), "%s", state->mark);
	for (;;) {
		aeth__ledger_row *rows = NULL;
		size_t n = 0;

		if (stopping(l))
			return AETH_ECANCELLED;
		rc = aeth__store_tasks_open(l->store, cur_created[0] ? cur_created : NULL,
					    cur_id[0] ? cur_id : NULL, PAGE, &rows, &n);
		if (rc == 0 && n > 0)
			rc = judge_rows(l, rows, n, settled, st);
		for (size_t i = 0; i < n; i++)
			if (!settled[i] && !first[0])
				snprintf(first, sizeof(first), "%s", rows[i].created);
		if (n > 0) {
			snprintf(cur_created, sizeof(cur_created), "%s", rows[n - 1].created);
			snprintf(cur_id, sizeof(cur_id), "%s", rows[n - 1].id);
		}
		aeth__ledger_rows_free(rows, n);
		if (rc != 0)
			return rc;
		if (n < PAGE)
			break;
	}
	/* Never past the horizon (10 s ago): a row committed late carries an
	 * older created_at than rows seen already. The times compare as text
	 * (fixed width). */
	snprintf(state->mark, sizeof(state->mark), "%s",
		 first[0] && strcmp(first, state->horizon) < 0 ? first : state->horizon);
	return 0;
}

/* The tasks Redis declared dead since the last pass: an open row is
 * judged (dead in Redis: the row goes dead); a completed row whose task
 * Redis holds dead is made completed in Redis (the ledger wins). */
static int dead_tasks(aeth__ledger *l, aeth__ledger_state *state,
		      aeth__ledger_stats *st)
{
	char **ids = NULL, **queues = NULL;
	aeth__ledger_row *rows = NULL, *open = NULL;
	bool settled[PAGE];
	int64_t next = 0;
	size_t n = 0, nrows = 0, nopen = 0;
	int rc;

	if ((rc = aeth__q_ledger_dead_since(l->q, state->dead_seen_ms, DEAD_MAX, &ids,
					    &queues, &next)) != 0)
		return rc;
	while (ids && ids[n])
		n++;
	rc = aeth__store_tasks_by_id(l->store, (const char *const *)ids, n, &rows,
				     &nrows);
	if (rc == 0 && nrows > 0 && !(open = calloc(nrows, sizeof(*open))))
		rc = aeth__error_oom();
	for (size_t i = 0; rc == 0 && i < nrows; i++) {
		const aeth__ledger_row *r = &rows[i];
		size_t k = 0;
		int done = 0;

		while (k < n && strcasecmp(ids[k], r->id))
			k++;
		/* only the copy in the row's own queue is the task's record */
		if (k == n || strcmp(queues[k], row_queue(r)))
			continue;
		if (!strcmp(r->status, "pending") || !strcmp(r->status, "running") ||
		    !strcmp(r->status, "retrying")) {
			open[nopen++] = *r;
		} else if (!strcmp(r->status, "completed") &&
			   (rc = aeth__q_ledger_settle(l->q, queues[k], r->id,
						       r->result, &done)) == 0 && done) {
			st->settled++;
			aeth__info("ledger: task %s: dead in Redis, completed in "
				   "PostgreSQL: made completed in Redis", r->id);
		}
	}
	for (size_t i = 0; rc == 0 && i < nopen; i += PAGE)
		rc = judge_rows(l, open + i, nopen - i < PAGE ? nopen - i : PAGE,
				settled, st);
	if (rc == 0)
		state->dead_seen_ms = next;
	free(open); /* shallow copies: the strings are the rows' */
	aeth__ledger_rows_free(rows, nrows);
	aeth_strarray_free(ids);
	aeth_strarray_free(queues);
	return rc;
}

/* Whether this pass must read every open row, and why. */
static const char *full_sweep_reason(const aeth__ledger_state *s, const char *run_id)
{
	if (!s->mark[0])
		return "first pass";
	if (run_id[0] && strcmp(run_id, s->redis_run_id))
		return s->redis_run_id[0] ? "Redis restarted" : "first pass on this Redis";
	if (strcmp(s->pg_started_now, s->pg_started))
		return "PostgreSQL restarted";
	if (s->full_sweep_age_ms < 0 || s->full_sweep_age_ms >= FULL_SWEEP_MS)
		return "hourly";
	return NULL;
}

static char *summary(const aeth__ledger_stats *st)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	cJSON_AddBoolToObject(o, "full_sweep", st->full_sweep);
	if (st->why_full)
		cJSON_AddStringToObject(o, "why_full", st->why_full);
	cJSON_AddNumberToObject(o, "read", (double)st->read);
	cJSON_AddNumberToObject(o, "live", (double)st->live);
	cJSON_AddNumberToObject(o, "young", (double)st->young);
	cJSON_AddNumberToObject(o, "requeued", (double)st->requeued);
	cJSON_AddNumberToObject(o, "completed", (double)st->completed);
	cJSON_AddNumberToObject(o, "dead", (double)st->dead);
	cJSON_AddNumberToObject(o, "settled", (double)st->settled);
	cJSON_AddNumberToObject(o, "raced", (double)st->raced);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* The pass itself, over l's connections, with the lock held. */
static int pass_locked(aeth__ledger *l, aeth__ledger_state *state,
		       aeth__ledger_stats *st)
{
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	char run_id[48] = "";
	char *sum;
	int rc, end_rc;

	qo.url = l->cfg.redis_url;
	qo.ns = l->cfg.redis_ns;
	qo.worker_id = l->cfg.worker_id;
	if ((rc = aeth_queue_open(&l->q, &qo)) == 0 &&
	    (rc = aeth__q_server_run_id(l->q, run_id)) == 0 &&
	    !run_id[0] && !l->run_id_warned) {
		aeth__warn("ledger: Redis refuses INFO, so restarts of Redis go "
			   "unseen and the tasks one lost are found by the hourly "
			   "full sweep only: allow INFO to the worker's ACL user "
			   "(docs/redis-acl.conf)");
		l->run_id_warned = true;
	}
	if (rc == 0) {
		st->why_full = full_sweep_reason(state, run_id);
		st->full_sweep = st->why_full != NULL;
		rc = sweep(l, state, st->full_sweep, st);
	}
	if (rc == 0 && !stopping(l))
		rc = dead_tasks(l, state, st);
	if (run_id[0])
		snprintf(state->redis_run_id, sizeof(state->redis_run_id), "%s", run_id);
	sum = summary(st);
	end_rc = aeth__store_ledger_end(l->store, state, rc == 0, st->full_sweep,
					l->cfg.worker_id, sum);
	free(sum);
	return rc == 0 ? end_rc : rc;
}

int aeth__ledger_pass(aeth__ledger *l, aeth__ledger_stats *st)
{
	aeth__ledger_state state;
	bool got = false;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = aeth_store_open(&l->store, l->cfg.database_url)) == 0 &&
	    (rc = aeth__store_ledger_begin(l->store, &got, &state)) == 0 && got)
		rc = pass_locked(l, &state, st);
	st->locked_out = rc == 0 && !got;
	disconnect(l); /* and with the session, the lock */
	return rc == AETH_ECANCELLED ? 0 : rc;
}

/* ---- the worker's thread ---- */

struct aeth__ledger_run {
	pthread_t thread;
	aeth__ledger_config cfg;
	unsigned int interval_ms;
};

static void log_pass(const aeth_worker *w, const aeth__ledger_stats *st)
{
	size_t fixed = st->requeued + st->completed + st->dead + st->settled;

	if (st->locked_out)
		return;
	if (fixed || st->full_sweep)
		aeth__info("ledger: worker %s: %s%s%s: %zu open rows judged, %zu on "
			   "their way in Redis, %zu too recent; repaired %zu (put "
			   "back %zu, completed %zu, dead %zu, Redis made completed "
			   "%zu)", w->id, st->full_sweep ? "full sweep (" : "pass",
			   st->full_sweep ? st->why_full : "", st->full_sweep ? ")" : "",
			   st->read, st->live, st->young, fixed, st->requeued,
			   st->completed, st->dead, st->settled);
	else
		aeth__debug("ledger: worker %s: pass: %zu open rows judged, %zu on "
			    "their way, %zu too recent", w->id, st->read, st->live,
			    st->young);
}

static void *ledger_main(void *arg)
{
	aeth_worker *w = arg;
	struct aeth__ledger_run *run = w->ledger;
	aeth__ledger *l = NULL;
	bool failing = false;

	while (!atomic_load(&w->stopping)) {
		aeth__ledger_stats st;
		int rc = l ? 0 : aeth__ledger_open(&l, &run->cfg);

		if (rc == 0)
			rc = aeth__ledger_pass(l, &st); /* connects, disconnects */
		if (rc == 0) {
			log_pass(w, &st);
			failing = false;
		} else if (!failing) {
			/* Redis or PostgreSQL away: said once, tried each interval */
			aeth__warn("ledger: worker %s: pass failed: %s (next try in %u ms)",
				   w->id, aeth_error_last(), run->interval_ms);
			failing = true;
		}
		aeth__worker_nap(w, run->interval_ms);
	}
	aeth__ledger_free(l);
	return NULL;
}

int aeth__ledger_start(aeth_worker *w)
{
	struct aeth__ledger_run *run;
	int64_t interval = 0, stray = 0;

	aeth_config_get_int(&interval, w->cfg, "ledger.interval_ms");
	aeth_config_get_int(&stray, w->cfg, "ledger.stray_after_ms");
	if (interval <= 0)
		return 0;
	if (!(run = calloc(1, sizeof(*run))))
		return aeth__error_oom();
	run->interval_ms = (unsigned int)interval;
	run->cfg = (aeth__ledger_config){w->database_url, w->redis_url, w->redis_ns,
					 w->id, (unsigned int)stray, &w->stopping};
	w->ledger = run;
	if (pthread_create(&run->thread, NULL, ledger_main, w) != 0) {
		w->ledger = NULL;
		free(run);
		return aeth__error_errno(AETH_ERROR, "cannot start the ledger thread");
	}
	return 0;
}

void aeth__ledger_stop(aeth_worker *w)
{
	if (!w->ledger)
		return;
	/* it naps on w->cond and sees `stopping`; a pass ends between pages */
	pthread_join(w->ledger->thread, NULL);
	free(w->ledger);
	w->ledger = NULL;
}
