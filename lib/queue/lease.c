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
	if (!t || !t->queue || !aeth__q_lease(t) || !aeth__uuid_valid(t->id))
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
	const char *argv[] = {klease, ktask, t->id, aeth__q_lease(t), sms};
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

static int check_result(aeth_queue *q, const aeth_queue_task *t, const char *result)
{
	size_t n;
	cJSON *j;

	if (!result)
		return 0;
	n = strlen(result);
	if (n > q->o.max_payload)
		return aeth__error_set(AETH_ETOOBIG,
			"result of task %s is %zu bytes, over the limit of %u",
			t->id, n, q->o.max_payload);
	if (!(j = cJSON_ParseWithLength(result, n)))
		return aeth__error_set(AETH_EINVALID,
			"result of task %s is not valid JSON", t->id);
	cJSON_Delete(j);
	return 0;
}

/* The keys of one ack script call. */
typedef struct {
	char klease[AETH__Q_KEY_MAX], kcomp[AETH__Q_KEY_MAX], tpfx[AETH__Q_KEY_MAX],
	     upfx[AETH__Q_KEY_MAX], dpfx[AETH__Q_KEY_MAX];
	size_t first, count; /* indexes into the valid tasks' list */
} ack_group;

/* One script per run of up to AETH__Q_CHUNK valid tasks of one queue. */
static int ack_groups(aeth_queue *q, aeth_queue_task *const *tasks, const size_t *ok,
		      size_t nok, ack_group **gs, size_t *ng)
{
	size_t cap = 0;
	int rc;

	*ng = 0;
	for (size_t v = 0; v < nok; v++) {
		const aeth_queue_task *t = tasks[ok[v]];
		ack_group *g = *ng ? &(*gs)[*ng - 1] : NULL;

		if (g && g->count < AETH__Q_CHUNK &&
		    !strcmp(tasks[ok[g->first]]->queue, t->queue)) {
			g->count++;
			continue;
		}
		if (*ng == cap) {
			/* A group is large and there is usually one: grow. */
			ack_group *n2 = realloc(*gs, (cap = cap ? 2 * cap : 1) * sizeof(**gs));

			if (!n2)
				return aeth__error_oom();
			*gs = n2;
		}
		g = &(*gs)[(*ng)++];
		g->first = v;
		g->count = 1;
		if ((rc = aeth__q_key(q, g->klease, sizeof(g->klease), t->queue, "lease")) ||
		    (rc = aeth__q_key(q, g->kcomp, sizeof(g->kcomp), t->queue, "completed")) ||
		    (rc = aeth__q_key(q, g->tpfx, sizeof(g->tpfx), t->queue, "t:")) ||
		    (rc = aeth__q_key(q, g->upfx, sizeof(g->upfx), t->queue, "u:")) ||
		    (rc = aeth__q_key(q, g->dpfx, sizeof(g->dpfx), t->queue, "done:")))
			return rc;
	}
	return 0;
}

/* Send the groups in one round trip and spread the replies to rcs. */
static int ack_send(aeth_queue *q, aeth_queue_task *const *tasks,
		    const char *const *results, const size_t *ok, const ack_group *gs,
		    size_t ng, int *rcs)
{
	char sret[24];
	const char **argv;
	aeth__q_cmd *cmds;
	redisReply **rs;
	size_t at = 0;
	int rc;

	snprintf(sret, sizeof(sret), "%llu", (unsigned long long)q->o.retention_s * 1000);
	argv = calloc(6 * ng + 3 * (gs[ng - 1].first + gs[ng - 1].count), sizeof(*argv));
	cmds = calloc(ng, sizeof(*cmds));
	rs = calloc(ng, sizeof(*rs));
	if (!argv || !cmds || !rs) {
		rc = aeth__error_oom();
		goto out;
	}
	for (size_t g = 0; g < ng; g++) {
		const char **a = argv + at;
		size_t k = 0;

		a[k++] = gs[g].klease; a[k++] = gs[g].kcomp; a[k++] = gs[g].tpfx;
		a[k++] = gs[g].upfx; a[k++] = gs[g].dpfx; a[k++] = sret;
		for (size_t v = gs[g].first; v < gs[g].first + gs[g].count; v++) {
			size_t i = ok[v];

			a[k++] = tasks[i]->id;
			a[k++] = aeth__q_lease(tasks[i]);
			a[k++] = results && results[i] ? results[i] : "";
		}
		cmds[g] = (aeth__q_cmd){AETH__LUA_ACK, 2, (int)k, a, NULL};
		at += k;
	}
	if ((rc = aeth__q_run(q, ng, cmds, rs)))
		goto out;
	for (size_t g = 0; g < ng; g++) {
		const redisReply *r = rs[g];
		int grc = 0;

		if (r->type == REDIS_REPLY_ERROR)
			grc = aeth__q_bad_reply(q, "queue script ack", r);
		else if (r->type != REDIS_REPLY_ARRAY || r->elements != gs[g].count)
			grc = aeth__q_bad_reply(q, "ack", r);
		for (size_t j = 0; j < gs[g].count; j++) {
			size_t i = ok[gs[g].first + j];
			const redisReply *e = grc ? NULL : r->element[j];

			if (grc)
				rcs[i] = grc;
			else if (e->type != REDIS_REPLY_INTEGER)
				rcs[i] = aeth__q_bad_reply(q, "ack", e);
			else if (e->integer != 1)
				rcs[i] = AETH_ESTATE;
			else
				tasks[i]->state = AETH_QUEUE_COMPLETED;
		}
		freeReplyObject(rs[g]);
	}
out:
	free(argv);
	free(cmds);
	free(rs);
	return rc;
}

