/*
 * lib/queue/queue.c - open a queue handle; enqueue; the worker's side of
 * a lease: heartbeat, ack, nack; explicit recovery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "queue_internal.h"

#define DEF(field, value) do { if (!o->field) o->field = (value); } while (0)

static int check_ns(const char *ns)
{
	size_t n = strlen(ns);

	if (n == 0 || n > 64 || strspn(ns, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
		return aeth__error_set(AETH_EINVALID,
			"bad queue namespace '%.80s': use 1..64 characters of [A-Za-z0-9_.-]", ns);
	return 0;
}

static int fill_options(aeth_queue *q, const aeth_queue_options *opts)
{
	aeth_queue_options *o = &q->o;
	const char *ns;

	if (opts) {
		if (opts->version != AETH_QUEUE_OPTIONS_VERSION)
			return aeth__error_set(AETH_EINVALID,
				"aeth_queue_options.version %u unknown (use AETH_QUEUE_OPTIONS_INIT)",
				opts->version);
		*o = *opts;
	} else {
		aeth_queue_options d = AETH_QUEUE_OPTIONS_INIT;
		*o = d;
	}
	DEF(connect_timeout_ms, 2000);
	DEF(command_timeout_ms, 5000);
	DEF(lease_ms, 30000);
	DEF(retention_s, 86400);
	DEF(max_payload, 1024 * 1024);
	DEF(retry_base_ms, 1000);
	DEF(retry_max_ms, 600000);
	DEF(retry_jitter_pct, 25);
	DEF(dead_max, 10000);
	if (o->retry_jitter_pct > 100)
		o->retry_jitter_pct = 100;
	ns = o->ns ? o->ns : "aeth";
	if (check_ns(ns))
		return AETH_EINVALID;
	q->ns = aeth__strdup(ns);
	q->worker_id = aeth__strdup(o->worker_id ? o->worker_id : "");
	o->url = o->ns = o->worker_id = NULL;
	return q->ns && q->worker_id ? 0 : AETH_ENOMEM;
}

int aeth_queue_open(aeth_queue **out, const aeth_queue_options *opts)
{
	aeth_queue *q;
	const char *url;
	int rc;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return aeth__error_oom();
	url = opts && opts->url ? opts->url : getenv("AETH_REDIS_URL");
	if (!url || !*url)
		url = "redis://127.0.0.1:6379";
	rc = fill_options(q, opts);
	if (rc == 0)
		rc = aeth__redis_url_parse(url, &q->url);
	if (rc == 0 && getrandom(&q->rng, sizeof(q->rng), 0) != sizeof(q->rng))
		q->rng = (uint64_t)aeth__now_ms() ^ (uint64_t)(uintptr_t)q;
	q->rng |= 1;
	if (rc == 0)
		rc = aeth__q_connect(q);
	if (rc == 0)
		rc = aeth_queue_ping(q);
	if (rc) {
		aeth_queue_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

void aeth_queue_free(aeth_queue *q)
{
	if (!q)
		return;
	aeth__q_disconnect(q);
	aeth__redis_url_clear(&q->url);
	for (size_t i = 0; i < AETH__Q_SEEN; i++)
		free(q->seen[i]);
	free(q->ns);
	free(q->worker_id);
	free(q);
}

int aeth_queue_ping(aeth_queue *q)
{
	const char *argv[1] = {"PING"};
	redisReply *r;
	int rc = aeth__q_command(q, 1, argv, NULL, 0, &r);

	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_STATUS)
		rc = aeth__q_bad_reply(q, "PING", r);
	freeReplyObject(r);
	return rc;
}

/* JSON text, at most `max` bytes. */
static int check_json(const char *what, const char *json, size_t max)
{
	size_t n = strlen(json);
	cJSON *j;

	if (n > max)
		return aeth__error_set(AETH_ETOOBIG,
			"task %s is %zu bytes, over the limit of %zu (aeth_queue_options.max_payload)",
			what, n, max);
	j = cJSON_ParseWithLength(json, n);
	if (!j)
		return aeth__error_set(AETH_EINVALID,
			"task %s is not valid JSON (near byte %td)", what,
			cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : (ptrdiff_t)0);
	cJSON_Delete(j);
	return 0;
}

