/*
 * lib/store/store_internal.h - what other modules of the library use of
 * the store: the rows the worker and the submit client write in
 * PostgreSQL (tasks, vms, executions), over one store connection, named
 * for "what is recorded when" (lib/store/record.c), and where the store
 * connects. One aeth__rec per thread (not thread-safe). The store's own
 * plumbing (libpq, tables, checks) is lib/store/sql.h, private to it.
 */
#ifndef AETH_STORE_INTERNAL_H
#define AETH_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aetherium/store.h"

/* The connection string aeth_store_open(url) uses: url, else
 * $AETH_DATABASE_URL, else the default (borrowed; never NULL). */
const char *aeth__store_url_resolve(const char *url);

/*
 * Where and how the connection string `url` (resolved as above) connects,
 * by libpq's parser, for other modules' checks of the store's endpoint
 * (aeth-worker -check, the start-up warnings): host, hostaddr, port and
 * sslmode with libpq's environment fallback (PGHOST, PGHOSTADDR, PGPORT,
 * PGSSLMODE), password only as the URL gives it. Each a malloc'd string or
 * NULL when unset; aeth__store_conninfo_clear() frees them. 0, or
 * AETH_EINVALID when the URL does not parse.
 */
typedef struct {
	char *host;     /* a list, as libpq takes it: "a,b" */
	char *hostaddr;
	char *port;
	char *sslmode;
	char *password;
} aeth__store_conninfo;
int aeth__store_conninfo_read(aeth__store_conninfo *out, const char *url);
void aeth__store_conninfo_clear(aeth__store_conninfo *c);

typedef struct aeth__rec aeth__rec;

int aeth__rec_open(aeth__rec **out, const char *database_url);
void aeth__rec_free(aeth__rec *r);
/* The store connection underneath (borrowed), for lib/store's own calls. */
struct aeth_store *aeth__rec_store(aeth__rec *r);
int aeth__rec_migrate(aeth__rec *r);
/* The highest applied migration (0: not migrated). */
int aeth__rec_schema_version(aeth__rec *r, int *version);
/* How many migrations this library has (the schema version it wants). */
size_t aeth__rec_schema_known(void);

/* A task row as the submitter writes it. vm_id may be NULL. status is
 * "pending", or "failed" (with error) for a task rejected at submit. A
 * payload that is not JSON is recorded as a JSON string, unless
 * payload_is_json says the caller checked it already. */
typedef struct {
	const char *id;
	const char *type;
	const char *payload;
	bool payload_is_json;
	const char *queue;
	const char *vm_id;
	const char *status;
	const char *error;
	int priority;
	unsigned int max_retries;
	unsigned int timeout_ms;
	const char *tenant;    /* NULL: "default" */
} aeth__task_row;

int aeth__rec_task_insert(aeth__rec *r, const aeth__task_row *t);
/* running: worker_id, retry_count, started_at = now. Inserts the row
 * first when the task was enqueued without one. */
int aeth__rec_task_running(aeth__rec *r, const aeth__task_row *t,
			   const char *worker_id, unsigned int retry_count);
/* The same two writes for n tasks in one statement each (several short
 * tasks a slot took at once). recorded[i] says whether task i's row was
 * updated; a task without a row (enqueued without one) is left to the
 * one-task calls above. Returns 0 or the statement's error (then nothing
 * was recorded). */
int aeth__rec_tasks_running(aeth__rec *r, const char *const *ids,
			    const unsigned int *retry_counts, size_t n,
			    const char *worker_id, bool *recorded);
/* completed for n tasks. A task whose running row was never written (a
 * deferred start, see slot.c) has started_ms[i] > 0 (wall ms): its
 * started_at, worker_id and retry_count are written with the result;
 * started_ms may be NULL (every task recorded running before). */
int aeth__rec_tasks_completed(aeth__rec *r, const char *const *ids,
			      const char *const *results,
			      const int64_t *started_ms,
			      const unsigned int *retry_counts,
			      const char *worker_id, size_t n, bool *recorded);
/* back to pending (forwarded to the owner's queue) */
int aeth__rec_task_pending(aeth__rec *r, const char *id);
/* the queue the task is on now (forwarded to worker:<owner>) */
int aeth__rec_task_queue(aeth__rec *r, const char *id, const char *queue);
/* the VM the task is about (a vm:create: the VM it made) */
int aeth__rec_task_vm(aeth__rec *r, const char *id, const char *vm_id);
/* completed (result) | failed | retrying | dead (error); completed_at.
 * (retry_count was written when the attempt started.) */
