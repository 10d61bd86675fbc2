/*
 * lib/metrics/metrics.h - the process-wide metrics registry and its
 * Prometheus text exposition. Internal (aeth__ names).
 *
 * Every metric is a row of one table (catalog.c): name with its unit,
 * type, help, label names and, for histograms, fixed buckets. The table
 * is the one source of truth: docs/metrics.md lists the same rows and a
 * test compares them. Code updates a metric by its id:
 *
 *     aeth__metric_inc(AETH__M_TASKS, type, "succeeded");
 *     aeth__metric_observe(AETH__M_TASK_SECONDS, secs, type, NULL);
 *
 * Labels are bounded by construction: at most AETH__METRIC_MAX_LABELS
 * per metric, values cut to 63 bytes, and at most AETH__METRIC_MAX_SERIES
 * label sets per metric; further sets are counted under the value
 * "other" for every label. Never pass ids (VM, task) as label values.
 *
 * Threads: any thread may update any metric; each metric has its own
 * mutex, held for a lookup among its few series and an add (no
 * allocation, no I/O). Rendering takes each metric's mutex in turn.
 * Collectors (aeth__metrics_collector_add) run at render time, on the
 * rendering thread, before anything is read: they set the gauges that
 * are read from elsewhere (Redis queue depths, the VM table).
 */
#ifndef AETH_METRICS_H
#define AETH_METRICS_H

#include <stddef.h>

#define AETH__METRIC_MAX_LABELS 3
#define AETH__METRIC_MAX_SERIES 128
#define AETH__METRIC_MAX_BUCKETS 16

typedef enum {
	AETH__M_TASKS,            /* aeth_tasks_total{type,outcome} */
	AETH__M_TASK_SECONDS,     /* aeth_task_duration_seconds{type} */
	AETH__M_TASK_RETRIES,     /* aeth_task_retries_total{type} */
	AETH__M_TASKS_DEAD,       /* aeth_tasks_dead_total{type} */
	AETH__M_EXEC_SECONDS,     /* aeth_exec_duration_seconds */
	AETH__M_VM_BOOTS,         /* aeth_vm_boots_total{how,outcome} */
	AETH__M_VM_BOOT_SECONDS,  /* aeth_vm_boot_duration_seconds{how} */
	AETH__M_VMS_RUNNING,      /* aeth_vms_running */
	AETH__M_QUEUE_TASKS,      /* aeth_queue_tasks{queue,state} */
	AETH__M_QUEUE_SCRAPE_ERRORS, /* aeth_queue_depth_errors_total */
	AETH__M_LEASE_RECOVERIES, /* aeth_lease_recoveries_total */
	AETH__M_AGENT_RECONNECTS, /* aeth_agent_reconnects_total */
	AETH__M_REDIS_ERRORS,     /* aeth_redis_errors_total */
	AETH__M_PG_ERRORS,        /* aeth_postgres_errors_total */
	AETH__M_GUEST_MEMORY,     /* aeth_guest_memory_committed_bytes */
	AETH__M_VMM_PROCESSES,    /* aeth_vmm_processes */
	AETH__M_WORKER_SLOTS,     /* aeth_worker_slots */
	AETH__M_WORKER_BUSY,      /* aeth_worker_slots_busy */
	AETH__M_POOL_VMS,         /* aeth_pool_vms{pool,state} */
	AETH__M_POOL_TARGET,      /* aeth_pool_target_vms{pool} */
	/* the gateway's (aeth-gateway: lib/gateway/metrics.c) */
	AETH__M_GW_REQUESTS,      /* aeth_gateway_requests_total{method,route,
				   * status} */
	AETH__M_GW_REQUEST_SECONDS, /* aeth_gateway_request_duration_seconds{route} */
	AETH__M_GW_CONNECTIONS,   /* aeth_gateway_connections */
	AETH__M_GW_STREAMS,       /* aeth_gateway_streams */
	AETH__M_GW_AUTH_FAILURES, /* aeth_gateway_auth_failures_total{reason} */
	AETH__M_GW_REFUSALS,      /* aeth_gateway_limit_refusals_total{limit} */
	AETH__M_GW_STREAM_BYTES,  /* aeth_gateway_streamed_bytes_total{format} */
	AETH__M_GW_RATE_FALLBACKS, /* aeth_gateway_rate_limit_fallbacks_total */
	AETH__M_COUNT
} aeth__metric_id;

typedef enum { AETH__COUNTER, AETH__GAUGE, AETH__HISTOGRAM } aeth__metric_type;

/* Which program exports a metric: a worker's /metrics shows the worker's
 * rows, the gateway's the gateway's (a process runs one or the other;
 * the other's rows would only be zeros that look like facts). */
typedef enum {
	AETH__PART_WORKER = 0,
	AETH__PART_GATEWAY = 1,
	AETH__PART_ALL = 2 /* for aeth__metrics_render(): both */
} aeth__metric_part;

/* One row of the catalogue. */
typedef struct {
	const char *name;
	aeth__metric_type type;
	const char *help;
	const char *labels[AETH__METRIC_MAX_LABELS]; /* NULL-padded */
	const double *buckets; /* histograms: upper bounds, ascending */
	size_t n_buckets;
	/* gauges set by a collector: zeroed before collectors run, so that
	 * what no collector reports (a stopped worker's) reads 0 */
	int collected;
	aeth__metric_part part;
} aeth__metric_def;

extern const aeth__metric_def aeth__metric_defs[AETH__M_COUNT];

/* Label values by position; NULL for labels the metric lacks. */
void aeth__metric_add(aeth__metric_id id, double v, const char *l1,
		      const char *l2);
/* The same for the metrics with three labels. */
void aeth__metric_add3(aeth__metric_id id, double v, const char *l1,
		       const char *l2, const char *l3);
#define aeth__metric_inc(id, l1, l2) aeth__metric_add((id), 1.0, (l1), (l2))
void aeth__metric_set(aeth__metric_id id, double v, const char *l1,
		      const char *l2);
void aeth__metric_observe(aeth__metric_id id, double v, const char *l1,
			  const char *l2);
/* The current value of a counter or gauge series (0 when absent); for a
 * histogram its count. For tests and the gauges' collectors. */
double aeth__metric_value(aeth__metric_id id, const char *l1, const char *l2);
double aeth__metric_value3(aeth__metric_id id, const char *l1, const char *l2,
			   const char *l3);

/*
 * A function run at each render before values are read, with its
 * userdata; removed with the same pair. A collector must bound its own
 * waits (a second or so: a scrape has its deadline).
 */
typedef void (*aeth__metrics_collect_fn)(void *userdata);
int aeth__metrics_collector_add(aeth__metrics_collect_fn fn, void *userdata);
void aeth__metrics_collector_remove(aeth__metrics_collect_fn fn,
				    void *userdata);

/*
 * The process-wide registry in the Prometheus text format (version
 * 0.0.4): # HELP, # TYPE, one line per series, histograms as _bucket
 * (with le="+Inf"), _sum and _count; the metrics of `part` only (the
 * collectors all run). *out is malloc'd, NUL-terminated.
 */
int aeth__metrics_render(char **out, size_t *len, aeth__metric_part part);

/* The Prometheus text format's content type. */
#define AETH__METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#ifdef AETH_HAVE_HTTP
#include "http/http.h"
/* GET /metrics as a lib/http route handler (serve.c): the metrics of the
 * part given as userdata, (void *)(intptr_t)AETH__PART_WORKER or _GATEWAY. */
void aeth__metrics_serve(const aeth__http_request *req,
			 aeth__http_response *res, void *part);
#endif

#endif
