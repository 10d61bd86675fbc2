/*
 * lib/worker/registry.c - a running worker's entry in the queue's worker
 * registry (refreshed by the heartbeat thread, marked stopped on a
 * graceful stop), and the checks made against the registry: does a live
 * worker handle this custom task type, is the owner of this VM running.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "worker/pool.h"
#include "worker/registry.h"
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

/* ---- checks ---- */

static bool has_string(const cJSON *arr, const char *s)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, arr)
		if (cJSON_IsString(v) && !strcmp(v->valuestring, s))
			return true;
	return false;
}

/* Append `s` to the ", "-separated list in b unless it is there. */
static void add_unique(aeth__buf *b, const char *s)
{
	const char *have = b->data ? b->data : "";
	size_t n = strlen(s);

	for (const char *p = strstr(have, s); p; p = strstr(p + 1, s))
		if ((p == have || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return;
	aeth__buf_printf(b, "%s%s", b->len ? ", " : "", s);
}

int aeth__type_check(aeth_queue *q, const char *type, const char *queue)
{
	aeth__buf all = AETH__BUF_INIT, on = AETH__BUF_INIT;
	char *json = NULL;
	cJSON *list, *e;
	bool handled = false;
	int rc;

	if ((rc = aeth_queue_worker_list(q, &json)) != 0)
		return rc;
	list = cJSON_Parse(json);
	aeth_free(json);
	rc = AETH_EINVALID;
	cJSON_ArrayForEach(e, list) {
		const cJSON *types = cJSON_GetObjectItemCaseSensitive(e, "types");
		const cJSON *queues = cJSON_GetObjectItemCaseSensitive(e, "queues");
		const cJSON *t;

		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "alive")))
			continue;
		cJSON_ArrayForEach(t, types)
			if (cJSON_IsString(t))
				add_unique(&all, t->valuestring);
		if (!has_string(types, type))
			continue;
		if (has_string(queues, queue)) {
			rc = 0;
			break;
		}
		handled = true;
		cJSON_ArrayForEach(t, queues) /* the shared ones: worker:<id> is routing's */
			if (cJSON_IsString(t) && strncmp(t->valuestring, "worker:", 7))
				add_unique(&on, t->valuestring);
	}
	cJSON_Delete(list);
	if (rc != 0 && handled)
		aeth__error_set(AETH_EINVALID, "task type '%s' is handled by live "
				"workers only on queue(s) %s, not on '%s': submit it "
				"to one of those (aeth-submit -queue NAME)", type,
				on.len ? on.data : "worker:<id>", queue);
	else if (rc != 0)
		aeth__error_set(AETH_EINVALID, "unknown task type '%s': no live "
				"worker handles it (built-in types: vm:create, "
				"vm:execute, vm:delete; live workers handle: %s)", type,
				all.len ? all.data : "nothing, no worker is running");
	aeth__buf_free(&all);
	aeth__buf_free(&on);
	return rc;
}

int aeth__owner_check(aeth_queue *q, const char *vm_id, const char *owner)
{
	char *json = NULL;
	cJSON *e, *age;
	const char *state, *seen;
	int rc;

	if (aeth_queue_worker_get(q, owner, &json) != 0)
		return 0; /* unknown here: the task waits in the owner's queue */
	e = cJSON_Parse(json);
	aeth_free(json);
	state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "state"));
	seen = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "last_seen"));
	age = cJSON_GetObjectItemCaseSensitive(e, "age_ms");
	if (!state || !strcmp(state, "alive")) {
		cJSON_Delete(e);
		return 0;
	}
	rc = aeth__error_set(AETH_ESTATE, "VM %s is owned by worker %s, which is "
			     "not running (%s, last seen %s, %.0f s ago): start it "
			     "again with -id %s so it re-attaches its VMs, or delete "
			     "the VM once it runs again", vm_id, owner,
			     !strcmp(state, "stopped") ? "stopped" : "no heartbeat",
			     seen ? seen : "?", cJSON_IsNumber(age) ?
			     age->valuedouble / 1000 : 0.0, owner);
	cJSON_Delete(e);
	return rc;
}
