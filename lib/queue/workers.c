/*
 * lib/queue/workers.c - the worker registry of a namespace: the hash
 * "<ns>:workers", field = worker id, value = a JSON object describing the
 * worker plus "last_seen_ms" (the Redis server's clock, so that workers
 * and readers on different hosts agree) and "interval_ms" (how often the
 * worker promised to refresh it). An entry not refreshed for
 * AETH__REG_DEAD_INTERVALS intervals is dead; a graceful stop leaves the
 * entry with "stopped_ms" (so a reader can tell "stopped" from "never
 * registered here", e.g. after Redis lost its data). Stopped and dead
 * entries are pruned after a day, when a worker registers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "queue_internal.h"

#define AETH__REG_DEAD_INTERVALS 3
#define AETH__REG_ENTRY_MAX 65536      /* bytes of one entry */
#define AETH__REG_ID_MAX 256
#define AETH__REG_LIST_MAX 100000      /* entries read by one list */
#define AETH__REG_PRUNE_MS (24LL * 3600 * 1000)

static void reg_key(const aeth_queue *q, char *buf, size_t n)
{
	snprintf(buf, n, "%s:workers", q->ns);
}

static int check_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > AETH__REG_ID_MAX)
		return aeth__error_set(AETH_EINVALID, "worker id '%.40s' is not valid: "
				       "1 to %d characters", id ? id : "(null)",
				       AETH__REG_ID_MAX);
	return 0;
}

/* TIME's reply -> ms. */
static int reply_ms(aeth_queue *q, const redisReply *r, int64_t *ms)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING)
		return aeth__q_bad_reply(q, "TIME", r);
	*ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
	return 0;
}

static int server_ms(aeth_queue *q, int64_t *ms)
{
	const char *argv[1] = {"TIME"};
	redisReply *r;
	int rc;

	if ((rc = aeth__q_command(q, 1, argv, NULL, 0, &r)))
		return rc;
	rc = reply_ms(q, r, ms);
	freeReplyObject(r);
	return rc;
}

static int64_t num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static int hset(aeth_queue *q, const char *id, cJSON *e)
{
	char key[AETH__Q_KEY_MAX], *text = cJSON_PrintUnformatted(e);
	const char *argv[4] = {"HSET", key, id, text};
	redisReply *r;
	int rc;

	if (!text)
		return aeth__error_oom();
	reg_key(q, key, sizeof(key));
	rc = aeth__q_command(q, 4, argv, NULL, 0, &r);
	free(text);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_INTEGER)
		rc = aeth__q_bad_reply(q, "HSET workers", r);
	freeReplyObject(r);
	return rc;
}

/* A stored entry (a string of at most AETH__REG_ENTRY_MAX bytes), parsed;
 * NULL when it is not one. */
static cJSON *parse_entry(const redisReply *v)
{
	return v->type == REDIS_REPLY_STRING && v->len <= AETH__REG_ENTRY_MAX ?
		cJSON_ParseWithLength(v->str, v->len) : NULL;
}

/* TIME and HGETALL (or HGET of `id`) in one round trip. */
static int fetch(aeth_queue *q, const char *id, int64_t *now, redisReply **out)
{
	char key[AETH__Q_KEY_MAX];
	const char *t[1] = {"TIME"}, *h[3] = {id ? "HGET" : "HGETALL", key, id};
	aeth__q_cmd cmds[2] = {{-1, 0, 1, t, NULL}, {-1, 0, id ? 3 : 2, h, NULL}};
	redisReply *rs[2];
	int rc;

	reg_key(q, key, sizeof(key));
	if ((rc = aeth__q_run(q, 2, cmds, rs)))
		return rc;
	rc = reply_ms(q, rs[0], now);
	freeReplyObject(rs[0]);
	if (rc == 0 && rs[1]->type != (id ? REDIS_REPLY_STRING : REDIS_REPLY_ARRAY) &&
	    !(id && rs[1]->type == REDIS_REPLY_NIL))
		rc = aeth__q_bad_reply(q, id ? "HGET workers" : "HGETALL workers", rs[1]);
	if (rc) {
		freeReplyObject(rs[1]);
		return rc;
	}
	*out = rs[1];
	return 0;
}

/* Remove the entries last seen more than a day ago (stopped or dead
 * workers; one heartbeating less often than that would be removed too). */
static void prune(aeth_queue *q, int64_t now)
{
	char key[AETH__Q_KEY_MAX];
	const char *argv[2] = {"HGETALL", key};
	redisReply *r;

	reg_key(q, key, sizeof(key));
	if (aeth__q_command(q, 2, argv, NULL, 0, &r))
		return;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements &&
	     i < 2 * AETH__REG_LIST_MAX; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		cJSON *e;
		int64_t seen;

		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		e = parse_entry(v);
		seen = num(e, "last_seen_ms");
		if (!e || now - seen > AETH__REG_PRUNE_MS) {
			const char *del[3] = {"HDEL", key, f->str};
			redisReply *d;

			if (aeth__q_command(q, 3, del, NULL, 0, &d) == 0)
				freeReplyObject(d);
		}
		cJSON_Delete(e);
	}
	freeReplyObject(r);
}

