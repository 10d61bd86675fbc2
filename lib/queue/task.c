/*
 * lib/queue/task.c - a task's message as read from its Redis hash.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

static const char *const state_names[AETH_QUEUE_NSTATES] = {
	"pending", "active", "scheduled", "retry", "dead", "completed",
};

const char *aeth_queue_state_name(aeth_queue_state state)
{
	if ((int)state < 0 || state >= AETH_QUEUE_NSTATES)
		return "unknown";
	return state_names[state];
}

int aeth__q_state_parse(const char *s)
{
	for (int i = 0; i < AETH_QUEUE_NSTATES; i++)
		if (s && strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

void aeth_queue_task_free(aeth_queue_task *t)
{
	if (!t)
		return;
	free(t->queue);
	free(t->type);
	free(t->payload);
	free(t->result);
	free(t->error);
	free(t->unique_key);
	free(t->worker);
	if (t->internal)
		free(t->internal->lease);
	free(t->internal);
	free(t);
}

static int64_t num(const redisReply *v)
{
	char *end;
	long long n = strtoll(v->str, &end, 10);

	return *end ? 0 : (int64_t)n;
}

static unsigned int unum(const redisReply *v)
{
	int64_t n = num(v);

	return n < 0 ? 0 : n > 0xffffffffLL ? 0xffffffffu : (unsigned int)n;
}

static int set_str(char **dst, const redisReply *v)
{
	free(*dst);
	*dst = strndup(v->str, v->len);
	return *dst ? 0 : aeth__error_oom();
}

/* Decimal digits of s[*i..] up to a space; false when there are none. */
static bool m_num(const char *s, size_t len, size_t *i, int64_t *out)
{
	int64_t n = 0;
	size_t start = *i;

	for (; *i < len && s[*i] >= '0' && s[*i] <= '9' && *i - start < 18; (*i)++)
		n = n * 10 + (s[*i] - '0');
	if (*i == start || *i >= len || s[*i] != ' ')
		return false;
	(*i)++;
	*out = n;
	return true;
}

/* The packed immutable fields, "<id> <max_retries> <timeout_ms>
 * <created_ms> <type>" (enqueue.lua). A broken one is skipped: the
 * callers' checks for id and type then reject the message, unless the
 * hash has them as fields (a malformed task moved to dead). */
static int set_m(aeth_queue_task *t, const redisReply *v)
{
	int64_t maxr, tmo, created;
	size_t i = 37;

	if (v->len < 39 || v->str[36] != ' ' ||
	    !m_num(v->str, v->len, &i, &maxr) || !m_num(v->str, v->len, &i, &tmo) ||
	    !m_num(v->str, v->len, &i, &created) || i >= v->len)
		return 0;
	memcpy(t->id, v->str, 36);
	t->id[36] = '\0';
	t->max_retries = maxr > 0xffffffffLL ? 0xffffffffu : (unsigned int)maxr;
	t->timeout_ms = tmo > 0xffffffffLL ? 0xffffffffu : (unsigned int)tmo;
	t->created_ms = created;
	free(t->type);
	t->type = strndup(v->str + i, v->len - i);
	return t->type ? 0 : aeth__error_oom();
}

/* process_at_ms is stored only when it differs from the creation time
 * (enqueue.lua): absent (0), it is created_ms. */
static void default_process_at(aeth_queue_task *t)
{
	if (!t->process_at_ms)
		t->process_at_ms = t->created_ms;
}

