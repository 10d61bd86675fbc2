/*
 * lib/worker/worker_internal.h - the worker's parts: slots (threads that
 * take and run tasks), the heartbeat thread, the table of VMs this worker
 * has open, and the built-in handlers.
 */
#ifndef AETH_WORKER_INTERNAL_H
#define AETH_WORKER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "internal.h"
#include "aetherium/queue.h"
#include "aetherium/vm.h"
#include "aetherium/worker.h"
#include "worker/policy.h"
#include "store/store_internal.h"

typedef struct {
	char *type;
	aeth_task_handler fn;
	void *userdata;
} aeth__handler;

/* A VM this worker has a handle on. Execs hold `lock` shared, lifecycle
 * calls (delete) hold it exclusive: vm.h forbids racing them. */
typedef struct aeth__vmref {
	char id[37];
	aeth_vm *vm;
	pthread_rwlock_t lock;
	int refs;
	bool deleted;
	bool ending;          /* expired or its VMM died: no new work */
	const char *why_ended; /* static text for the tasks that find it */
	struct aeth__vmref *next;
} aeth__vmref;

/* Most tasks one slot takes with one dequeue (when the queue is deep and
 * its recent tasks were short: see slot.c's batch_size()). 250 rather than
 * 100: the per-batch costs (script calls, statements, round trips) then
 * weigh less (bench_worker drain: 20.6-23.6k no-op tasks/s instead of
 * 19.2-20.8k, PostgreSQL CPU per task 21-25 us instead of 29-31); one
 * dequeue or ack of 250 holds Redis for ~4 ms. */
#define AETH__SLOT_BATCH_MAX 250

/* A task a slot holds (its lease is the slot's to extend). */
typedef enum {
	AETH__HELD_NONE = 0,
	AETH__HELD_WAITING,  /* dequeued in a batch, not started yet */
	AETH__HELD_RUNNING,  /* its handler runs */
	AETH__HELD_DONE,     /* row completed, ack not sent yet */
	AETH__HELD_GONE      /* given back at shutdown, or its lease was lost */
} aeth__held_state;

typedef struct aeth__slot {
	struct aeth_worker *w;
	int index;
	pthread_t thread;
	bool started;
	aeth_queue *q;
	aeth__rec *rec;
	/* `mu` guards hb/held/nheld/requeued: the heartbeat thread and the
	 * shutdown path read the leases of the tasks the slot holds through
	 * `hb`, shallow copies whose strings belong to the slot's tasks. */
	pthread_mutex_t mu;
	aeth_queue_task hb[AETH__SLOT_BATCH_MAX];
	aeth__held_state held[AETH__SLOT_BATCH_MAX];
	size_t nheld;
	bool requeued;       /* the RUNNING one was given back at shutdown */
	bool row_deferred;   /* the RUNNING one has no running row yet */
	bool batch_warned;   /* a failed batch row write was reported */
	int64_t running_since; /* aeth__now_ms() the RUNNING one started */
	/* aeth__now_ms() when the RUNNING one passes its timeout_ms (0:
	 * none); the heartbeat thread wakes for it and sets timed_out and
	 * cancel, and the task then ends failed, never completed */
	int64_t deadline_ms;
	unsigned int timeout_ms;
	bool timed_out;
	atomic_int cancel;
	bool exited;
	double avg_ms;       /* recent task time (rises at once, decays slowly) */
	/* the same per task type, for the few types seen last (slot.c) */
	struct {
		char type[64];
		double avg_ms;
	} types[8];
	unsigned int types_next;
} aeth__slot;

struct aeth_task {
	aeth__slot *slot;
	aeth_queue_task *qt;
	char *result;
	char *error;
	int retryable; /* -1: decide from the return code */
	char *forward_to; /* set by a handler: forward to this queue (forward.c) */
};

