/*
 * lib/metrics/catalog.c - every metric the library exports, in one table
 * (docs/metrics.md lists the same; tests/metrics checks that they agree).
 * Names follow Prometheus' conventions: the aeth_ prefix, the unit in the
 * name (_seconds, _bytes), _total for counters.
 */
#include "metrics/metrics.h"

/* From a no-op task (~1 ms) to a long build (10 min). */
static const double task_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				      0.5, 1, 2.5, 5, 10, 30, 60, 300, 600};
/* KVM boots in ~0.1 s, TCG in ~2-3 s, a hung boot at its 60 s deadline. */
static const double boot_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5,
				      10, 20, 30, 60};

/* A gateway answer: from a cached health check (~0.1 ms) to a wait
 * handed to a stream or a slow database (seconds). */
static const double request_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
					 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
					 5, 10};

#define B(a) (a), sizeof(a) / sizeof((a)[0])
#define GATEWAY AETH__PART_GATEWAY

const aeth__metric_def aeth__metric_defs[AETH__M_COUNT] = {
	[AETH__M_TASKS] = {"aeth_tasks_total", AETH__COUNTER,
		"Tasks this process finished, by type and outcome (succeeded, "
		"failed: for good, retrying: failed and queued again, "
		"forwarded: to the owner of its VM, requeued: given back at "
		"shutdown)", {"type", "outcome"}, NULL, 0, 0},
	[AETH__M_TASK_SECONDS] = {"aeth_task_duration_seconds", AETH__HISTOGRAM,
		"Time a task's handler ran, by type", {"type", NULL},
		B(task_buckets), 0},
	[AETH__M_TASK_RETRIES] = {"aeth_task_retries_total", AETH__COUNTER,
		"Failed tasks queued again for a retry, by type", {"type", NULL},
		NULL, 0, 0},
	[AETH__M_TASKS_DEAD] = {"aeth_tasks_dead_total", AETH__COUNTER,
		"Tasks that failed for good (moved to the dead set), by type",
		{"type", NULL}, NULL, 0, 0},
	[AETH__M_EXEC_SECONDS] = {"aeth_exec_duration_seconds", AETH__HISTOGRAM,
		"Time of a command run in a guest (vm:execute), from the "
		"request to its exit status", {NULL, NULL}, B(task_buckets), 0},
	[AETH__M_VM_BOOTS] = {"aeth_vm_boots_total", AETH__COUNTER,
		"VMs made ready, by how (cold: a VMM booted; pool: handed out "
		"from a warm pool; snapshot: restored) and outcome (ok, failed)",
		{"how", "outcome"}, NULL, 0, 0},
	[AETH__M_VM_BOOT_SECONDS] = {"aeth_vm_boot_duration_seconds",
		AETH__HISTOGRAM, "Time from starting a VM to its agent answering, "
		"by how it was made", {"how", NULL}, B(boot_buckets), 0},
	[AETH__M_VMS_RUNNING] = {"aeth_vms_running", AETH__GAUGE,
		"VMs this process's workers have running", {NULL, NULL}, NULL, 0,
		1},
	[AETH__M_QUEUE_TASKS] = {"aeth_queue_tasks", AETH__GAUGE,
		"Tasks in a queue this process's workers take from, by state "
		"(pending, active, scheduled, retry, dead, completed), read "
		"from Redis at scrape time (cached 2 s)", {"queue", "state"}, NULL,
		0, 1},
	[AETH__M_QUEUE_SCRAPE_ERRORS] = {"aeth_queue_depth_errors_total",
		AETH__COUNTER, "Scrapes whose queue depths could not be read "
		"from Redis in time (the last values are shown)", {NULL, NULL},
		NULL, 0, 0},
	[AETH__M_LEASE_RECOVERIES] = {"aeth_lease_recoveries_total",
		AETH__COUNTER, "Tasks whose lease expired (their worker died or "
		"stalled) put back to pending by this process's dequeues",
		{NULL, NULL}, NULL, 0, 0},
	[AETH__M_AGENT_RECONNECTS] = {"aeth_agent_reconnects_total",
		AETH__COUNTER, "Connections to a guest agent made again after "
		"one was lost", {NULL, NULL}, NULL, 0, 0},
	[AETH__M_REDIS_ERRORS] = {"aeth_redis_errors_total", AETH__COUNTER,
		"Redis calls that failed (unreachable, timed out, or an error "
		"reply)", {NULL, NULL}, NULL, 0, 0},
	[AETH__M_PG_ERRORS] = {"aeth_postgres_errors_total", AETH__COUNTER,
		"PostgreSQL statements or connections that failed",
		{NULL, NULL}, NULL, 0, 0},
	[AETH__M_GUEST_MEMORY] = {"aeth_guest_memory_committed_bytes",
		AETH__GAUGE, "Guest memory promised to the running VMs of this "
		"process's workers (sum of their memory sizes)", {NULL, NULL},
		NULL, 0, 1},
	[AETH__M_VMM_PROCESSES] = {"aeth_vmm_processes", AETH__GAUGE,
		"VMM processes (QEMU, Firecracker) of this process's workers "
		"that are alive", {NULL, NULL}, NULL, 0, 1},
	[AETH__M_WORKER_SLOTS] = {"aeth_worker_slots", AETH__GAUGE,
		"Tasks this process's workers run at once at most "
		"(queue.concurrency)", {NULL, NULL}, NULL, 0, 1},
	[AETH__M_WORKER_BUSY] = {"aeth_worker_slots_busy", AETH__GAUGE,
		"Slots running a task now", {NULL, NULL}, NULL, 0, 1},
	[AETH__M_POOL_VMS] = {"aeth_pool_vms", AETH__GAUGE,
		"VMs of a warm pool (its name in the pool: section), by state "
		"(ready: spares to hand out; booting: being made)",
		{"pool", "state"}, NULL, 0, 1},
	[AETH__M_POOL_TARGET] = {"aeth_pool_target_vms", AETH__GAUGE,
		"Ready VMs a warm pool keeps (its configured size)",
		{"pool", NULL}, NULL, 0, 1},

	/* aeth-gateway's; `route` is a template of the route table
	 * ("/v1/vms/{id}"), "/dashboard/" for the dashboard's files,
	 * "unmatched" for paths that fit none and for
	 * bodies refused before routing (413) */
	[AETH__M_GW_REQUESTS] = {"aeth_gateway_requests_total", AETH__COUNTER,
		"HTTP requests the gateway answered, by method, route template "
		"and status class (2xx, 3xx, 4xx, 5xx)",
		{"method", "route", "status"}, NULL, 0, 0, GATEWAY},
	[AETH__M_GW_REQUEST_SECONDS] = {"aeth_gateway_request_duration_seconds",
		AETH__HISTOGRAM, "Time from a request read to its answer "
		"handed over (for a wait or live output: until the stream "
		"starts), by route template", {"route", NULL},
		B(request_buckets), 0, GATEWAY},
	[AETH__M_GW_CONNECTIONS] = {"aeth_gateway_connections", AETH__GAUGE,
		"HTTP connections open to the gateway (gateway.max_conns at "
		"most)", {NULL, NULL}, NULL, 0, 1, GATEWAY},
	[AETH__M_GW_STREAMS] = {"aeth_gateway_streams", AETH__GAUGE,
		"Streamed answers running (waits and live output; "
		"gateway.max_streams at most)", {NULL, NULL}, NULL, 0, 1, GATEWAY},
	[AETH__M_GW_AUTH_FAILURES] = {"aeth_gateway_auth_failures_total",
		AETH__COUNTER, "Requests refused 401, by reason (missing: no "
		"Authorization header; malformed: not Bearer aeth_...; unknown: "
		"a key not known or revoked)",
		{"reason", NULL}, NULL, 0, 0, GATEWAY},
	[AETH__M_GW_REFUSALS] = {"aeth_gateway_limit_refusals_total",
		AETH__COUNTER, "Requests refused for a limit (429, 403 or 503), "
		"by the limit's name (max_rps, max_vms, max_vcpus, "
		"max_memory_mb, unauthenticated_rps, tenant_max_streams, "
		"max_streams)", {"limit", NULL}, NULL, 0, 0, GATEWAY},
	[AETH__M_GW_STREAM_BYTES] = {"aeth_gateway_streamed_bytes_total",
		AETH__COUNTER, "Bytes of streamed answers handed to the HTTP "
		"server, by format (json: a wait's one object; sse; ndjson)",
		{"format", NULL}, NULL, 0, 0, GATEWAY},
	[AETH__M_GW_RATE_FALLBACKS] = {"aeth_gateway_rate_limit_fallbacks_total",
		AETH__COUNTER, "Requests whose max_rps this gateway decided on "
		"its own bucket because Redis, where the gateways share them, "
		"did not answer", {NULL, NULL}, NULL, 0, 0, GATEWAY},
};