int aeth_queue_ack_batch(int *rcs_out, aeth_queue *q,
			 aeth_queue_task *const *tasks,
			 const char *const *results, size_t n)
{
	int *rcs = NULL, rc = 0;
	size_t *ok = NULL, nok = 0, ng = 0;
	ack_group *gs = NULL;

	if (!tasks || n == 0 || n > AETH__Q_BATCH_MAX)
		return aeth__error_set(AETH_EINVALID,
			"ack batch needs 1..%d tasks", AETH__Q_BATCH_MAX);
	rcs = calloc(n, sizeof(*rcs));
	ok = calloc(n, sizeof(*ok));
	if (!rcs || !ok) {
		rc = aeth__error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!(rcs[i] = check_task(tasks[i])))
			rcs[i] = check_result(q, tasks[i], results ? results[i] : NULL);
		if (!rcs[i])
			ok[nok++] = i;
	}
	if (nok && ((rc = ack_groups(q, tasks, ok, nok, &gs, &ng)) ||
		    (rc = ack_send(q, tasks, results, ok, gs, ng, rcs))))
		for (size_t v = 0; v < nok; v++)
			rcs[ok[v]] = rc;
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!(rc = rcs[i]))
			continue;
		if (rc == AETH_ESTATE)
			lease_lost(tasks[i]);
	}
out:
	if (rcs_out && rcs)
		memcpy(rcs_out, rcs, n * sizeof(*rcs));
	free(rcs);
	free(ok);
	free(gs);
	return rc;
}

int aeth_queue_ack(aeth_queue *q, aeth_queue_task *t, const char *result)
{
	int rc;

	if ((rc = check_task(t)) || (rc = check_result(q, t, result)))
		return rc;
	return aeth_queue_ack_batch(NULL, q, &t, &result, 1);
}

int aeth_queue_nack(aeth_queue *q, aeth_queue_task *t, const char *error,
		    unsigned int flags)
{
	char klease[AETH__Q_KEY_MAX], ktask[AETH__Q_KEY_MAX], kretry[AETH__Q_KEY_MAX],
	     kdead[AETH__Q_KEY_MAX], kdone[AETH__Q_KEY_MAX], knotify[AETH__Q_KEY_MAX],
	     kpend[AETH__Q_KEY_MAX],
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
	QKEY(kpend, "pending");
	QKEY(upfx, "u:");
	QKEY(tpfx, "t:");
	snprintf(sbase, sizeof(sbase), "%u", q->o.retry_base_ms);
	snprintf(smax, sizeof(smax), "%u", q->o.retry_max_ms);
	snprintf(sjit, sizeof(sjit), "%.2f", q->o.retry_jitter_pct / 100.0);
	snprintf(srand, sizeof(srand), "%.6f",
		 (double)(aeth__q_rand(q) >> 11) / 9007199254740992.0);
	snprintf(sdmax, sizeof(sdmax), "%u", q->o.dead_max);
	snprintf(sret, sizeof(sret), "%llu", (unsigned long long)q->o.retention_s * 1000);
	const char *argv[] = {klease, ktask, kretry, kdead, kdone, knotify, kpend,
			      t->id, aeth__q_lease(t), err, sbase, smax, sjit, srand,
			      (flags & AETH_QUEUE_NACK_RELEASE) ? "2" :
			      (flags & AETH_QUEUE_NACK_NO_RETRY) ? "1" : "0",
			      sdmax, sret, upfx, tpfx};
	rc = aeth__q_script(q, AETH__LUA_NACK, 7, 19, argv, NULL, &r);
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
	} else if (r->element[0]->integer == 3)
		t->state = AETH_QUEUE_PENDING;
	else
		t->state = AETH_QUEUE_DEAD;
	freeReplyObject(r);
	return rc;
}
