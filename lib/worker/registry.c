/*
 * lib/worker/registry.c - a running worker's entry in the queue's worker
 * registry (refreshed by the heartbeat thread, marked stopped on a
 * graceful stop). The checks submitters make against the registry are
 * lib/client/registry.c.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "worker/pool.h"
#include "worker/worker_internal.h"

unsigned int aeth__worker_reg_interval(const struct aeth_worker *w)
{
	unsigned int tick = w->lease_ms / 3;

	return tick && tick < AETH__REG_INTERVAL_MS ? tick : AETH__REG_INTERVAL_MS;
}

/* {"host", "host_id", "pid", "types": [...], "queues": [...], "concurrency",
 *  "backend", "started_at", "pools": [...] (pool.h; only with pools)} */
static char *info_json(struct aeth_worker *w)
{
	cJSON *o = cJSON_CreateObject(), *types = cJSON_AddArrayToObject(o, "types");
	cJSON *queues = cJSON_AddArrayToObject(o, "queues");
	char host[256] = "", when[64];
	time_t s = (time_t)(w->started_wall_ms / 1000);
	struct tm tm;
	char *out;

	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "unknown");
	gmtime_r(&s, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(o, "host", host);
	cJSON_AddStringToObject(o, "host_id", w->host_id);
	cJSON_AddNumberToObject(o, "pid", (double)getpid());
	for (size_t i = 0; i < w->nhandlers; i++)
		cJSON_AddItemToArray(types, cJSON_CreateString(w->handlers[i].type));
	for (size_t i = 0; i < w->nsources; i++)
		cJSON_AddItemToArray(queues, cJSON_CreateString(w->sources[i].name));
	cJSON_AddNumberToObject(o, "concurrency", w->concurrency);
	cJSON_AddStringToObject(o, "backend", w->backend ? w->backend : "qemu");
	cJSON_AddStringToObject(o, "started_at", when);
	{
		char *pools = aeth__pools_json(w);
		cJSON *pj = pools ? cJSON_Parse(pools) : NULL;

		if (pj)
			cJSON_AddItemToObject(o, "pools", pj);
		free(pools);
	}
	out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return out;
}

int aeth__worker_register(struct aeth_worker *w, aeth_queue *q)
{
	char *info = info_json(w);
	int rc;

	if (!info)
		return aeth__error_oom();
	rc = aeth_queue_worker_register(q, w->id, info, aeth__worker_reg_interval(w));
	free(info);
	return rc;
}
