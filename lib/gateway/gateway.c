/*
 * lib/gateway/gateway.c - aeth-gateway's server: the gateway.* settings,
 * the route table over lib/http, a pool of client connections, and the
 * JSON answers every route shares (docs/gateway.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "aetherium/unstable/gateway.h"
#include "client/client_internal.h"
#include "gateway/gateway_internal.h"
#include "internal.h"

/* ---- the pool ----------------------------------------------------------- */

aeth__gw_conn *aeth__gw_conn_get(aeth__gw *gw, bool stream, int64_t wait_ms)
{
	int64_t deadline = aeth__now_ms() + wait_ms;
	size_t first = stream ? gw->nconns : 0;
	size_t end = stream ? gw->nconns + gw->nstream : gw->nconns;
	aeth__gw_conn *got = NULL;

	pthread_mutex_lock(&gw->lock);
	for (;;) {
		for (size_t i = first; i < end && !got; i++)
			if (!gw->conns[i].busy)
				got = &gw->conns[i];
		if (got || aeth__now_ms() >= deadline)
			break;
		{
			struct timespec ts;

			aeth__timespec_in(&ts, 50);
			pthread_cond_timedwait(&gw->freed, &gw->lock, &ts);
		}
	}
	if (got)
		got->busy = true;
	pthread_mutex_unlock(&gw->lock);
	if (!got)
		aeth__error_set(AETH_EBUSY, "all %zu of the gateway's connections to "
				"Redis and PostgreSQL are in use (%s): try again",
				end - first, stream ? "gateway.stream_connections"
				: "gateway.connections");
	return got;
}

void aeth__gw_conn_put(aeth__gw *gw, aeth__gw_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&gw->lock);
	c->busy = false;
	pthread_cond_broadcast(&gw->freed); /* two pools wait on it */
	pthread_mutex_unlock(&gw->lock);
}

aeth_store *aeth__gw_store(aeth__gw_conn *c)
{
	return aeth__client_store(c->client);
}

aeth_queue *aeth__gw_queue(aeth__gw_conn *c)
{
	return aeth__client_queue(c->client);
}

/* ---- answers ------------------------------------------------------------ */

int aeth__gw_status_of(int rc, const char **code)
{
	switch (rc) {
	case AETH_EINVALID: *code = "invalid_argument"; return 400;
	case AETH_ENOTFOUND: *code = "not_found"; return 404;
	case AETH_ESTATE: *code = "conflict"; return 409;
	case AETH_EEXISTS: *code = "already_exists"; return 409;
	case AETH_ETOOBIG: *code = "too_large"; return 413;
	case AETH_EBUSY: *code = "busy"; return 503;
	case AETH_ETIMEOUT: *code = "timeout"; return 504;
	case AETH_EUNAVAILABLE: *code = "unavailable"; return 503;
	case AETH_ECANCELLED: *code = "cancelled"; return 409;
	default: *code = "internal"; return 500;
	}
}

void aeth__gw_fail(aeth__gw_ctx *ctx, int rc)
{
	const char *code;
	int status = aeth__gw_status_of(rc, &code);

	aeth__http_respond_error(ctx->res, status, code, "%s", aeth_error_last());
}

void aeth__gw_json(aeth__gw_ctx *ctx, int status, cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;

	cJSON_Delete(j);
	if (!s) {
		aeth__http_respond_error(ctx->res, 500, "internal", "out of memory");
		return;
	}
	aeth__http_respond_take(ctx->res, status, "application/json", s, strlen(s));
}

/* Does JSON text hold the escape \u0000 (a NUL in a string)? cJSON ends
 * the C string there: {"command": "rm\u0000 -rf /x"} would run "rm".
 * Backslashes only occur in strings, and each one escapes the next
 * character ("\\u0000" is text), so one pass finds it. */
static bool json_has_nul(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\')
			continue;
		if (len - i >= 6 && !memcmp(s + i + 1, "u0000", 5))
			return true;
		i++;
	}
	return false;
}

cJSON *aeth__gw_body(aeth__gw_ctx *ctx)
{
	cJSON *j;

	if (ctx->req->body_len == 0)
		return cJSON_CreateObject();
	j = cJSON_ParseWithLength(ctx->req->body, ctx->req->body_len);
	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		aeth__http_respond_error(ctx->res, 400, "invalid_json", "the request "
					 "body is not a JSON object (%zu bytes)",
					 ctx->req->body_len);
		return NULL;
	}
	if (json_has_nul(ctx->req->body, ctx->req->body_len)) {
		cJSON_Delete(j);
		aeth__http_respond_error(ctx->res, 400, "invalid_json", "a string "
					 "of the request body holds \\u0000: no "
					 "command, argument, path or name can hold a "
					 "NUL character");
		return NULL;
	}
	return j;
}