struct aeth_worker {
	char *id;
	char *host_id;        /* worker.host_id: which VMs it can adopt */
	char *own_queue;
	char *database_url;
	char *redis_url;
	char *redis_ns;
	char *backend;
	unsigned int concurrency;
	unsigned int lease_ms;
	unsigned int grace_ms;
	unsigned int vcpus;
	unsigned int memory_mb;
	int migrate;
	int64_t started_wall_ms; /* aeth_worker_run() began (registry) */
	aeth_worker_event_cb on_event;
	void *userdata;

	aeth_queue_source *sources;
	size_t nsources;
	char **source_names;

	aeth__handler *handlers;
	size_t nhandlers;
	char *types;

	int stop_pipe[2];
	atomic_int stopping;
	pthread_mutex_t mu;   /* guards the condition below and slot exits */
	pthread_cond_t cond;
	bool hb_stop;
	int64_t hb_wake_at;   /* under mu: when the heartbeat thread wakes next */
	pthread_t hb_thread;
	bool hb_started;
	atomic_int deferred_seen; /* a slot ran a deferred start (slot.c) */
	int run_state;        /* AETH__RUN_*, under mu (aeth_worker_wait_ready) */
	bool threads_stuck;   /* a slot did not end: keep shared state alive */

	aeth_config *cfg;     /* the worker's own copy (images, limits, jail) */
	aeth__policy policy;  /* read from cfg by aeth_worker_new */

	aeth_vmm *vmm;
	pthread_mutex_t vm_mu;
	aeth__vmref *vms;
	/* vm:create requests past their quota check whose VM is not in the
	 * table yet (under vm_mu; quota.c) */
	unsigned int pending_vms;
	uint64_t pending_memory_mb, pending_overlay_mb;
	/* what the warm pools hold, ready or booting (under vm_mu; pool.c) */
	struct aeth__pools *pools;
	unsigned int pool_vms;
	uint64_t pool_memory_mb, pool_overlay_mb;
	/* dead workers whose pool VMs were deleted already (janitor thread) */
	char **pool_swept;
	pthread_t janitor;
	bool janitor_started;
	struct aeth__ledger_run *ledger; /* the reconciler's thread (ledger.c) */

	aeth__slot *slots;
	struct aeth__worker_metrics *metrics; /* metrics.c, during a run */
};

/* The metrics collector and, with metrics.listen set, the HTTP endpoint
 * (metrics.c): started after the slots are open, stopped before they
 * close. Start fails (with the setting named) when the address cannot
 * be used or the library has no HTTP. */
int aeth__worker_metrics_start(struct aeth_worker *w);
void aeth__worker_metrics_stop(struct aeth_worker *w);
/* The endpoint's TCP port (0: none, or a Unix socket). */
int aeth__worker_metrics_port(const struct aeth_worker *w);

/* Progress line to the event callback (printf-style). */
void aeth__worker_say(struct aeth_worker *w, const char *task_id,
		      const char *fmt, ...) AETH__PRINTF(3, 4);

/* Sleep up to ms, waking early when the worker stops. */
void aeth__worker_nap(struct aeth_worker *w, unsigned int ms);
enum { AETH__RUN_NOT_READY, AETH__RUN_READY, AETH__RUN_ENDED };

/* Slot threads and the heartbeat thread (slot.c). */
void *aeth__slot_main(void *arg);
/* Give back a task of a batch that was never started (a stop): pending
 * again at the head of its queue, no retry counted, its row pending. */
void aeth__slot_release(aeth_worker *w, aeth_queue *q, aeth__rec *rec,
			aeth_queue_task *qt);
void *aeth__heartbeat_main(void *arg);

/* VM table (vmtable.c): find-or-attach a VM this worker owns, with a
 * reference; put it back when done. `exclusive` for lifecycle calls. */
int aeth__vm_acquire(struct aeth_worker *w, const char *id, bool exclusive,
		     aeth__vmref **out);