int aeth__rec_task_finish(aeth__rec *r, const char *id, const char *status,
			  const char *result_json, const char *error);

typedef struct {
	const char *id;
	const char *name;
	const char *orchestrator;
	unsigned int vcpus;
	unsigned int memory_mb;
	const char *kernel_path;
	const char *rootfs_path;
	const char *socket_path;
	const char *owner_worker;
	const char *metadata;  /* JSON object text or NULL */
	const char *tenant;    /* NULL: "default" */
} aeth__vm_row;

/* status "creating", owner_worker, created_at. */
int aeth__rec_vm_insert(aeth__rec *r, const aeth__vm_row *vm);
/* running (started_at, paths) | stopped | failed (error) | deleted (stopped_at) */
int aeth__rec_vm_status(aeth__rec *r, const char *id, const char *status,
			const char *error);
int aeth__rec_vm_paths(aeth__rec *r, const aeth__vm_row *vm);

/* The VM's status and owner; AETH_ENOTFOUND when there is no such row. */
int aeth__rec_vm_lookup(aeth__rec *r, const char *id, char status[32],
			char owner[256]);
/* The same and the VM's tenant (tenant may be NULL). */
int aeth__rec_vm_lookup_tenant(aeth__rec *r, const char *id, char status[32],
			       char owner[256], char tenant[65]);
/* The tenant of task `id`: AETH_ENOTFOUND when it has no row (a task put
 * in Redis by a program that recorded none). */
int aeth__rec_task_tenant(aeth__rec *r, const char *id, char tenant[65]);
/* Give VM `id` to `to` if `from` still owns it: 0, or AETH_EBUSY. */
int aeth__rec_vm_take(aeth__rec *r, const char *id, const char *from,
		      const char *to);
/* Mark VM `id` failed (error) if `owner` still owns it and it is
 * creating or running: 0, or AETH_EBUSY. */
int aeth__rec_vm_fail_owned(aeth__rec *r, const char *id, const char *owner,
			    const char *error);

/* VMs in status creating or running that another worker than `me` owns
 * and whose metadata puts them on host `host` in state dir `state_dir`
 * (in any state dir when state_dir is NULL):
 * their ids and owners, NULL-terminated, parallel (the caller frees both
 * with aeth_strarray_free()). */
int aeth__rec_vms_on_host(aeth__rec *r, const char *me, const char *host,
			  const char *state_dir, char ***ids_out,
			  char ***owners_out);

/* Ids of the VMs `owner` has in status creating or running. */
int aeth__rec_vms_owned(aeth__rec *r, const char *owner, char ***ids_out);

typedef struct {
	const char *vm_id;
	const char *task_id;
	const char *command;
	const char *args_json;
	const char *env_json;
	int exit_code;
	const char *out;
	const char *err;
	const char *error;
	int64_t started_ms;   /* wall clock */
	int64_t completed_ms;
	int64_t duration_ms;
	const char *tenant;    /* NULL: "default" */
	/* migration 0008 */
	bool out_truncated, err_truncated, timed_out;
	int signal;              /* 0: NULL */
	const char *out_b64;     /* NULL unless the output is not UTF-8 */
	const char *err_b64;
	const char *idempotency_key; /* NULL: none */
	const char *result_json; /* the task result it gave, or NULL */
} aeth__exec_row;

/* AETH_EEXISTS (with the message) when an execution with the same
 * idempotency key for the same VM was recorded first. */
int aeth__rec_exec_insert(aeth__rec *r, const aeth__exec_row *e);
/* The result an execution with idempotency key `key` in VM `vm_id` gave
 * (*result_out malloc'd; NULL when it recorded none), or AETH_ENOTFOUND. */
int aeth__rec_exec_by_key(aeth__rec *r, const char *vm_id, const char *key,
			  char **result_out);

/* ---- Tenants (migration 0007, lib/store/tenants.c; docs/gateway.md) ---- */

/* Get a row only when it belongs to `tenant` (NULL: any): another
 * tenant's row is AETH_ENOTFOUND, as an id that does not exist. */
int aeth__store_vm_get_in(aeth_store_vm **out, struct aeth_store *s,
			  const char *id, const char *tenant);
int aeth__store_task_get_in(aeth_store_task **out, struct aeth_store *s,
			    const char *id, const char *tenant);
int aeth__store_execution_get_in(aeth_store_execution **out,
				 struct aeth_store *s, const char *id,
				 const char *tenant);

/* Whether `id` is a valid tenant name: 1-64 of a-z 0-9 _ . - (first a
 * letter or digit), the rule of the tenants table. */