static int set_field(aeth_queue_task *t, const char *name, const redisReply *v)
{
	if (!strcmp(name, "m"))
		return set_m(t, v);
	if (!strcmp(name, "id")) {
		if (v->len != 36)
			return AETH_EPROTO;
		memcpy(t->id, v->str, 36);
		t->id[36] = '\0';
	} else if (!strcmp(name, "state")) {
		int s = aeth__q_state_parse(v->str);
		if (s < 0)
			return AETH_EPROTO;
		t->state = (aeth_queue_state)s;
	}
	else if (!strcmp(name, "queue")) return set_str(&t->queue, v);
	else if (!strcmp(name, "type")) return set_str(&t->type, v);
	else if (!strcmp(name, "payload")) return set_str(&t->payload, v);
	else if (!strcmp(name, "result")) return set_str(&t->result, v);
	else if (!strcmp(name, "error")) return set_str(&t->error, v);
	else if (!strcmp(name, "unique_key")) return v->len ? set_str(&t->unique_key, v) : 0;
	else if (!strcmp(name, "worker")) return set_str(&t->worker, v);
	else if (!strcmp(name, "lease")) {
		if (!t->internal && !(t->internal = calloc(1, sizeof(*t->internal))))
			return AETH_ENOMEM;
		return set_str(&t->internal->lease, v);
	}
	else if (!strcmp(name, "retried")) t->retried = unum(v);
	else if (!strcmp(name, "max_retries")) t->max_retries = unum(v);
	else if (!strcmp(name, "timeout_ms")) t->timeout_ms = unum(v);
	else if (!strcmp(name, "created_ms")) t->created_ms = num(v);
	else if (!strcmp(name, "process_at_ms")) t->process_at_ms = num(v);
	else if (!strcmp(name, "started_ms")) t->started_ms = num(v);
	else if (!strcmp(name, "finished_ms")) t->finished_ms = num(v);
	else if (!strcmp(name, "deadline_ms")) t->lease_deadline_ms = num(v);
	return 0;
}

/* Flat HGETALL reply from element `first` on; `queue` when no field gives
 * it. Missing id/state is AETH_EPROTO (message set by the caller, which
 * knows the task). */
int aeth__q_task_from_hash(const redisReply *r, size_t first,
			   const char *queue, aeth_queue_task **out)
{
	aeth_queue_task *t;
	int rc = 0;
	bool have_state = false;

	if (r->type != REDIS_REPLY_ARRAY || (r->elements - first) % 2)
		return AETH_EPROTO;
	t = calloc(1, sizeof(*t));
	if (!t)
		return aeth__error_oom();
	t->version = AETH_QUEUE_TASK_VERSION;
	for (size_t i = first; i + 1 < r->elements && rc == 0; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			rc = AETH_EPROTO;
		else {
			rc = set_field(t, k->str, v);
			have_state |= !strcmp(k->str, "state");
		}
	}
	default_process_at(t);
	/* A dead malformed task may lack its type or queue; id and state are
	 * always written by our scripts. */
	if (rc == 0 && (!t->id[0] || !have_state))
		rc = AETH_EPROTO;
	if (rc == 0 && !t->type && !(t->type = strdup("")))
		rc = aeth__error_oom();
	if (rc == 0 && !t->queue && queue && !(t->queue = strdup(queue)))
		rc = aeth__error_oom();
	if (rc) {
		aeth_queue_task_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int aeth__q_task_from_values(const char *const *names, size_t n,
			     const char *queue, const redisReply *r,
			     aeth_queue_task **out)
{
	aeth_queue_task *t;
	int rc = 0;

	if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
		return AETH_EPROTO;
	t = calloc(1, sizeof(*t));
	if (!t)
		return aeth__error_oom();
	t->version = AETH_QUEUE_TASK_VERSION;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const redisReply *v = r->element[i];

		if (v->type == REDIS_REPLY_STRING)
			rc = set_field(t, names[i], v);
		else if (v->type != REDIS_REPLY_NIL)
			rc = AETH_EPROTO;
	}
	default_process_at(t);
	if (rc == 0 && !t->queue && queue && !(t->queue = strdup(queue)))
		rc = aeth__error_oom();
	if (rc == 0 && (!t->id[0] || !t->queue || !t->type || !t->payload || !aeth__q_lease(t)))
		rc = AETH_EPROTO;
	if (rc) {
		aeth_queue_task_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* xorshift64*: weighted queue order and backoff jitter need speed, not
 * cryptographic strength. */
uint64_t aeth__q_rand(aeth_queue *q)
{
	uint64_t x = q->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	q->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}