/* ---- the routes ---------------------------------------------------------- */

/*
 * Every route of the API, one per line: docs/openapi.yaml describes each
 * and tests/gateway/test_openapi.py checks that the two lists are the
 * same and that each route answers as described. {id} is one path
 * segment (a UUID for the routes to answer anything but 404).
 */
typedef struct {
	const char *method;
	const char *path;
	aeth__gw_fn fn;
} gw_route;

static const gw_route gw_routes[] = {
	{"GET", "/v1/whoami", aeth__gw_whoami},
	{"GET", "/v1/vms", aeth__gw_vms_list},
	{"POST", "/v1/vms", aeth__gw_vm_create},
	{"GET", "/v1/vms/{id}", aeth__gw_vm_get},
	{"DELETE", "/v1/vms/{id}", aeth__gw_vm_delete},
	{"POST", "/v1/vms/{id}/exec", aeth__gw_vm_exec},
	{"PUT", "/v1/vms/{id}/files", aeth__gw_vm_file_put},
	{"GET", "/v1/vms/{id}/files", aeth__gw_vm_file_get},
	{"GET", "/v1/tasks", aeth__gw_tasks_list},
	{"POST", "/v1/tasks", aeth__gw_task_submit},
	{"GET", "/v1/tasks/{id}", aeth__gw_task_get},
	{"GET", "/v1/tasks/{id}/wait", aeth__gw_task_wait},
	{"GET", "/v1/tasks/{id}/output", aeth__gw_task_output},
	{"POST", "/v1/tasks/{id}/cancel", aeth__gw_task_cancel},
	{"GET", "/v1/workers", aeth__gw_workers},
	{"GET", "/v1/queues", aeth__gw_queues},
	{"GET", "/v1/stats/history", aeth__gw_stats_history},
	/* GET /v1/health is lib/http's own route (health() below) */
};

/* Does `path` fit `tmpl`? Its {id} segment into id[64]. */
static bool route_match(const char *tmpl, const char *path, char id[64])
{
	while (*tmpl && *path) {
		if (!strncmp(tmpl, "{id}", 4)) {
			size_t n = strcspn(path, "/");

			if (n == 0 || n >= 64)
				return false;
			memcpy(id, path, n);
			id[n] = 0;
			tmpl += 4;
			path += n;
			continue;
		}
		if (*tmpl++ != *path++)
			return false;
	}
	return !*tmpl && !*path;
}

static void dispatch(const aeth__http_request *req, aeth__http_response *res,
		     void *gw)
{
	char id[64] = "", allow[64] = "";
	const gw_route *r = NULL;
	double t0 = aeth__gw_clock();
	aeth__gw_ctx ctx;

	for (size_t i = 0; i < AETH__ARRAY_LEN(gw_routes); i++) {
		char any[64];

		if (!route_match(gw_routes[i].path, req->path, any))
			continue;
		if (!strcmp(gw_routes[i].method, req->method)) {
			r = &gw_routes[i];
			memcpy(id, any, sizeof(id));
			break;
		}
		if (strlen(allow) + strlen(gw_routes[i].method) + 3 < sizeof(allow))
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
				 "%s%s", allow[0] ? ", " : "", gw_routes[i].method);
	}
	if (!r && allow[0]) {
		aeth__http_respond_header(res, "Allow", allow);
		aeth__http_respond_error(res, 405, "method_not_allowed", "%s is not "
					 "allowed on %s (allowed: %s)", req->method,
					 req->path, allow);
	} else if (!r) {
		aeth__http_respond_error(res, 404, "not_found", "no route %s %s "
					 "(docs/openapi.yaml lists them)", req->method,
					 req->path);
	} else if (aeth__gw_begin(&ctx, gw, req, res) == 0) {
		ctx.t0 = t0;
		r->fn(&ctx, id);
		aeth__gw_end(&ctx);
	}
	/* the template, never the path: ids would make a series each */
	aeth__gw_metrics_request(req->method, r ? r->path : "unmatched", res, t0);
}

const char *aeth__gw_scope(const aeth__gw_ctx *ctx)
{
	const char *t;

	if (!ctx->who.operator_)
		return ctx->who.tenant;
	t = aeth__http_query_arg(ctx->req, "tenant");
	/* a name no tenant can have (bytes that are not UTF-8 would reach
	 * PostgreSQL and come back as its error): the answer is the one for
	 * a tenant that does not exist; "-" is such a name */
	if (t && *t && !aeth__tenant_name_valid(t))
		return "-";
	return t && *t ? t : NULL;
}

