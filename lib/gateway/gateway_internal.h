/*
 * lib/gateway/gateway_internal.h - the parts of aeth-gateway's API
 * (docs/gateway.md): the server and its connection pool (gateway.c), who
 * is asking and how much they may (auth.c), the streams each tenant runs
 * on all gateways (slots.c), the routes (routes_vms.c, routes_files.c,
 * routes_tasks.c), the waits and live output they stream (stream.c) and
 * the gateway's metrics (metrics.c).
 */
#ifndef AETH_GATEWAY_INTERNAL_H
#define AETH_GATEWAY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "aetherium/queue.h"
#include "aetherium/task.h"
#include "http/http.h"
#include "store/store_internal.h"

/* One Redis + PostgreSQL connection pair (an aeth_client), used by one
 * request or stream at a time. */
typedef struct {
	aeth_client *client;
	bool busy;
} aeth__gw_conn;

/* A tenant's token bucket and cached limits. */
typedef struct {
	char tenant[65];
	double tokens;
	int64_t refill_ms;       /* last refill */
	aeth__tenant_limits lim; /* -1 fields: the gateway's defaults */
	int64_t lim_read_ms;     /* when lim was read (kept 5 s) */
	unsigned int streams;    /* its streams running (tenant_max_streams) */
	int64_t shared_empty_until_ms; /* Redis's bucket is empty till then */
	unsigned int streams_recorded; /* the count Redis has of us (slots.c) */
} aeth__gw_bucket;

/* The token bucket of a client address whose requests were refused 401
 * (gateway.unauthenticated_rps); a fixed table, the stalest replaced. */
typedef struct {
	char addr[64];           /* "127.0.0.1", "2001:db8:1:2::/64", "unix" */
	double tokens;
	int64_t refill_ms;
} aeth__gw_anon;

#define AETH__GW_ANON_MAX 1024

typedef struct aeth_gateway {
	aeth__http_server *srv;
	aeth_config *cfg;
	pthread_mutex_t lock;    /* conns, buckets, streams, shared_down */
	pthread_cond_t freed;
	aeth__gw_conn *conns;    /* nconns for requests, then nstream for waits */
	size_t nconns, nstream;
	aeth__gw_bucket *buckets;
	size_t nbuckets, capbuckets;
	/* the shared limits (auth.c, slots.c): Redis failed, the local
	 * counts decide until shared_down_until_ms (under lock) */
	bool shared_down;
	int64_t shared_down_until_ms;
	/* slots.c: this process's id in the shared stream counts, their
	 * writes one at a time, the keeper thread that renews them */
	char id[17];
	pthread_mutex_t slots_lock;
	pthread_t keeper;
	pthread_mutex_t keeper_mu;
	pthread_cond_t keeper_cv;
	bool keeper_stop, keeper_running;
	/* gateway.* settings */
	int quota_vms, quota_vcpus, quota_memory_mb, quota_rps;
	int default_vcpus, default_memory_mb;
	unsigned int wait_max_s;
	unsigned int max_streams, tenant_max_streams, unauth_rps;
	unsigned int nstreams;   /* streams running or reserved (under lock) */
	aeth__gw_anon *anon;     /* AETH__GW_ANON_MAX of them (under lock), */
	size_t nanon;            /* the first nanon used */
	/* metrics.c: the metrics.listen server, the collector */
	aeth__http_server *metrics_srv;
	bool collecting;
} aeth__gw;

/* Who made the request (auth.c). */
typedef struct {
	char tenant[65];
	char key_prefix[17];
	bool operator_;
} aeth__gw_caller;

/* A request being served: the caller, a pooled connection. */
typedef struct {
	aeth__gw *gw;
	const aeth__http_request *req;
	aeth__http_response *res;
	aeth__gw_caller who;
	aeth__gw_conn *conn;
	bool stream_slot;        /* a stream reserved, not yet handed over */
	double t0;               /* when it came (aeth__gw_clock()) */
} aeth__gw_ctx;

/* Take a connection from the requests' pool (gateway.connections) or,
 * with `stream`, the waits' pool (gateway.stream_connections: waits never
 * starve requests), waiting up to `wait_ms`: NULL (and the message set)
 * when none came free. */
aeth__gw_conn *aeth__gw_conn_get(aeth__gw *gw, bool stream, int64_t wait_ms);
void aeth__gw_conn_put(aeth__gw *gw, aeth__gw_conn *c);
aeth_store *aeth__gw_store(aeth__gw_conn *c);
aeth_queue *aeth__gw_queue(aeth__gw_conn *c);

/*
 * Authenticate (Bearer key), rate-limit and take a connection: 0 and a
 * ready ctx, or an answer was given (401, 429, 503) and nonzero. Every
 * route but /v1/health starts with it; aeth__gw_end() gives the
 * connection back.
 */
int aeth__gw_begin(aeth__gw_ctx *ctx, aeth__gw *gw,
		   const aeth__http_request *req, aeth__http_response *res);
void aeth__gw_end(aeth__gw_ctx *ctx);

/*
 * Reserve one of the caller's streams (gateway.tenant_max_streams) and one
 * of the gateway's (gateway.max_streams) before enqueuing anything that a
 * stream will wait for: 0, or answered (429 / 503 naming the limit) and
 * nonzero. aeth__gw_stream_task() takes the reservation over (or makes
 * one); aeth__gw_end() gives back one that was not used.
 */
int aeth__gw_stream_reserve(aeth__gw_ctx *ctx);
/* A stream of `tenant` ended (or a reservation went unused). */
void aeth__gw_stream_release(aeth__gw *gw, const char *tenant);
/* The keeper of the shared stream counts (slots.c): started with the
 * gateway, stopped after its server (a last write drops its counts). */
