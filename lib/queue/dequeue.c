/*
 * lib/queue/dequeue.c - take a task from several weighted queues.
 *
 * Each queue is tried with one atomic script (promote due tasks, recover
 * expired leases, pop up to N tasks to active with a lease each). When all are empty the
 * handle blocks in BRPOP on the queues' "notify" lists, where every
 * enqueue pushes a wake-up token, for at most the time until the next
 * scheduled/retry/lease deadline: no polling, and a task enqueued while
 * we wait wakes us at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_reply.h"
#include "queue_internal.h"

#define MAX_SOURCES 32

/* The fields dequeue.lua returns, in its order, then the lease token. */
static const char *const fields[] = {"m", "payload", "retried", "process_at_ms",
	"error", "unique_key", "lease"};

/* >0: got that many tasks into out[]; 0: empty (*next_ms: ms to the
 * next due event, or -1). */
static int dequeue_one(aeth_queue *q, const char *queue, char mode, size_t max,
		       aeth_queue_task **out, int64_t *next_ms,
		       unsigned int *recovered)
{
	static const char *const sfx[7] = {"pending", "lease", "scheduled", "retry",
					   "completed", "notify", "dead"};
	char keys[7][AETH__Q_KEY_MAX], tpfx[AETH__Q_KEY_MAX], upfx[AETH__Q_KEY_MAX],
	     dpfx[AETH__Q_KEY_MAX], sms[16], sdmax[16], token[24], smax[24], sret[24];
	const char *argv[17];
	redisReply *r;
	size_t got = 0;
	int rc;

	for (int i = 0; i < 7; i++) {
		if ((rc = aeth__q_key(q, keys[i], sizeof(keys[i]), queue, sfx[i])))
			return rc;
		argv[i] = keys[i];
	}
	if ((rc = aeth__q_key(q, tpfx, sizeof(tpfx), queue, "t:")) ||
	    (rc = aeth__q_key(q, upfx, sizeof(upfx), queue, "u:")) ||
	    (rc = aeth__q_key(q, dpfx, sizeof(dpfx), queue, "done:")))
		return rc;
	snprintf(sms, sizeof(sms), "%u", q->o.lease_ms);
	snprintf(sdmax, sizeof(sdmax), "%u", q->o.dead_max);
	snprintf(token, sizeof(token), "%016llx", (unsigned long long)aeth__q_rand(q));
	snprintf(smax, sizeof(smax), "%zu", max ? max : 1);
	snprintf(sret, sizeof(sret), "%llu", (unsigned long long)q->o.retention_s * 1000);
	argv[7] = tpfx; argv[8] = sms; argv[9] = q->worker_id; argv[10] = token;
	argv[11] = sdmax; argv[12] = upfx; argv[13] = mode == '1' ? "1" : mode == '2' ? "2" : "0";
	argv[14] = smax; argv[15] = dpfx; argv[16] = sret;
	rc = aeth__q_script(q, AETH__LUA_DEQUEUE, 7, 17, argv, NULL, &r);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER) {
		rc = aeth__q_bad_reply(q, "dequeue", r);
	} else if (r->element[0]->integer == 1 && r->elements >= 4 &&
		   r->elements - 3 <= max && r->element[1]->type == REDIS_REPLY_INTEGER &&
		   r->element[2]->type == REDIS_REPLY_INTEGER) {
		for (size_t i = 3; i < r->elements && rc == 0; i++) {
			rc = aeth__q_task_from_values(fields, AETH__ARRAY_LEN(fields), queue,
						      r->element[i], &out[got]);
			if (rc == 0)
				got++;
			if (rc == 0 && !(out[got - 1]->worker = aeth__strdup(q->worker_id)))
				rc = AETH_ENOMEM;
			if (rc == 0) {
				out[got - 1]->state = AETH_QUEUE_ACTIVE;
				out[got - 1]->started_ms = r->element[1]->integer;
				out[got - 1]->lease_deadline_ms = r->element[2]->integer;
			}
		}
		if (rc == AETH_EPROTO)
			rc = aeth__error_set(AETH_EPROTO,
				"redis at %s: queue %s: unreadable task message", q->url.display, queue);
		if (rc) {
			/* Leased tasks we cannot return come back by lease expiry. */
			while (got > 0)
				aeth_queue_task_free(out[--got]);
		} else {
			rc = (int)got;
		}
	} else if (r->element[0]->integer == 2 && r->elements == 3 &&
		   r->element[1]->type == REDIS_REPLY_STRING &&
		   r->element[2]->type == REDIS_REPLY_STRING) {
		rc = aeth__error_set(AETH_EPROTO,
			"task %.40s of queue %s was malformed (%s): moved to dead",
			r->element[1]->str, queue, r->element[2]->str);
	} else if (r->element[0]->integer == 0 && r->elements == 3 &&
		   r->element[1]->type == REDIS_REPLY_INTEGER &&
		   r->element[2]->type == REDIS_REPLY_INTEGER) {
		*next_ms = r->element[1]->integer;
		if (recovered)
			*recovered = (unsigned int)r->element[2]->integer;
		rc = 0;
	} else {
		rc = aeth__q_bad_reply(q, "dequeue", r);
	}
	freeReplyObject(r);
	return rc;
}

