/*
 * lib/queue/output.c - live output streams and cancel marks of running
 * tasks (queue_output.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"
#include "queue_output.h"

static int task_key(aeth_queue *q, char *buf, size_t n, const char *task_id,
		    const char *suffix)
{
	if (!aeth__uuid_valid(task_id))
		return aeth__error_set(AETH_EINVALID, "bad task id '%.40s': not a "
				       "UUID", task_id ? task_id : "(null)");
	return aeth__q_key(q, buf, n, task_id, suffix);
}

int aeth__queue_output_append(aeth_queue *q, const char *task_id, char kind,
			      const void *data, size_t len)
{
	char key[AETH__Q_KEY_MAX], k[2] = {kind, 0}, ttl[16], maxlen[16];
	redisReply *r[2] = {NULL, NULL};
	int rc;

	if ((rc = task_key(q, key, sizeof(key), task_id, "out")) != 0)
		return rc;
	snprintf(maxlen, sizeof(maxlen), "%d", AETH__OUT_MAXLEN);
	snprintf(ttl, sizeof(ttl), "%d", AETH__OUT_TTL_S);
	const char *xadd[] = {"XADD", key, "MAXLEN", "~", maxlen, "*", "k", k,
			      "d", data ? (const char *)data : ""};
	const size_t xlen[] = {4, strlen(key), 6, 1, strlen(maxlen), 1, 1, 1,
			       1, data ? len : 0};
	const char *exp[] = {"EXPIRE", key, ttl};
	const int argcs[] = {10, 3};
	const char *const *argvs[] = {xadd, exp};
	const size_t *const lens[] = {xlen, NULL};

	rc = aeth__q_pipeline(q, 2, argcs, argvs, lens, r);
	if (rc == 0 && r[0]->type == REDIS_REPLY_ERROR)
		rc = aeth__q_bad_reply(q, "XADD of live output", r[0]);
	for (int i = 0; i < 2; i++)
		if (r[i])
			freeReplyObject(r[i]);
	return rc;
}

/* One entry ["id", ["k", "o", "d", "..."]]. */
static int entry(const redisReply *e, char last_id[48], aeth__output_cb cb,
		 void *userdata)
{
	const redisReply *f;
	char kind = 0;
	const char *d = "";
	size_t dl = 0;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return -1;
	f = e->element[1];
	for (size_t i = 0; i + 1 < f->elements; i += 2) {
		const redisReply *n = f->element[i], *v = f->element[i + 1];

		if (n->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			return -1;
		if (!strcmp(n->str, "k") && v->len == 1)
			kind = v->str[0];
		else if (!strcmp(n->str, "d")) {
			d = v->str;
			dl = v->len;
		}
	}
	snprintf(last_id, 48, "%s", e->element[0]->str);
	if (kind)
		cb(kind, d, dl, userdata);
	return 0;
}

int aeth__queue_output_read(aeth_queue *q, const char *task_id,
			    char last_id[48], unsigned int block_ms,
			    aeth__output_cb cb, void *userdata)
{
	char key[AETH__Q_KEY_MAX], ms[16];
	redisReply *r = NULL;
	int rc, n = 0;

	if ((rc = task_key(q, key, sizeof(key), task_id, "out")) != 0)
		return rc;
	snprintf(ms, sizeof(ms), "%u", block_ms);
	/* BLOCK 0 would wait for good: without a wait, no BLOCK at all */
	const char *blocking[] = {"XREAD", "COUNT", "256", "BLOCK", ms, "STREAMS",
				  key, last_id};
	const char *once[] = {"XREAD", "COUNT", "256", "STREAMS", key, last_id};
	rc = block_ms ? aeth__q_command(q, 8, blocking, NULL, block_ms, &r)
		      : aeth__q_command(q, 6, once, NULL, 0, &r);
	if (rc != 0)
		return rc;
	if (r->type == REDIS_REPLY_NIL) {
		freeReplyObject(r);
		return 0;
	}
	/* [[key, [entry, ...]]] */
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY ||
	    r->element[0]->elements != 2 ||
	    r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
		rc = aeth__q_bad_reply(q, "XREAD of live output", r);
		freeReplyObject(r);
		return rc;
	}
	for (size_t i = 0; i < r->element[0]->element[1]->elements; i++) {
		if (entry(r->element[0]->element[1]->element[i], last_id, cb,
			  userdata) != 0) {
			rc = aeth__q_bad_reply(q, "XREAD entry", r);
			freeReplyObject(r);
			return rc;
		}
		n++;
	}
	freeReplyObject(r);
	return n;
}

int aeth__queue_cancel_mark(aeth_queue *q, const char *task_id)
{
	char key[AETH__Q_KEY_MAX];
	redisReply *r = NULL;
	int rc;

	if ((rc = task_key(q, key, sizeof(key), task_id, "cancel")) != 0)
		return rc;
	const char *argv[] = {"SET", key, "1", "EX", "3600"};
	if ((rc = aeth__q_command(q, 5, argv, NULL, 0, &r)) != 0)
		return rc;
	if (r->type == REDIS_REPLY_ERROR)
		rc = aeth__q_bad_reply(q, "cancel mark", r);
	freeReplyObject(r);
	return rc;
}

int aeth__queue_cancel_marked(aeth_queue *q, const char *task_id)
{
	char key[AETH__Q_KEY_MAX];
	redisReply *r = NULL;
	int rc;

	if ((rc = task_key(q, key, sizeof(key), task_id, "cancel")) != 0)
		return rc;
	const char *argv[] = {"EXISTS", key};
	if ((rc = aeth__q_command(q, 2, argv, NULL, 0, &r)) != 0)
		return rc;
	rc = r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : 0;
	freeReplyObject(r);
	return rc;
}