bool aeth__tenant_name_valid(const char *id);

/* An API key's row; the key itself is never stored, only its SHA-256. */
typedef struct {
	char id[37];
	char tenant[65];
	char prefix[17];     /* the first characters of the key, to tell
				keys apart in lists */
	char name[256];
	bool operator_;      /* sees and acts on every tenant */
	int64_t created_at_ms;
	int64_t revoked_at_ms; /* 0: in use */
} aeth__apikey;

/* Record a key (its hash, hex) for `tenant`, creating the tenant if it
 * is new. Fills key->id and created_at_ms. */
int aeth__store_key_insert(struct aeth_store *s, aeth__apikey *key,
			   const char *sha256_hex);
/* The key whose hash is `sha256_hex`, not revoked: AETH_ENOTFOUND else. */
int aeth__store_key_find(struct aeth_store *s, const char *sha256_hex,
			 aeth__apikey *out);
/* Revoke the key with this id or prefix: AETH_ENOTFOUND, or AETH_EINVALID
 * when a prefix names several. */
int aeth__store_key_revoke(struct aeth_store *s, const char *id_or_prefix,
			   aeth__apikey *out);
/* Every key, newest first (revoked too): a malloc'd array into *out. */
int aeth__store_key_list(struct aeth_store *s, aeth__apikey **out, size_t *n);

/* A tenant's limits (-1: not set, the gateway's default applies). */
typedef struct {
	int max_vms, max_vcpus, max_memory_mb, max_rps;
} aeth__tenant_limits;
int aeth__store_tenant_limits(struct aeth_store *s, const char *tenant,
			      aeth__tenant_limits *out);
int aeth__store_tenant_set_limits(struct aeth_store *s, const char *tenant,
				  const aeth__tenant_limits *l);
/* What a tenant holds now: VMs creating or running plus vm:create tasks
 * not yet finished (a VM on its way), their vCPUs and memory (a create
 * that names none counts `default_vcpus` / `default_memory_mb`). */
typedef struct {
	int vms, vcpus, memory_mb;
} aeth__tenant_usage;
int aeth__store_tenant_usage(struct aeth_store *s, const char *tenant,
			     int default_vcpus, int default_memory_mb,
			     aeth__tenant_usage *out);
/*
 * The quota lock of `tenant`: a PostgreSQL session advisory lock that
 * every gateway on this database takes around a VM's quota check and its
 * submit, so that two gateways cannot both take a tenant's last place.
 * Waits up to wait_ms (AETH_ETIMEOUT after). While held the session is
 * pinned: a connection lost meanwhile fails the calls that follow instead
 * of going on unlocked. unlock: always after a lock that succeeded.
 */
int aeth__store_quota_lock(struct aeth_store *s, const char *tenant,
			   unsigned int wait_ms);
void aeth__store_quota_unlock(struct aeth_store *s, const char *tenant);

/* ---- Statistics over time (lib/store/stats.c; docs/dashboard.md) ------- */

/* Tasks that ended: how many, how long they ran (started_at ->
 * completed_at) and waited (created_at -> started_at), in ms; a duration
 * is -1 when no task had one. */
typedef struct {
	int64_t ok, failed;      /* completed / failed or dead */
	double run_mean_ms, run_p95_ms;
	double wait_mean_ms, wait_p95_ms;
} aeth__stats_ended;

/* One minute of ended tasks. */
typedef struct {
	int64_t minute_ms;       /* start of the minute (UTC ms) */
	aeth__stats_ended e;
	int64_t boots;           /* vm:create tasks completed */
	double boot_mean_ms, boot_p95_ms; /* their result's ready_ms */
} aeth__stats_minute;

/* One queue over the last minutes. */
typedef struct {
	char queue[101];
	aeth__stats_ended e;
} aeth__stats_queue;

/*
 * Tasks that ended in the last `window_s` seconds (60..86400, rounded
 * down to whole minutes), of `tenant` (NULL: all), one entry per minute
 * oldest first with the empty minutes too: a malloc'd array in *out, its
 * length in *n. And per queue over the last `recent_s` seconds into
 * *queues / *nqueues (malloc'd). Tasks created more than two days before
 * the window are not counted (the bound lets the created_at indexes
 * serve; a task's timeout_ms is at most a day).
 */
int aeth__store_stats_history(struct aeth_store *s, const char *tenant,
			      unsigned int window_s, aeth__stats_minute **out,
			      size_t *n);
int aeth__store_stats_queues(struct aeth_store *s, const char *tenant,
			     unsigned int recent_s, aeth__stats_queue **out,
			     size_t *n);

#endif