void aeth__vm_release(struct aeth_worker *w, aeth__vmref *ref, bool exclusive);
int aeth__vm_adopt(struct aeth_worker *w, aeth_vm *vm);
void aeth__vm_table_free(struct aeth_worker *w);

/* Quotas (quota.c): reserve what a vm:create asks for against the
 * worker's limits (0, or AETH_EBUSY with a message naming the limit);
 * release it when the create ended (its VM, if any, is in the table). */
int aeth__quota_reserve(struct aeth_worker *w, unsigned int memory_mb,
			uint64_t overlay_mb);
void aeth__quota_release(struct aeth_worker *w, unsigned int memory_mb,
			 uint64_t overlay_mb);
/* The disk space a VM's root disk may take in its overlay, in MiB. */
uint64_t aeth__overlay_mb(const char *rootfs_path);

/* The janitor thread (janitor.c): ends VMs whose lifetime is over and
 * notices VMMs that died, every second. */
void *aeth__janitor_main(void *arg);

/* Adopt the VMs of dead workers on this host (and their queued tasks):
 * adopt.c. `q` lists the registry and drains the dead workers' queues. */
int aeth__worker_adopt(struct aeth_worker *w, aeth__rec *rec, aeth_queue *q);

/* Reattach or clean up the VMs this worker id owned (reconcile.c). */
int aeth__worker_reconcile(struct aeth_worker *w, aeth__rec *rec);

/* Forwarding to the VM owner's queue, once (forward.c): the hop count in
 * a payload, and the forward of t (t->forward_to set) from slot s. */
unsigned int aeth__forward_hops(const char *payload);
int aeth__forward(aeth__slot *s, aeth_task *t);
/* The same for a task taken with `q`, to queue `to` (adopt.c). */
int aeth__forward_task(aeth_queue *q, aeth__rec *rec, aeth_queue_task *qt,
		       const char *to);

/* The worker registry (registry.c): the refresh interval (the heartbeat
 * thread's tick) and this worker's entry, written through q. */
/* aeth_worker_options' versions (worker.c). */
extern const aeth__versioned aeth__worker_options_v;

/* How often a worker refreshes its registry entry (at most; less with a
 * short lease: the heartbeat thread's tick). Dead after 3 missed
 * refreshes. */
#define AETH__REG_INTERVAL_MS 5000
unsigned int aeth__worker_reg_interval(const struct aeth_worker *w);
int aeth__worker_register(struct aeth_worker *w, aeth_queue *q);

/* The built-in handlers (builtin.c). */
int aeth__handle_create(aeth_task *t, void *userdata);
int aeth__handle_execute(aeth_task *t, void *userdata);
int aeth__handle_delete(aeth_task *t, void *userdata);
/* vm:file_put, vm:file_get (files.c). */
int aeth__handle_file_put(aeth_task *t, void *userdata);
int aeth__handle_file_get(aeth_task *t, void *userdata);

/*
 * A task's VM (builtin.c): check in the database that it exists, runs,
 * belongs to this worker and to the task's tenant (a VM of another tenant
 * is "does not exist", the words a guessed id gets), then take it from
 * the table. 0: *ref taken (release with aeth__vm_release(); `exclusive`
 * as given); 1: forwarded to the owner (the handler returns 0); <0: the
 * task failed (aeth_task_fail()'s code). With `ended_ok` (vm:delete) 2:
 * a failed or stopped VM of ours, nothing taken. The VM's tenant goes to
 * `tenant`.
 */
int aeth__take_vm(aeth_task *t, const char *vm_id, bool exclusive,
		  bool ended_ok, aeth__vmref **ref, char tenant[65]);

/* The VM manager's options from a configuration (vmm.*); the strings
 * are borrowed from cfg (fromconfig.c). */
void aeth__vmm_options_from_config(const aeth_config *cfg, aeth_vmm_options *o);

/* Parse "critical=6,high=5,low" into sources after the worker's own queue. */
int aeth__parse_queues(struct aeth_worker *w, const char *spec);

#endif
