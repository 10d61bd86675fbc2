/*
 * lib/queue/lease.c - the worker's side of a lease: heartbeat, ack, nack,
 * and explicit recovery of expired leases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "queue_internal.h"

/* Keys of the task's queue: "{ns:queue}:<suffix>" into buf. */
#define QKEY(buf, suffix) \
	do { if ((rc = aeth__q_key(q, buf, sizeof(buf), t->queue, suffix))) return rc; } while (0)

static int check_task(const aeth_queue_task *t)
{
	if (!t || !t->queue || !t->lease || !aeth__uuid_valid(t->id))
		return aeth__error_set(AETH_EINVALID,
			"not a dequeued task (no queue or lease): use aeth_queue_dequeue()'s task");
	return 0;
}

static int lease_lost(const aeth_queue_task *t)
{
	return aeth__error_set(AETH_ESTATE,
		"task %s of queue %s lost its lease (it expired and was recovered, "
		"or the task was finished): another worker may run it", t->id, t->queue);
}

int aeth_queue_heartbeat(aeth_queue *q, aeth_queue_task *t)
{
	char klease[AETH__Q_KEY_MAX], ktask[AETH__Q_KEY_MAX], ts[40], sms[16];
	redisReply *r;
	int rc;

	if ((rc = check_task(t)))
		return rc;
	snprintf(ts, sizeof(ts), "t:%s", t->id);
	QKEY(klease, "lease");
	QKEY(ktask, ts);
	snprintf(sms, sizeof(sms), "%u", q->o.lease_ms);
	const char *argv[] = {klease, ktask, t->id, t->lease, sms};
	rc = aeth__q_script(q, AETH__LUA_HEARTBEAT, 2, 5, argv, NULL, &r);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_INTEGER)
		rc = aeth__q_bad_reply(q, "heartbeat", r);
	else if (r->integer == -1)
		rc = lease_lost(t);
	else if (r->integer == -2)
		rc = aeth__error_set(AETH_ETIMEOUT,
			"task %s ran past its timeout of %u ms: lease not extended",
			t->id, t->timeout_ms);
	else
		t->lease_deadline_ms = r->integer;
	freeReplyObject(r);
	return rc;
}

int aeth_queue_ack(aeth_queue *q, aeth_queue_task *t, const char *result)
{
	char klease[AETH__Q_KEY_MAX], ktask[AETH__Q_KEY_MAX], kdone[AETH__Q_KEY_MAX],
	     kcomp[AETH__Q_KEY_MAX], upfx[AETH__Q_KEY_MAX], ts[48], ds[48], sret[24];
	redisReply *r;
	int rc;

	if ((rc = check_task(t)))
		return rc;
	if (result) {
		size_t n = strlen(result);
		cJSON *j;

		if (n > q->o.max_payload)
			return aeth__error_set(AETH_ETOOBIG,
				"result of task %s is %zu bytes, over the limit of %u",
				t->id, n, q->o.max_payload);
		if (!(j = cJSON_ParseWithLength(result, n)))
			return aeth__error_set(AETH_EINVALID,
				"result of task %s is not valid JSON", t->id);
		cJSON_Delete(j);
	}
	snprintf(ts, sizeof(ts), "t:%s", t->id);
	snprintf(ds, sizeof(ds), "done:%s", t->id);
	QKEY(klease, "lease");
	QKEY(ktask, ts);
	QKEY(kcomp, "completed");
	QKEY(kdone, ds);
	QKEY(upfx, "u:");
	snprintf(sret, sizeof(sret), "%llu", (unsigned long long)q->o.retention_s * 1000);
	const char *argv[] = {klease, ktask, kcomp, kdone, t->id, t->lease,
			      result ? result : "", sret, upfx};
	rc = aeth__q_script(q, AETH__LUA_ACK, 4, 9, argv, NULL, &r);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_INTEGER)
		rc = aeth__q_bad_reply(q, "ack", r);
	else if (r->integer != 1)
		rc = lease_lost(t);
	else
		t->state = AETH_QUEUE_COMPLETED;
	freeReplyObject(r);
	return rc;
}

int aeth_queue_nack(aeth_queue *q, aeth_queue_task *t, const char *error,
		    unsigned int flags)
{
	char klease[AETH__Q_KEY_MAX], ktask[AETH__Q_KEY_MAX], kretry[AETH__Q_KEY_MAX],
	     kdead[AETH__Q_KEY_MAX], kdone[AETH__Q_KEY_MAX], knotify[AETH__Q_KEY_MAX],
	     upfx[AETH__Q_KEY_MAX], tpfx[AETH__Q_KEY_MAX], ts[48], ds[48],
	     sbase[16], smax[16], sjit[16], srand[24], sdmax[16], sret[24];
	char err[AETH__Q_ERROR_MAX + 1];
	redisReply *r;
	int rc;

	if ((rc = check_task(t)))
		return rc;
	/* Errors are kept short: they are stored with every failed task. */
	snprintf(err, sizeof(err), "%s", error && *error ? error : "failed");
	snprintf(ts, sizeof(ts), "t:%s", t->id);
	snprintf(ds, sizeof(ds), "done:%s", t->id);
	QKEY(klease, "lease");
	QKEY(ktask, ts);
	QKEY(kretry, "retry");
	QKEY(kdead, "dead");
	QKEY(kdone, ds);
	QKEY(knotify, "notify");
	QKEY(upfx, "u:");
	QKEY(tpfx, "t:");
	snprintf(sbase, sizeof(sbase), "%u", q->o.retry_base_ms);
	snprintf(smax, sizeof(smax), "%u", q->o.retry_max_ms);
	snprintf(sjit, sizeof(sjit), "%.2f", q->o.retry_jitter_pct / 100.0);
	snprintf(srand, sizeof(srand), "%.6f",
		 (double)(aeth__q_rand(q) >> 11) / 9007199254740992.0);
	snprintf(sdmax, sizeof(sdmax), "%u", q->o.dead_max);
	snprintf(sret, sizeof(sret), "%llu", (unsigned long long)q->o.retention_s * 1000);
	const char *argv[] = {klease, ktask, kretry, kdead, kdone, knotify,
			      t->id, t->lease, err, sbase, smax, sjit, srand,
			      (flags & AETH_QUEUE_NACK_NO_RETRY) ? "1" : "0",
			      sdmax, sret, upfx, tpfx};
	rc = aeth__q_script(q, AETH__LUA_NACK, 6, 18, argv, NULL, &r);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER)
		rc = aeth__q_bad_reply(q, "nack", r);
	else if (r->element[0]->integer == -1)
		rc = lease_lost(t);
	else if (r->element[0]->integer == 1) {
		t->state = AETH_QUEUE_RETRY;
		t->retried++;
		t->process_at_ms = r->element[1]->integer;
	} else
		t->state = AETH_QUEUE_DEAD;
	freeReplyObject(r);
	return rc;
}
