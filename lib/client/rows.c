/*
 * lib/client/rows.c - the tasks and vms rows as the JSON the client hands
 * out (aeth_client_task(), aeth_client_list(), aeth_client_wait()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "aetherium/store.h"
#include "client/rows.h"
#include "internal.h"

/* ms since the epoch as "2026-11-26T18:57:00.123Z", or null for 0. */
static void add_time(cJSON *o, const char *key, int64_t ms)
{
	char buf[96]; /* room for any int year: no truncation warning */
	struct tm tm;
	time_t secs = (time_t)(ms / 1000);

	if (ms <= 0 || !gmtime_r(&secs, &tm)) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	cJSON_AddStringToObject(o, key, buf);
}

static void add_str(cJSON *o, const char *key, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

/* A JSON column: parsed, or kept as a string if it somehow is not JSON. */
static void add_json(cJSON *o, const char *key, const char *v)
{
	cJSON *j = v ? cJSON_Parse(v) : NULL;

	if (j)
		cJSON_AddItemToObject(o, key, j);
	else
		add_str(o, key, v);
}

static cJSON *task_object(const aeth_store_task *t)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	add_str(o, "id", t->id);
	add_str(o, "type", t->type);
	add_str(o, "status", t->status);
	add_str(o, "queue", t->queue);
	add_json(o, "payload", t->payload);
	add_json(o, "result", t->result);
	add_str(o, "error", t->error);
	add_str(o, "vm_id", t->vm_id);
	add_str(o, "worker_id", t->worker_id);
	cJSON_AddNumberToObject(o, "retry_count", t->retry_count);
	cJSON_AddNumberToObject(o, "max_retries", t->max_retries);
	add_time(o, "created_at", t->created_at_ms);
	add_time(o, "started_at", t->started_at_ms);
	add_time(o, "completed_at", t->completed_at_ms);
	return o;
}

static cJSON *vm_object(const aeth_store_vm *v)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	add_str(o, "id", v->id);
	add_str(o, "name", v->name);
	add_str(o, "status", v->status);
	add_str(o, "orchestrator", v->orchestrator);
	cJSON_AddNumberToObject(o, "vcpu_count", v->vcpu_count);
	cJSON_AddNumberToObject(o, "memory_mb", v->memory_mb);
	add_str(o, "owner_worker", v->owner_worker);
	add_time(o, "created_at", v->created_at_ms);
	add_time(o, "started_at", v->started_at_ms);
	add_time(o, "stopped_at", v->stopped_at_ms);
	add_str(o, "error", v->error);
	return o;
}

/* Print and free `j`; *out is the caller's. */
static int print_json(cJSON *j, char **out)
{
	*out = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	return *out ? 0 : aeth__error_oom();
}

int aeth__client_task_json(char **json_out, bool *final, aeth__rec *r,
			   const char *id)
{
	aeth_store_task *t = NULL;
	int rc = aeth_store_task_get(&t, aeth__rec_store(r), id);

	*json_out = NULL;
	if (rc == AETH_ENOTFOUND)
		return aeth__error_set(rc, "no task %s in the database", id);
	if (rc == 0 && final)
		*final = !t->status || !(strcmp(t->status, "pending") == 0 ||
					 strcmp(t->status, "running") == 0 ||
					 strcmp(t->status, "retrying") == 0);
	if (rc == 0)
		rc = print_json(task_object(t), json_out);
	aeth_store_task_free(t);
	return rc;
}

int aeth__client_tasks_json(aeth__rec *r, unsigned int limit, char **json_out)
{
	aeth_store_filter f = AETH_STORE_FILTER_INIT;
	aeth_store_task **list = NULL;
	cJSON *a;
	int rc;

	*json_out = NULL;
	f.limit = limit ? limit : 20;
	if ((rc = aeth_store_task_list(&list, NULL, aeth__rec_store(r),
				       &f)) != 0)
		return rc;
	a = cJSON_CreateArray();
	for (size_t i = 0; a && list[i]; i++)
		cJSON_AddItemToArray(a, task_object(list[i]));
	aeth_store_task_list_free(list);
	return print_json(a, json_out);
}

int aeth__client_vms_json(aeth__rec *r, char **json_out)
{
	aeth_store_vm **list = NULL;
	size_t count = 0;
	cJSON *a;
	int rc;

	*json_out = NULL;
	if ((rc = aeth_store_vm_list(&list, &count, aeth__rec_store(r),
				     NULL)) != 0)
		return rc;
	a = cJSON_CreateArray();
	/* oldest first, as a table reads top to bottom in creation order */
	for (size_t i = count; a && i-- > 0;)
		cJSON_AddItemToArray(a, vm_object(list[i]));
	aeth_store_vm_list_free(list);
	return print_json(a, json_out);
}
