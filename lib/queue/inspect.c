/*
 * lib/queue/inspect.c - look at tasks and queues: get by id, wait for a
 * result, counts and listings per state, cancel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

/* The queue to use: `queue` if given, else the id index. *owned is set
 * when the result must be freed. */
static int resolve(aeth_queue *q, const char *queue, const char *id,
		   const char **out, char **owned)
{
	int rc;

	*owned = NULL;
	if (!aeth__uuid_valid(id))
		return aeth__error_set(AETH_EINVALID, "bad task id '%.40s': not a UUID",
				       id ? id : "(null)");
	if (queue) {
		*out = queue;
		return aeth__q_check_name(queue);
	}
	if ((rc = aeth__q_lookup_queue(q, id, owned)))
		return rc;
	*out = *owned;
	return 0;
}

/* HGETALL of the task; with `watch`, the watch script, which also marks an
 * unfinished task so that finishing it writes its done list. */
static int get_in(aeth_queue *q, const char *queue, const char *id, bool watch,
		  aeth_queue_task **out)
{
	char key[AETH__Q_KEY_MAX], ts[40];
	const char *argv[2] = {"HGETALL", key};
	redisReply *r;
	int rc;

	snprintf(ts, sizeof(ts), "t:%s", id);
	if ((rc = aeth__q_key(q, key, sizeof(key), queue, ts)))
		return rc;
	if (watch)
		rc = aeth__q_script(q, AETH__LUA_WATCH, 1, 1, argv + 1, NULL, &r);
	else
		rc = aeth__q_command(q, 2, argv, NULL, 0, &r);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 0)
		rc = aeth__error_set(AETH_ENOTFOUND,
			"task %s not found in queue %s (redis at %s)", id, queue,
			q->url.display);
	else if (r->type != REDIS_REPLY_ARRAY)
		rc = aeth__q_bad_reply(q, "HGETALL", r);
	else if ((rc = aeth__q_task_from_hash(r, 0, queue, out)) == AETH_EPROTO)
		rc = aeth__error_set(AETH_EPROTO,
			"task %s of queue %s: malformed message in redis (missing id/state)",
			id, queue);
	freeReplyObject(r);
	return rc;
}

int aeth_queue_get(aeth_queue_task **out, aeth_queue *q, const char *queue,
		   const char *id)
{
	char *owned;
	int rc;

	*out = NULL;
	if ((rc = resolve(q, queue, id, &queue, &owned)))
		return rc;
	rc = get_in(q, queue, id, false, out);
	free(owned);
	return rc;
}

/* Block until the done list of the task has an element. The element is
 * rotated (BRPOPLPUSH into the same list), not consumed, so that any
 * number of waiters wake and later waiters return at once. */
static int wait_done(aeth_queue *q, const char *queue, const char *id,
		     int64_t wait_ms, bool *woke)
{
	char key[AETH__Q_KEY_MAX], ds[48], stmo[32];
	const char *argv[4] = {"BRPOPLPUSH", key, key, stmo};
	redisReply *r;
	int rc;

	snprintf(ds, sizeof(ds), "done:%s", id);
	if ((rc = aeth__q_key(q, key, sizeof(key), queue, ds)))
		return rc;
	snprintf(stmo, sizeof(stmo), "%.3f", (double)wait_ms / 1000.0);
	if ((rc = aeth__q_command(q, 4, argv, NULL, (unsigned int)wait_ms, &r)))
		return rc;
	*woke = r->type == REDIS_REPLY_STRING;
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)
		rc = aeth__q_bad_reply(q, "BRPOPLPUSH", r);
	freeReplyObject(r);
	return rc;
}

int aeth_queue_wait_result(aeth_queue_task **out, aeth_queue *q,
			   const char *queue, const char *id,
			   unsigned int timeout_ms)
{
	int64_t deadline = aeth__now_ms() + timeout_ms;
	char *owned;
	int rc;

	*out = NULL;
	if ((rc = resolve(q, queue, id, &queue, &owned)))
		return rc;
	for (;;) {
		aeth_queue_task *t = NULL;
		int64_t wait;
		bool woke;

		if ((rc = get_in(q, queue, id, true, &t)))
			break;
		if (t->state == AETH_QUEUE_COMPLETED || t->state == AETH_QUEUE_DEAD) {
			*out = t;
			break;
		}
		aeth_queue_task_free(t);
		wait = timeout_ms ? deadline - aeth__now_ms() : AETH__Q_BLOCK_MAX_MS;
		if (wait <= 0) {
			rc = aeth__error_set(AETH_ETIMEOUT,
				"task %s of queue %s did not finish within %u ms",
				id, queue, timeout_ms);
			break;
		}
		if (wait > AETH__Q_BLOCK_MAX_MS)
			wait = AETH__Q_BLOCK_MAX_MS;
		if ((rc = wait_done(q, queue, id, wait, &woke)))
			break;
	}
	free(owned);
	return rc;
}