int aeth__gw_query_int(aeth__gw_ctx *ctx, const char *name, long min,
		       long max, long *out)
{
	const char *v = aeth__http_query_arg(ctx->req, name);
	char *end = NULL;
	long n = -1;

	if (!v)
		return 0;
	errno = 0;
	if (*v >= '0' && *v <= '9')
		n = strtol(v, &end, 10);
	if (errno || !end || *end || n < min || n > max) {
		aeth__http_respond_error(ctx->res, 400, "invalid_argument", "%s "
					 "\"%.32s\" is not a whole number from %ld to "
					 "%ld", name, v, min, max);
		return -1;
	}
	*out = n;
	return 0;
}

const char *aeth__gw_owner(aeth__gw_ctx *ctx, const cJSON *body)
{
	const cJSON *t = body ? cJSON_GetObjectItemCaseSensitive(body, "tenant")
			      : NULL;
	aeth__tenant_limits lim;
	int rc;

	if (!ctx->who.operator_ || !cJSON_IsString(t) || !t->valuestring[0])
		return ctx->who.tenant;
	/* an operator names the owner: it must exist (keys create makes it) */
	rc = aeth__store_tenant_limits(aeth__gw_store(ctx->conn), t->valuestring,
				       &lim);
	if (rc == AETH_ENOTFOUND)
		aeth__error_set(rc, "tenant \"%.64s\" does not exist (aeth-gateway "
				"keys create -tenant NAME makes it)", t->valuestring);
	if (rc != 0) {
		aeth__gw_fail(ctx, rc);
		return NULL;
	}
	return t->valuestring;
}

cJSON *aeth__gw_task_object(const aeth_store_task *t)
{
	cJSON *o = aeth__client_task_object(t);

	if (o)
		cJSON_AddStringToObject(o, "tenant", t->tenant ? t->tenant : "default");
	return o;
}

cJSON *aeth__gw_vm_object(const aeth_store_vm *v)
{
	cJSON *o = aeth__client_vm_object(v);

	if (o)
		cJSON_AddStringToObject(o, "tenant", v->tenant ? v->tenant : "default");
	return o;
}

/* ---- routes without a key ----------------------------------------------- */

/* The cheapest answer the server gives: no key, no database. Also the
 * reference of bench/gateway (a static response of the same server). */
static void health(const aeth__http_request *req, aeth__http_response *res,
		   void *gw)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	double t0 = aeth__gw_clock();

	(void)gw;
	aeth__http_respond(res, 200, "application/json", ok, sizeof(ok) - 1);
	aeth__gw_metrics_request(req->method, "/v1/health", res, t0);
}

/* ---- start and stop ----------------------------------------------------- */

static int cfg_int(const aeth_config *cfg, const char *key)
{
	int64_t v = 0;

	aeth_config_get_int(&v, cfg, key);
	return (int)v;
}

static const char *cfg_str(const aeth_config *cfg, const char *key)
{
	const char *v = NULL;

	if (aeth_config_get_string(&v, cfg, key) != 0 || !v || !*v)
		return NULL;
	return v;
}

static int open_pool(aeth__gw *gw)
{
	aeth_client_options co = AETH_CLIENT_OPTIONS_INIT;
	int rc;

	gw->nconns = (size_t)cfg_int(gw->cfg, "gateway.connections");
	gw->nstream = (size_t)cfg_int(gw->cfg, "gateway.stream_connections");
	if (!(gw->conns = calloc(gw->nconns + gw->nstream, sizeof(*gw->conns))))
		return aeth__error_oom();
	co.database_url = cfg_str(gw->cfg, "database.url");
	co.redis_url = cfg_str(gw->cfg, "redis.url");
	for (size_t i = 0; i < gw->nconns + gw->nstream; i++)
		if ((rc = aeth_client_open(&gw->conns[i].client, &co)) != 0)
			return rc;
	return aeth_store_migrate(aeth__gw_store(&gw->conns[0]));
}

void aeth_gateway_free(aeth_gateway *gw)
{
	aeth__error_saved err;

	if (!gw)
		return;
	/* the last write of the stream counts talks to Redis: whatever it
	 * meets, the caller's error (why a start failed) stays */
	aeth__error_save(&err);
	aeth__gw_metrics_stop(gw);
	aeth__http_server_free(gw->srv);
	aeth__gw_slots_stop(gw);
	for (size_t i = 0; gw->conns && i < gw->nconns + gw->nstream; i++)
		aeth_client_free(gw->conns[i].client);
	free(gw->conns);
	free(gw->buckets);
	free(gw->anon);
	aeth_config_free(gw->cfg);
	pthread_mutex_destroy(&gw->lock);
	pthread_cond_destroy(&gw->freed);
	free(gw);
	aeth__error_restore(&err);
}