int aeth_queue_worker_register(aeth_queue *q, const char *id,
			       const char *info_json, unsigned int interval_ms)
{
	cJSON *e;
	int64_t now;
	int rc;

	if (!q || (rc = check_id(id)))
		return q ? rc : aeth__error_set(AETH_EINVALID, "queue is NULL");
	if (interval_ms == 0)
		return aeth__error_set(AETH_EINVALID, "worker %s: interval_ms is 0", id);
	if (info_json && strlen(info_json) > AETH__REG_ENTRY_MAX - 512)
		return aeth__error_set(AETH_ETOOBIG, "worker %s: info is more than "
				       "%d bytes", id, AETH__REG_ENTRY_MAX - 512);
	e = cJSON_Parse(info_json ? info_json : "{}");
	if (!cJSON_IsObject(e)) {
		cJSON_Delete(e);
		return aeth__error_set(AETH_EINVALID, "worker %s: info is not a JSON "
				       "object", id);
	}
	if ((rc = server_ms(q, &now))) {
		cJSON_Delete(e);
		return rc;
	}
	/* the fields the registry owns replace any of the same name */
	cJSON_DeleteItemFromObjectCaseSensitive(e, "id");
	cJSON_DeleteItemFromObjectCaseSensitive(e, "interval_ms");
	cJSON_DeleteItemFromObjectCaseSensitive(e, "last_seen_ms");
	cJSON_DeleteItemFromObjectCaseSensitive(e, "stopped_ms");
	cJSON_AddStringToObject(e, "id", id);
	cJSON_AddNumberToObject(e, "interval_ms", interval_ms);
	cJSON_AddNumberToObject(e, "last_seen_ms", (double)now);
	rc = hset(q, id, e);
	cJSON_Delete(e);
	if (rc == 0 && aeth__q_rand(q) % 64 == 0) /* now and then */
		prune(q, now);
	return rc;
}

int aeth_queue_worker_unregister(aeth_queue *q, const char *id)
{
	redisReply *r;
	cJSON *e;
	int64_t now;
	int rc;

	if (!q || (rc = check_id(id)))
		return q ? rc : aeth__error_set(AETH_EINVALID, "queue is NULL");
	if ((rc = fetch(q, id, &now, &r)))
		return rc;
	e = parse_entry(r);
	freeReplyObject(r);
	if (!e)
		return 0;
	cJSON_DeleteItemFromObjectCaseSensitive(e, "stopped_ms");
	cJSON_AddNumberToObject(e, "stopped_ms", (double)now);
	rc = cJSON_IsObject(e) ? hset(q, id, e) : 0;
	cJSON_Delete(e);
	return rc;
}

/* "2026-11-26T18:57:00.123Z" */
static void iso_utc(int64_t ms, char out[64])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ms % 1000));
}

/* The entry as readers see it: plus last_seen, age_ms, state, alive. */
static void view(cJSON *e, int64_t now)
{
	int64_t seen = num(e, "last_seen_ms"), iv = num(e, "interval_ms");
	int64_t stopped = num(e, "stopped_ms"), age = now - seen;
	const char *state = stopped >= 0 ? "stopped" :
		seen < 0 || iv <= 0 || age > AETH__REG_DEAD_INTERVALS * iv ?
		"dead" : "alive";
	char when[64];

	iso_utc(seen < 0 ? 0 : seen, when);
	cJSON_AddStringToObject(e, "last_seen", when);
	cJSON_AddNumberToObject(e, "age_ms", (double)(age < 0 ? 0 : age));
	cJSON_AddStringToObject(e, "state", state);
	cJSON_AddBoolToObject(e, "alive", !strcmp(state, "alive"));
}

static int cmp_id(const void *a, const void *b)
{
	const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
	const cJSON *ix = cJSON_GetObjectItemCaseSensitive(x, "id");
	const cJSON *iy = cJSON_GetObjectItemCaseSensitive(y, "id");

	return strcmp(cJSON_IsString(ix) ? ix->valuestring : "",
		      cJSON_IsString(iy) ? iy->valuestring : "");
}

static int print_out(cJSON *j, char **json_out)
{
	*json_out = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return *json_out ? 0 : aeth__error_oom();
}

int aeth_queue_worker_list(char **json_out, aeth_queue *q)
{
	redisReply *r;
	cJSON **es = NULL, *arr;
	size_t n = 0;
	int64_t now;
	int rc;

	*json_out = NULL;
	if ((rc = fetch(q, NULL, &now, &r)))
		return rc;
	if (r->elements / 2 > AETH__REG_LIST_MAX) {
		freeReplyObject(r);
		return aeth__error_set(AETH_ETOOBIG, "redis at %s: more than %d "
				       "workers registered", q->url.display,
				       AETH__REG_LIST_MAX);
	}
	if (r->elements && !(es = calloc(r->elements / 2 + 1, sizeof(*es)))) {
		freeReplyObject(r);
		return aeth__error_oom();
	}
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *v = r->element[i + 1];
		cJSON *e = parse_entry(v);

		if (!cJSON_IsObject(e)) { /* not ours: skip it */
			cJSON_Delete(e);
			continue;
		}
		view(e, now);
		es[n++] = e;
	}
	freeReplyObject(r);
	if (n > 1)
		qsort(es, n, sizeof(*es), cmp_id);
	if (!(arr = cJSON_CreateArray())) {
		for (size_t i = 0; i < n; i++)
			cJSON_Delete(es[i]);
		free(es);
		return aeth__error_oom();
	}
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, es[i]);
	free(es);
	return print_out(arr, json_out);
}

int aeth_queue_worker_get(char **json_out, aeth_queue *q, const char *id)
{
	redisReply *r;
	cJSON *e = NULL;
	int64_t now;
	int rc;

	*json_out = NULL;
	if ((rc = check_id(id)) || (rc = fetch(q, id, &now, &r)))
		return rc;
	e = parse_entry(r);
	freeReplyObject(r);
	if (!cJSON_IsObject(e)) {
		cJSON_Delete(e);
		return aeth__error_set(AETH_ENOTFOUND, "worker %s is not in the "
				       "registry of redis at %s", id, q->url.display);
	}
	view(e, now);
	return print_out(e, json_out);
}