static const aeth_queue_counts counts_defaults = AETH_QUEUE_COUNTS_INIT;
static const size_t counts_sizes[] = {sizeof(aeth_queue_counts)};
static const aeth__versioned counts_v = {
	"aeth_queue_counts", "AETH_QUEUE_COUNTS_INIT", AETH_QUEUE_COUNTS_VERSION,
	counts_sizes, &counts_defaults,
};

int aeth_queue_counts_init(aeth_queue_counts *counts, unsigned int version)
{
	return aeth__versioned_init(&counts_v, counts, version);
}

static int count(aeth_queue *q, const char *queue, aeth_queue_counts *out);

/* Counted into a current struct; the caller gets the states its version
 * has. */
int aeth_queue_count(aeth_queue_counts *out, aeth_queue *q, const char *queue)
{
	aeth_queue_counts all;
	unsigned int version;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_queue_count: out is NULL");
	version = out->version;
	if ((rc = aeth__versioned_check(&counts_v, version)) != 0)
		return rc;
	rc = count(q, queue, &all);
	all.version = version;
	memcpy(out, &all, counts_sizes[version - 1]);
	return rc;
}

static int count(aeth_queue *q, const char *queue, aeth_queue_counts *out)
{
	static const char *const cmd[AETH_QUEUE_NSTATES] = {
		"LLEN", "ZCARD", "ZCARD", "ZCARD", "ZCARD", "ZCOUNT"};
	static const char *const sfx[AETH_QUEUE_NSTATES] = {
		"pending", "lease", "scheduled", "retry", "dead", "completed"};
	char keys[AETH_QUEUE_NSTATES][AETH__Q_KEY_MAX], now[24];
	const char *argvs[AETH_QUEUE_NSTATES][4];
	const char *const *pv[AETH_QUEUE_NSTATES];
	const size_t *lens[AETH_QUEUE_NSTATES] = {0};
	int argcs[AETH_QUEUE_NSTATES];
	redisReply *rs[AETH_QUEUE_NSTATES];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = aeth__q_check_name(queue)))
		return rc;
	/* Completed tasks past their retention are trimmed lazily: count
	 * only those still kept. */
	snprintf(now, sizeof(now), "%lld", (long long)aeth__wall_ms());
	for (int i = 0; i < AETH_QUEUE_NSTATES; i++) {
		if ((rc = aeth__q_key(q, keys[i], sizeof(keys[i]), queue, sfx[i])))
			return rc;
		argvs[i][0] = cmd[i];
		argvs[i][1] = keys[i];
		argvs[i][2] = now;
		argvs[i][3] = "+inf";
		argcs[i] = i == AETH_QUEUE_COMPLETED ? 4 : 2;
		pv[i] = argvs[i];
	}
	if ((rc = aeth__q_pipeline(q, AETH_QUEUE_NSTATES, argcs, pv, lens, rs)))
		return rc;
	for (int i = 0; i < AETH_QUEUE_NSTATES; i++) {
		if (rs[i]->type == REDIS_REPLY_INTEGER && rs[i]->integer >= 0)
			out->n[i] = (uint64_t)rs[i]->integer;
		else if (rc == 0)
			rc = aeth__q_bad_reply(q, "count", rs[i]);
		freeReplyObject(rs[i]);
	}
	return rc;
}

static int strings_of(aeth_queue *q, const redisReply *r, bool reverse,
		      char ***out)
{
	char **v;

	if (r->type != REDIS_REPLY_ARRAY)
		return aeth__q_bad_reply(q, "list", r);
	v = calloc(r->elements + 1, sizeof(*v));
	if (!v)
		return aeth__error_oom();
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[reverse ? r->elements - 1 - i : i];

		if (e->type != REDIS_REPLY_STRING ||
		    !(v[i] = strndup(e->str, e->len))) {
			aeth_strarray_free(v);
			return e->type != REDIS_REPLY_STRING ?
				aeth__q_bad_reply(q, "list", e) : aeth__error_oom();
		}
	}
	*out = v;
	return 0;
}