static int check_type(const char *type)
{
	size_t n = type ? strlen(type) : 0;

	if (n == 0 || n > AETH__Q_TYPE_MAX)
		return aeth__error_set(AETH_EINVALID,
			"bad task type: must be 1..%d characters", AETH__Q_TYPE_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)type[i] <= ' ' || type[i] == 0x7f)
			return aeth__error_set(AETH_EINVALID,
				"bad task type '%.140s': no spaces or control characters", type);
	return 0;
}

static int check_enqueue(aeth_queue *q, const char *type, const char *payload,
			 const aeth_queue_enqueue_options *o)
{
	int rc;

	if (o->version != AETH_QUEUE_ENQUEUE_OPTIONS_VERSION)
		return aeth__error_set(AETH_EINVALID,
			"aeth_queue_enqueue_options.version %u unknown", o->version);
	if ((rc = check_type(type)) || (rc = aeth__q_check_name(o->queue)) ||
	    (rc = check_json("payload", payload, q->o.max_payload)))
		return rc;
	if (o->id && !aeth__uuid_valid(o->id))
		return aeth__error_set(AETH_EINVALID, "bad task id '%.40s': not a UUID", o->id);
	if (o->unique_key && (!*o->unique_key || strlen(o->unique_key) > AETH__Q_UNIQUE_MAX))
		return aeth__error_set(AETH_EINVALID,
			"bad unique key: must be 1..%d bytes", AETH__Q_UNIQUE_MAX);
	return 0;
}

/* Register the queue name and the id index in the same round trip as the
 * script would cost a pipeline; they are separate keys (other slots). */
static bool seen(aeth_queue *q, const char *queue)
{
	for (size_t i = 0; i < AETH__Q_SEEN; i++)
		if (q->seen[i] && !strcmp(q->seen[i], queue))
			return true;
	free(q->seen[q->seen_next]);
	q->seen[q->seen_next] = strdup(queue);
	q->seen_next = (q->seen_next + 1) % AETH__Q_SEEN;
	return false;
}

static int enqueue_reply(aeth_queue *q, redisReply *r, const char *id,
			 const aeth_queue_enqueue_options *o, bool retried_send)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		return aeth__q_bad_reply(q, "enqueue", r);
	switch (r->element[0]->integer) {
	case 1:
		return 0;
	case -1:
		return aeth__error_set(AETH_EEXISTS,
			"a task with unique key '%s' is already live in queue %s (task %.36s)",
			o->unique_key, o->queue,
			r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "?");
	default:
		if (retried_send)
			return 0;
		return aeth__error_set(AETH_EEXISTS, "task %s already exists in queue %s",
				       id, o->queue);
	}
}

