/*
 * lib/client/registry.c - the checks a submitter (the client, or a worker
 * forwarding a task) makes against the queue's worker registry: does a
 * live worker handle this custom task type, is the owner of this VM
 * running.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "client/client_internal.h"
#include "internal.h"

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

	if ((rc = aeth_queue_worker_list(&json, q)) != 0)
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
				"vm:execute, vm:delete, vm:file_put, vm:file_get; "
				"live workers handle: %s)", type,
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

	if (aeth_queue_worker_get(&json, q, owner) != 0)
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