int aeth__gw_slots_start(aeth__gw *gw);
void aeth__gw_slots_stop(aeth__gw *gw);

/* The bucket of `tenant` (made on first use; NULL: out of memory); under
 * gw->lock. Buckets are never removed, but the table may move. */
aeth__gw_bucket *aeth__gw_bucket_of(aeth__gw *gw, const char *tenant);
/* What a call to Redis for a shared limit gave (rc < 0: it failed: the
 * local counts decide for a second, said once in the log), and whether
 * to ask Redis now. */
void aeth__gw_shared_answered(aeth__gw *gw, int rc);
bool aeth__gw_shared_usable(aeth__gw *gw);

/* The limits that apply to `tenant` (its row, else the defaults). */
int aeth__gw_limits(aeth__gw *gw, aeth_store *s, const char *tenant,
		    aeth__tenant_limits *out);

/* The tenant a read or write is scoped to: the caller's, or NULL (all)
 * for an operator key; an operator may name one with ?tenant=. */
const char *aeth__gw_scope(const aeth__gw_ctx *ctx);
/* The tenant a new task or VM belongs to: the caller's; an operator key
 * may name an existing one with "tenant" in the body. NULL: answered (a
 * tenant that does not exist: 404). */
const char *aeth__gw_owner(aeth__gw_ctx *ctx, const cJSON *body);

/* The caller's VM `id` (in its scope) into *out, or answered 404 and
 * nonzero (routes_vms.c). */
int aeth__gw_own_vm(aeth__gw_ctx *ctx, const char *id, aeth_store_vm **out);
/* An optional whole-number member of a request body from min to max
 * (absent or null: *out stays); AETH_EINVALID naming the range. */
int aeth__gw_opt_int(const cJSON *o, const char *k, long min, long max,
		     long *out);
/* ?name=N, decimal digits only, from min to max (absent: *out stays), or
 * answered 400 naming the range and nonzero: never a silent default. */
int aeth__gw_query_int(aeth__gw_ctx *ctx, const char *name, long min,
		       long max, long *out);

/* Answer with the library's last error: AETH_E* -> HTTP status and a
 * stable code, the message of aeth_error_last(). */
void aeth__gw_fail(aeth__gw_ctx *ctx, int rc);
/* Answer JSON (takes `j`). */
void aeth__gw_json(aeth__gw_ctx *ctx, int status, cJSON *j);
/* The request body as a JSON object, or an answer (400) and NULL. */
cJSON *aeth__gw_body(aeth__gw_ctx *ctx);
/* The status and code for an AETH_E* value. */
int aeth__gw_status_of(int rc, const char **code);


/* The task / VM rows as API objects. */
cJSON *aeth__gw_task_object(const aeth_store_task *t);
cJSON *aeth__gw_vm_object(const aeth_store_vm *v);

/* Routes (gateway.c's table names each with its method and path): the
 * caller is authenticated, ctx->conn taken; `id` is the path's {id} ("" for
 * paths without one). */
typedef void (*aeth__gw_fn)(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_whoami(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_vms_list(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_vm_create(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_vm_get(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_vm_delete(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_vm_exec(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_vm_file_put(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_vm_file_get(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_tasks_list(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_task_submit(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_task_get(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_task_wait(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_task_output(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_task_cancel(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_workers(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_queues(aeth__gw_ctx *ctx, const char *id);
void aeth__gw_stats_history(aeth__gw_ctx *ctx, const char *id);

/* The dashboard's files (dashboard_assets.c, generated by gen_assets.py
 * from lib/gateway/dashboard/ at build time). */
typedef struct {
	const char *name;         /* "index.html" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const char *etag;         /* quoted, strong */
} aeth__gw_asset;
extern const aeth__gw_asset aeth__gw_assets[];
extern const size_t aeth__gw_assets_count;

/* GET and HEAD of / and /dashboard/...: the dashboard's files, without a
 * key (they hold no data: the page asks /v1 with the key the user gives
 * it). */
void aeth__gw_dashboard(const aeth__http_request *req,
			aeth__http_response *res, void *gw);

/*
 * Stream the end of task `id` (already checked to be the caller's): wait
 * for it (up to timeout_ms) and send its result as one JSON object
 * (`what` "task": the task object; "exec": {task_id, exit_code, stdout,
 * stderr}; "vm": {vm, task}); or, with `format` "sse" / "ndjson", its live
 * output as it comes and the exit status last.
 */
int aeth__gw_stream_task(aeth__gw_ctx *ctx, const char *task_id,
			 const char *what, const char *format,
			 unsigned int timeout_ms);

/*
 * Metrics (metrics.c, docs/metrics.md): the metrics.listen server with
 * GET /metrics and the collector of the connection and stream gauges
 * (start: nothing to do when metrics.listen is unset), and the count and
 * time of one answered request (`route` a template of the route table,
 * or "unmatched"; `t0` from aeth__gw_clock()).
 */
int aeth__gw_metrics_start(aeth__gw *gw);
void aeth__gw_metrics_stop(aeth__gw *gw);
double aeth__gw_clock(void);
void aeth__gw_metrics_request(const char *method, const char *route,
			      const aeth__http_response *res, double t0);
/* An answer made later (aeth__http_respond_later()), counted when it was
 * given: aeth__gw_metrics_request() leaves those out, as their status is
 * not known when the handler returns. */
void aeth__gw_metrics_answered(const char *method, const char *route,
			       int status, double t0);
/* lib/http's aeth__http_config.unrouted: the answers it gave itself
 * (413, 404, 405), counted under the route "unmatched" */
void aeth__gw_metrics_unrouted(const char *method, int status, void *gw);

#endif