int aeth_queue_enqueue(aeth_queue *q, const char *type, const char *payload,
		       const aeth_queue_enqueue_options *opts, char id_out[37])
{
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	char id[37], ktask[AETH__Q_KEY_MAX], kpend[AETH__Q_KEY_MAX],
	     ksched[AETH__Q_KEY_MAX], knotify[AETH__Q_KEY_MAX], kuniq[AETH__Q_KEY_MAX],
	     kidx[AETH__Q_KEY_MAX], kqueues[AETH__Q_KEY_MAX], smax[16], stmo[16],
	     sat[24], sttl[16], sret[24];
	redisReply *r;
	int rc;

	if (opts)
		o = *opts;
	if (!o.queue)
		o.queue = "default";
	if (!payload)
		payload = "{}";
	if ((rc = check_enqueue(q, type, payload, &o)))
		return rc;
	snprintf(id, sizeof(id), "%s", o.id ? o.id : "");
	if (!o.id)
		aeth__uuid_new(id);
	char tsuffix[40];
	snprintf(tsuffix, sizeof(tsuffix), "t:%s", id);
	if ((rc = aeth__q_key(q, ktask, sizeof(ktask), o.queue, tsuffix)) ||
	    (rc = aeth__q_key(q, kpend, sizeof(kpend), o.queue, "pending")) ||
	    (rc = aeth__q_key(q, ksched, sizeof(ksched), o.queue, "scheduled")) ||
	    (rc = aeth__q_key(q, knotify, sizeof(knotify), o.queue, "notify")))
		return rc;
	if (o.unique_key) {
		char us[AETH__Q_UNIQUE_MAX + 4];
		snprintf(us, sizeof(us), "u:%s", o.unique_key);
		if ((rc = aeth__q_key(q, kuniq, sizeof(kuniq), o.queue, us)))
			return rc;
	}
	snprintf(smax, sizeof(smax), "%u", o.max_retries);
	snprintf(stmo, sizeof(stmo), "%u", o.timeout_ms);
	snprintf(sat, sizeof(sat), "%lld", (long long)(o.process_at_ms > 0 ? o.process_at_ms : 0));
	snprintf(sttl, sizeof(sttl), "%u", o.unique_ttl_ms ? o.unique_ttl_ms : 86400000u);
	const char *argv[] = {ktask, kpend, ksched, knotify, kuniq,
			      id, o.queue, type, payload, smax, stmo, sat,
			      o.unique_key ? o.unique_key : "", sttl};
	const char *args_only[] = {id, o.queue, type, payload, smax, stmo, sat,
				   o.unique_key ? o.unique_key : "", sttl};
	const char *av2[14];
	int nkeys = o.unique_key ? 5 : 4;

	memcpy(av2, argv, (size_t)nkeys * sizeof(char *));
	memcpy(av2 + nkeys, args_only, sizeof(args_only));

	/* One round trip: the script, then bookkeeping outside the queue's
	 * slot: the id -> queue index (7 days; NX so that a duplicate id
	 * cannot repoint it) and, once per handle, the set of queue names. */
	snprintf(kidx, sizeof(kidx), "%s:id:%s", q->ns, id);
	snprintf(kqueues, sizeof(kqueues), "%s:queues", q->ns);
	snprintf(sret, sizeof(sret), "%d", 7 * 86400);
	if (!q->sha[AETH__LUA_ENQUEUE][0] &&
	    (rc = aeth__q_script_load(q, AETH__LUA_ENQUEUE)))
		return rc;
	char snk[4];
	snprintf(snk, sizeof(snk), "%d", nkeys);
	const char *c0[20] = {"EVALSHA", q->sha[AETH__LUA_ENQUEUE], snk};
	memcpy(c0 + 3, av2, (size_t)(nkeys + 9) * sizeof(char *));
	const char *c1[] = {"SET", kidx, o.queue, "EX", sret, "NX"};
	const char *c2[] = {"SADD", kqueues, o.queue};
	const char *const *cmds[3] = {c0, c1, c2};
	int argcs[3] = {nkeys + 12, 6, 3};
	const size_t *lens[3] = {NULL, NULL, NULL};
	redisReply *rs[3];
	size_t ncmd = seen(q, o.queue) ? 2 : 3;

	rc = aeth__q_pipeline(q, ncmd, argcs, cmds, lens, rs);
	if (rc)
		return rc;
	r = rs[0];
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
		/* Script cache flushed: the slow path reloads it. */
		freeReplyObject(r);
		q->sha[AETH__LUA_ENQUEUE][0] = '\0';
		rc = aeth__q_script(q, AETH__LUA_ENQUEUE, nkeys, nkeys + 9, av2, NULL, &r);
		if (rc)
			r = NULL;
	} else if (r->type == REDIS_REPLY_ERROR) {
		rc = aeth__q_bad_reply(q, "queue script enqueue", r);
		freeReplyObject(r);
		r = NULL;
	}
	if (r) {
		rc = enqueue_reply(q, r, id, &o, false);
		freeReplyObject(r);
	}
	for (size_t i = 1; i < ncmd; i++) {
		if (rs[i]->type == REDIS_REPLY_ERROR && rc == 0)
			rc = aeth__q_bad_reply(q, "task index", rs[i]);
		freeReplyObject(rs[i]);
	}
	if (rc == 0 && id_out)
		memcpy(id_out, id, 37);
	return rc;
}