/* Strict sources first in the given order, then a weighted random order
 * (sampling without replacement): with all queues busy, the first queue
 * tried is queue i with probability weight_i / sum(weights). `first`
 * (or -1) is moved to the front: its notify list just woke us. */
static void order_sources(aeth_queue *q, const aeth_queue_source *s, size_t n,
			  int first, size_t *order)
{
	unsigned int w[MAX_SOURCES];
	size_t k = 0, rest[MAX_SOURCES], nrest = 0;
	uint64_t total = 0;

	if (first >= 0)
		order[k++] = (size_t)first;
	for (size_t i = 0; i < n; i++) {
		if ((int)i == first)
			continue;
		if (s[i].strict)
			order[k++] = i;
		else {
			rest[nrest] = i;
			w[nrest] = s[i].weight ? s[i].weight : 1;
			total += w[nrest++];
		}
	}
	while (nrest > 0) {
		uint64_t pick = aeth__q_rand(q) % total;
		size_t j = 0;

		while (pick >= w[j])
			pick -= w[j++];
		order[k++] = rest[j];
		total -= w[j];
		rest[j] = rest[nrest - 1];
		w[j] = w[nrest - 1];
		nrest--;
	}
}

static int check_sources(const aeth_queue_source *s, size_t n)
{
	int rc;

	if (!s || n == 0 || n > MAX_SOURCES)
		return aeth__error_set(AETH_EINVALID,
			"dequeue needs 1..%d queues", MAX_SOURCES);
	for (size_t i = 0; i < n; i++)
		if ((rc = aeth__q_check_name(s[i].name)))
			return rc;
	return 0;
}

/* Do the keys lie in more than one cluster slot? */
static bool many_slots(const aeth_queue *q, char (*keys)[AETH__Q_KEY_MAX], size_t n)
{
	if (q->url.kind != AETH__REDIS_CLUSTER)
		return false;
	for (size_t i = 1; i < n; i++)
		if (aeth__q_key_slot(keys[i], strlen(keys[i])) !=
		    aeth__q_key_slot(keys[0], strlen(keys[0])))
			return true;
	return false;
}

/* Block on the notify lists; *woke = index of the source woken, or -1.
 * One BRPOP over them all, or in a cluster one per slot (block.c). */
static int wait_notify(aeth_queue *q, const aeth_queue_source *s, size_t n,
		       int64_t wait_ms, int *woke)
{
	char keys[MAX_SOURCES][AETH__Q_KEY_MAX], stmo[32];
	const char *argv[MAX_SOURCES + 2];
	redisReply *r;
	int rc;

	argv[0] = "BRPOP";
	for (size_t i = 0; i < n; i++) {
		if ((rc = aeth__q_key(q, keys[i], sizeof(keys[i]), s[i].name, "notify")))
			return rc;
		argv[i + 1] = keys[i];
	}
	if (many_slots(q, keys, n))
		return aeth__q_block_many(q, argv + 1, n, wait_ms, woke);
	snprintf(stmo, sizeof(stmo), "%.3f", (double)wait_ms / 1000.0);
	argv[n + 1] = stmo;
	rc = aeth__q_command(q, (int)n + 2, argv, NULL, (unsigned int)wait_ms, &r);
	if (rc)
		return rc;
	*woke = -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING) {
		for (size_t i = 0; i < n; i++)
			if (!strcmp(keys[i], r->element[0]->str))
				*woke = (int)i;
	} else if (r->type != REDIS_REPLY_NIL) {
		rc = aeth__q_bad_reply(q, "BRPOP", r);
	}
	freeReplyObject(r);
	return rc;
}

static const aeth_queue_source source_defaults = AETH_QUEUE_SOURCE_INIT;
/* Each version's sizeof: also the stride of a caller's array. */
static const size_t source_sizes[] = {sizeof(aeth_queue_source)};
static const aeth__versioned source_v = {
	"aeth_queue_source", "AETH_QUEUE_SOURCE_INIT", AETH_QUEUE_SOURCE_VERSION,
	source_sizes, &source_defaults,
};

