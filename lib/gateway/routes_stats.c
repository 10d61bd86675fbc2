/*
 * lib/gateway/routes_stats.c - GET /v1/stats/history: what ended in the
 * last hour (or ?window_s=), per minute, and per queue over the last five
 * minutes, from the tasks table; scoped to the caller's tenant as every
 * read (an operator sees all, or one with ?tenant=). The dashboard draws
 * its charts and the queues' throughput from it (docs/dashboard.md).
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_internal.h"
#include "internal.h"

#define QUEUES_RECENT_S 300u

/* A duration, or null when no task had one. */
static void add_ms(cJSON *o, const char *k, double ms)
{
	if (ms < 0)
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, (double)(int64_t)(ms + 0.5));
}

/* The members every bucket and queue has. */
static void add_ended(cJSON *o, const aeth__stats_ended *e)
{
	cJSON_AddNumberToObject(o, "ok", (double)e->ok);
	cJSON_AddNumberToObject(o, "failed", (double)e->failed);
	add_ms(o, "run_mean_ms", e->run_mean_ms);
	add_ms(o, "run_p95_ms", e->run_p95_ms);
	add_ms(o, "wait_mean_ms", e->wait_mean_ms);
	add_ms(o, "wait_p95_ms", e->wait_p95_ms);
}

static cJSON *minute_object(const aeth__stats_minute *m)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "t", (double)m->minute_ms);
	add_ended(o, &m->e);
	cJSON_AddNumberToObject(o, "boots", (double)m->boots);
	add_ms(o, "boot_mean_ms", m->boot_mean_ms);
	add_ms(o, "boot_p95_ms", m->boot_p95_ms);
	return o;
}

static cJSON *queue_object(const aeth__stats_queue *q)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", q->queue);
	add_ended(o, &q->e);
	cJSON_AddNumberToObject(o, "per_s", (double)(q->e.ok + q->e.failed) /
				QUEUES_RECENT_S);
	return o;
}

void aeth__gw_stats_history(aeth__gw_ctx *ctx, const char *unused)
{
	long window = 3600;
	aeth__stats_minute *mins = NULL;
	aeth__stats_queue *qs = NULL;
	size_t nmins = 0, nqs = 0;
	cJSON *o, *a, *b;
	int rc;

	(void)unused;
	if (aeth__gw_query_int(ctx, "window_s", 60, 86400, &window) != 0)
		return;
	rc = aeth__store_stats_history(aeth__gw_store(ctx->conn),
				       aeth__gw_scope(ctx), (unsigned int)window,
				       &mins, &nmins);
	if (rc == 0)
		rc = aeth__store_stats_queues(aeth__gw_store(ctx->conn),
					      aeth__gw_scope(ctx), QUEUES_RECENT_S,
					      &qs, &nqs);
	if (rc != 0) {
		free(mins);
		aeth__gw_fail(ctx, rc);
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "window_s", (double)(window / 60 * 60));
	cJSON_AddNumberToObject(o, "bucket_s", 60);
	cJSON_AddNumberToObject(o, "queues_window_s", QUEUES_RECENT_S);
	a = cJSON_AddArrayToObject(o, "buckets");
	for (size_t i = 0; a && i < nmins; i++)
		cJSON_AddItemToArray(a, minute_object(&mins[i]));
	b = cJSON_AddArrayToObject(o, "queues");
	for (size_t i = 0; b && i < nqs; i++)
		cJSON_AddItemToArray(b, queue_object(&qs[i]));
	free(mins);
	free(qs);
	aeth__gw_json(ctx, 200, o);
}