int aeth_queue_list(char ***ids, aeth_queue *q, const char *queue,
		    aeth_queue_state state, size_t offset, size_t limit)
{
	static const char *const sfx[AETH_QUEUE_NSTATES] = {
		"pending", "lease", "scheduled", "retry", "dead", "completed"};
	char key[AETH__Q_KEY_MAX], start[24], stop[24];
	const char *argv[4] = {NULL, key, start, stop};
	redisReply *r;
	int rc;

	*ids = NULL;
	if ((rc = aeth__q_check_name(queue)))
		return rc;
	if ((int)state < 0 || state >= AETH_QUEUE_NSTATES)
		return aeth__error_set(AETH_EINVALID, "unknown task state %d", (int)state);
	if (limit == 0 || limit > 100000)
		limit = limit ? 100000 : 100;
	if ((rc = aeth__q_key(q, key, sizeof(key), queue, sfx[state])))
		return rc;
	if (state == AETH_QUEUE_PENDING) {
		/* LPUSH adds on the left and workers take from the right:
		 * the oldest task is at index -1. */
		argv[0] = "LRANGE";
		snprintf(start, sizeof(start), "-%zu", offset + limit);
		snprintf(stop, sizeof(stop), "-%zu", offset + 1);
	} else {
		argv[0] = "ZRANGE";
		snprintf(start, sizeof(start), "%zu", offset);
		snprintf(stop, sizeof(stop), "%zu", offset + limit - 1);
	}
	if ((rc = aeth__q_command(q, 4, argv, NULL, 0, &r)))
		return rc;
	rc = strings_of(q, r, state == AETH_QUEUE_PENDING, ids);
	freeReplyObject(r);
	return rc;
}

int aeth_queue_queues(char ***names, aeth_queue *q)
{
	char key[AETH__Q_KEY_MAX];
	const char *argv[2] = {"SMEMBERS", key};
	redisReply *r;
	int rc;

	*names = NULL;
	snprintf(key, sizeof(key), "%s:queues", q->ns);
	if ((rc = aeth__q_command(q, 2, argv, NULL, 0, &r)))
		return rc;
	rc = strings_of(q, r, false, names);
	freeReplyObject(r);
	return rc;
}

int aeth_queue_cancel(aeth_queue *q, const char *queue, const char *id)
{
	static const char *const sfx[5] = {"pending", "scheduled", "retry", "dead",
					   "completed"};
	char keys[7][AETH__Q_KEY_MAX], ts[40], ds[48], upfx[AETH__Q_KEY_MAX];
	const char *argv[9];
	char *owned;
	redisReply *r;
	int rc;

	if ((rc = resolve(q, queue, id, &queue, &owned)))
		return rc;
	snprintf(ts, sizeof(ts), "t:%s", id);
	snprintf(ds, sizeof(ds), "done:%s", id);
	rc = aeth__q_key(q, keys[0], sizeof(keys[0]), queue, ts);
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = aeth__q_key(q, keys[i + 1], sizeof(keys[i + 1]), queue, sfx[i]);
	if (rc == 0)
		rc = aeth__q_key(q, keys[6], sizeof(keys[6]), queue, ds);
	if (rc == 0)
		rc = aeth__q_key(q, upfx, sizeof(upfx), queue, "u:");
	if (rc == 0) {
		for (int i = 0; i < 7; i++)
			argv[i] = keys[i];
		argv[7] = id;
		argv[8] = upfx;
		rc = aeth__q_script(q, AETH__LUA_CANCEL, 7, 9, argv, NULL, &r);
	}
	if (rc == 0) {
		if (r->type != REDIS_REPLY_INTEGER)
			rc = aeth__q_bad_reply(q, "cancel", r);
		else if (r->integer == 0)
			rc = aeth__error_set(AETH_ENOTFOUND, "task %s not found in queue %s",
					     id, queue);
		else if (r->integer == -1)
			rc = aeth__error_set(AETH_ESTATE,
				"task %s of queue %s is active (a worker runs it): cannot cancel",
				id, queue);
		freeReplyObject(r);
	}
	free(owned);
	return rc;
}