int aeth_queue_source_init(aeth_queue_source *source, unsigned int version)
{
	return aeth__versioned_init(&source_v, source, version);
}

/* The caller's sources (elements of src[0]'s version) as current ones. */
static int copy_sources(aeth_queue_source *dst, const aeth_queue_source *src,
			size_t n)
{
	size_t stride;
	int rc;

	if (!src || n == 0 || n > MAX_SOURCES)
		return aeth__error_set(AETH_EINVALID,
			"dequeue needs 1..%d queues", MAX_SOURCES);
	if ((rc = aeth__versioned_check(&source_v, src[0].version)) != 0)
		return rc;
	stride = source_sizes[src[0].version - 1];
	for (size_t i = 0; i < n; i++) {
		const aeth_queue_source *s =
			(const void *)((const char *)src + i * stride);

		if (s->version != src[0].version)
			return aeth__error_set(AETH_EINVALID, "dequeue: source %zu has "
					       "version %u, source 0 version %u (one "
					       "version per array)", i, s->version,
					       src[0].version);
		aeth__versioned_copy(&source_v, &dst[i], s);
	}
	return 0;
}

/* The scan-then-block loop of both dequeue functions. */
static int dequeue_loop(aeth_queue *q, const aeth_queue_source *src, size_t n,
			unsigned int timeout_ms, aeth_queue_task **out, size_t max,
			size_t *got)
{
	int64_t deadline = aeth__now_ms() + timeout_ms;
	aeth_queue_source s[MAX_SOURCES];
	size_t order[MAX_SOURCES];
	int rc, woke = -1;

	*got = 0;
	if ((rc = copy_sources(s, src, n)) || (rc = check_sources(s, n)))
		return rc;
	for (bool force = false;;) {
		int64_t next = -1, wait, now = aeth__now_ms();
		bool maint = force || now - q->last_maint_ms >= AETH__Q_MAINT_MS;

		order_sources(q, s, n, woke, order);
		if (maint)
			q->last_maint_ms = now;
		for (size_t i = 0; i < n && *got < max; i++) {
			int64_t nx = -1;

			rc = dequeue_one(q, s[order[i]].name, maint ? '2' : '0', max - *got,
					 out + *got, &nx, NULL);
			if (rc < 0)
				return *got ? 0 : rc; /* malformed ones went to dead */
			*got += (size_t)rc;
			if (nx >= 0 && (next < 0 || nx < next))
				next = nx;
		}
		if (*got)
			return 0;
		if (!maint) {
			/* Before blocking, promote/recover and learn the next
			 * due time. */
			force = true;
			continue;
		}
		force = false;
		wait = deadline - aeth__now_ms();
		if (timeout_ms == 0 || wait <= 0)
			return aeth__error_set(AETH_ETIMEOUT,
				"no task arrived in %u ms", timeout_ms);
		if (next >= 0 && next + 1 < wait)
			wait = next + 1;
		if (wait > AETH__Q_BLOCK_MAX_MS)
			wait = AETH__Q_BLOCK_MAX_MS;
		if ((rc = wait_notify(q, s, n, wait, &woke)))
			return rc;
	}
}

int aeth_queue_dequeue(aeth_queue_task **out, aeth_queue *q,
		       const aeth_queue_source *s, size_t n,
		       unsigned int timeout_ms)
{
	size_t got;

	*out = NULL;
	return dequeue_loop(q, s, n, timeout_ms, out, 1, &got);
}

int aeth_queue_dequeue_batch(aeth_queue_task **out, size_t *got, size_t max,
			     aeth_queue *q, const aeth_queue_source *s,
			     size_t n, unsigned int timeout_ms)
{
	*got = 0;
	if (!out || max == 0 || max > 1000)
		return aeth__error_set(AETH_EINVALID,
			"dequeue batch takes 1..1000 tasks (max %zu)", max);
	return dequeue_loop(q, s, n, timeout_ms, out, max, got);
}

int aeth_queue_recover(unsigned int *recovered, aeth_queue *q,
		       const char *queue)
{
	unsigned int n = 0;
	int64_t next;
	int rc;

	if ((rc = aeth__q_check_name(queue)))
		return rc;
	rc = dequeue_one(q, queue, '1', 0, NULL, &next, &n);
	if (rc < 0)
		return rc;
	if (recovered)
		*recovered = n;
	return 0;
}