int aeth_gateway_start(aeth_gateway **out, const aeth_config *cfg)
{
	aeth__http_config hc = {0};
	aeth__gw *gw;
	int rc;

	if (!out || !cfg)
		return aeth__error_set(AETH_EINVALID, "aeth_gateway_start: NULL argument");
	*out = NULL;
	if (!(gw = calloc(1, sizeof(*gw))))
		return aeth__error_oom();
	pthread_mutex_init(&gw->lock, NULL);
	pthread_cond_init(&gw->freed, NULL);
	if ((rc = aeth_config_dup(&gw->cfg, cfg)) != 0) {
		free(gw);
		return rc;
	}
	gw->quota_vms = cfg_int(cfg, "gateway.quota_vms");
	gw->quota_vcpus = cfg_int(cfg, "gateway.quota_vcpus");
	gw->quota_memory_mb = cfg_int(cfg, "gateway.quota_memory_mb");
	gw->quota_rps = cfg_int(cfg, "gateway.quota_rps");
	gw->default_vcpus = cfg_int(cfg, "vmm.vcpus");
	gw->default_memory_mb = cfg_int(cfg, "vmm.memory_mb");
	gw->wait_max_s = (unsigned int)cfg_int(cfg, "gateway.wait_max_s");
	gw->max_streams = (unsigned int)cfg_int(cfg, "gateway.max_streams");
	gw->tenant_max_streams = (unsigned int)cfg_int(cfg,
						       "gateway.tenant_max_streams");
	gw->unauth_rps = (unsigned int)cfg_int(cfg, "gateway.unauthenticated_rps");
	if (!(gw->anon = calloc(AETH__GW_ANON_MAX, sizeof(*gw->anon))))
		rc = aeth__error_oom();
	else
		rc = open_pool(gw);
	if (rc != 0) {
		aeth_gateway_free(gw);
		return rc;
	}
	const aeth__http_route routes[] = {
		{"GET", "/v1/health", health, gw},
		/* everything else: the table above */
		{"GET", "/v1/", dispatch, gw},
		{"POST", "/v1/", dispatch, gw},
		{"DELETE", "/v1/", dispatch, gw},
		{"PUT", "/v1/", dispatch, gw},
		{"PATCH", "/v1/", dispatch, gw},
		/* the dashboard's files (dashboard.c): / and /dashboard/ */
		{"GET", "/", aeth__gw_dashboard, gw},
		{"HEAD", "/", aeth__gw_dashboard, gw},
	};
	hc.listen = cfg_str(cfg, "gateway.listen");
	{
		bool allow = false;

		aeth_config_get_bool(&allow, cfg, "gateway.allow_remote");
		hc.allow_remote = allow;
	}
	hc.tls_cert_file = cfg_str(cfg, "gateway.tls_cert");
	hc.tls_key_file = cfg_str(cfg, "gateway.tls_key");
	hc.max_body_bytes = (size_t)cfg_int(cfg, "gateway.max_body_bytes");
	hc.timeout_s = (unsigned int)cfg_int(cfg, "gateway.timeout_s");
	hc.max_conns = (unsigned int)cfg_int(cfg, "gateway.max_conns");
	hc.max_streams = (unsigned int)cfg_int(cfg, "gateway.max_streams");
	hc.threads = (unsigned int)cfg_int(cfg, "gateway.threads");
	hc.routes = routes;
	hc.n_routes = AETH__ARRAY_LEN(routes);
	hc.what = "gateway (gateway.listen)";
	hc.unrouted = aeth__gw_metrics_unrouted;
	hc.unrouted_userdata = gw;
	if ((rc = aeth__gw_slots_start(gw)) != 0 ||
	    (rc = aeth__http_server_start(&gw->srv, &hc)) != 0 ||
	    (rc = aeth__gw_metrics_start(gw)) != 0) {
		aeth_gateway_free(gw);
		return rc;
	}
	*out = gw;
	return 0;
}

int aeth_gateway_port(const aeth_gateway *gw)
{
	return gw ? aeth__http_server_port(gw->srv) : 0;
}

int aeth_gateway_metrics_port(const aeth_gateway *gw)
{
	return gw ? aeth__http_server_port(gw->metrics_srv) : 0;
}
