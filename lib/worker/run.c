/*
 * lib/worker/run.c - aeth_worker_run(): connect, migrate, reconcile, start
 * the slots and the heartbeat, wait for a stop, then shut down gracefully:
 * no new tasks, running ones get grace_ms, the rest go back to the queue.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "worker/durability.h"
#include "worker/exec_glue.h"
#include "worker/infra_warnings.h"
#include "worker/ledger.h"
#include "worker/pool.h"
#include "task/task.h"
#include "worker/worker_internal.h"

/* The CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static struct timespec after_ms(unsigned int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void aeth__worker_nap(struct aeth_worker *w, unsigned int ms)
{
	struct timespec ts = after_ms(ms);

	/* w->cond is broadcast for other reasons too (slot exits, the
	 * heartbeat's wake-up): wait out the time unless stopping */
	pthread_mutex_lock(&w->mu);
	while (!atomic_load(&w->stopping) &&
	       pthread_cond_timedwait(&w->cond, &w->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&w->mu);
}

/* The VM manager, from the worker's configuration (vmm.*). */
static int open_vmm(aeth_worker *w)
{
	aeth_vmm_options o;

	aeth__vmm_options_from_config(w->cfg, &o);
	return aeth_vmm_open(&w->vmm, &o);
}

static int open_slot(aeth_worker *w, aeth__slot *s, int index)
{
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	int rc;

	s->w = w;
	s->index = index;
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->cancel, 0);
	qo.url = w->redis_url;
	qo.ns = w->redis_ns;
	qo.worker_id = w->id;
	qo.lease_ms = w->lease_ms;
	/* a vm:file_get's result carries the file (8 MiB in base64), and a
	 * forwarded vm:file_put its payload: lib/task bounds them */
	qo.max_payload = AETH__FILE_PAYLOAD_MAX;
	if ((rc = aeth_queue_open(&s->q, &qo)) != 0)
		return rc;
	return aeth__rec_open(&s->rec, w->database_url);
}

static void close_slot(aeth__slot *s)
{
	aeth_queue_free(s->q);
	aeth__rec_free(s->rec);
	s->q = NULL;
	s->rec = NULL;
	pthread_mutex_destroy(&s->mu);
}

/* Block until aeth_worker_stop() wrote to the pipe. */
static void wait_for_stop(aeth_worker *w)
{
	struct pollfd p = {w->stop_pipe[0], POLLIN, 0};
	char buf[16];

	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	while (read(w->stop_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static bool all_exited(aeth_worker *w)
{
	for (unsigned int i = 0; i < w->concurrency; i++)
		if (w->slots[i].started && !w->slots[i].exited)
			return false;
	return true;
}

/* Wait until every slot thread ended or `ms` passed; true if all ended. */
static bool wait_exited(aeth_worker *w, unsigned int ms)
{
	int64_t deadline = aeth__now_ms() + ms;
	bool done;

	pthread_mutex_lock(&w->mu);
	while (!(done = all_exited(w)) && aeth__now_ms() < deadline) {
		struct timespec ts;

		aeth__timespec_in(&ts, 100);
		pthread_cond_timedwait(&w->cond, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	return done;
}

/* After the grace period: give the tasks still running back to the queue
 * so another worker runs them now, not after their lease expires. */
static void requeue_running(aeth_worker *w, aeth__rec *rec)
{
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;

	qo.url = w->redis_url;
	qo.ns = w->redis_ns;
	qo.worker_id = w->id;
	if (aeth_queue_open(&q, &qo) != 0) {
		aeth__warn("shutdown: cannot requeue running tasks (%s); their "
			   "leases will expire and another worker takes them",
			   aeth_error_last());
		q = NULL;
	}
	for (unsigned int i = 0; i < w->concurrency; i++) {
		aeth__slot *s = &w->slots[i];

		atomic_store(&s->cancel, 1);
		pthread_mutex_lock(&s->mu);
		for (size_t j = 0; q && j < s->nheld; j++) {
			const char *why = "worker shut down before the task finished";

			if (s->held[j] == AETH__HELD_WAITING) {
				/* of its batch, not started: as a stop in time */
				s->held[j] = AETH__HELD_GONE;
				aeth__slot_release(w, q, rec, &s->hb[j]);
			} else if (s->held[j] == AETH__HELD_RUNNING && !s->requeued &&
				   aeth_queue_nack(q, &s->hb[j], why, 0) == 0) {
				s->requeued = true;
				aeth__rec_task_finish(rec, s->hb[j].id, "retrying", NULL,
						      why);
				aeth__worker_say(w, s->hb[j].id, "Task %s given back to "
						 "the queue (shutdown)", s->hb[j].id);
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	aeth_queue_free(q);
}

static void stop_heartbeat(aeth_worker *w)
{
	if (!w->hb_started)
		return;
	pthread_mutex_lock(&w->mu);
	w->hb_stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->hb_thread, NULL);
	w->hb_started = false;
}

static int start_threads(aeth_worker *w)
{
	int rc;

	for (unsigned int i = 0; i < w->concurrency; i++) {
		if (pthread_create(&w->slots[i].thread, NULL, aeth__slot_main,
				   &w->slots[i]) != 0)
			return aeth__error_errno(AETH_ERROR, "cannot start a worker thread");
		w->slots[i].started = true;
	}
	if (pthread_create(&w->hb_thread, NULL, aeth__heartbeat_main, w) != 0)
		return aeth__error_errno(AETH_ERROR, "cannot start the heartbeat thread");
	w->hb_started = true;
	if (pthread_create(&w->janitor, NULL, aeth__janitor_main, w) != 0)
		return aeth__error_errno(AETH_ERROR, "cannot start the janitor thread");
	w->janitor_started = true;
	if ((rc = aeth__pools_start(w)) != 0)
		return rc;
	return aeth__ledger_start(w);
}

/* After the slots ended: say what stays running, or delete it when
 * worker.delete_vms_on_stop says so. */
static void leave_vms(aeth_worker *w, aeth__rec *rec)
{
	bool del = false;
	unsigned int n = 0;

	aeth_config_get_bool(&del, w->cfg, "worker.delete_vms_on_stop");
	for (aeth__vmref *r = w->vms; r; r = r->next) {
		if (r->deleted || aeth_vm_status(r->vm) != AETH_VM_RUNNING)
			continue;
		if (del && aeth_vm_delete(r->vm) == 0) {
			r->deleted = true;
			aeth__rec_vm_status(rec, r->id, "deleted", "its worker stopped "
					    "(worker.delete_vms_on_stop)");
		}
		n++;
	}
	if (del && n)
		aeth__worker_say(w, NULL, "Stopping: deleted %u VM%s "
				 "(worker.delete_vms_on_stop)", n, n == 1 ? "" : "s");
	else if (n)
		aeth__worker_say(w, NULL, "Stopping: %u VM%s stay%s running; a worker "
				 "started again with id %s reattaches them (their "
				 "lifetimes still apply)", n, n == 1 ? "" : "s",
				 n == 1 ? "s" : "", w->id);
}

static void shut_down(aeth_worker *w, aeth__rec *rec)
{
	pthread_mutex_lock(&w->mu);
	atomic_store(&w->stopping, 1);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	if (!wait_exited(w, w->grace_ms)) {
		requeue_running(w, rec);
		/* handlers see aeth_task_cancelled(); give them a moment. A
		 * vm:execute whose guest ignores the kill gives up on it after
		 * AETH__EXEC_CANCEL_GRACE_MS and kills its VMM (exec_glue.c). */
		if (!wait_exited(w, AETH__EXEC_CANCEL_GRACE_MS + 5000)) {
			aeth__warn("worker %s: a handler did not return after the "
				   "grace period", w->id);
			w->threads_stuck = true;
		}
	}
	stop_heartbeat(w);
	aeth__ledger_stop(w); /* naps on w->cond too; a pass ends between pages */
	if (w->janitor_started) { /* it naps on w->cond and sees `stopping` */
		pthread_join(w->janitor, NULL);
		w->janitor_started = false;
	}
	for (unsigned int i = 0; i < w->concurrency; i++)
		if (w->slots[i].started && w->slots[i].exited)
			pthread_join(w->slots[i].thread, NULL);
	aeth__pools_stop(w); /* a boot under way ends first */
	if (!w->threads_stuck)
		leave_vms(w, rec);
}

static int prepare(aeth_worker *w, aeth__rec **rec)
{
	int rc;

	if (w->nhandlers == 0)
		return aeth__error_set(AETH_EINVALID, "worker %s has no handlers: "
				       "call aeth_worker_handle() or "
				       "aeth_worker_handle_builtin()", w->id);
	if ((rc = aeth__rec_open(rec, w->database_url)) != 0)
		return rc;
	if (w->migrate && (rc = aeth__rec_migrate(*rec)) != 0)
		return rc;
	if ((rc = open_vmm(w)) != 0)
		return rc;
	if ((rc = aeth__worker_reconcile(w, *rec)) != 0)
		aeth__warn("worker %s: reconciling its VMs: %s", w->id,
			   aeth_error_last());
	aeth__pool_reconcile(w);
	if (!(w->slots = calloc(w->concurrency, sizeof(*w->slots))))
		return aeth__error_oom();
	for (unsigned int i = 0; i < w->concurrency; i++)
		if ((rc = open_slot(w, &w->slots[i], (int)i)) != 0)
			return rc;
	return 0;
}

/* Enter the registry before the first task, through slot 0's connection
 * (its thread has not started); the heartbeat thread refreshes it. */
static void register_self(aeth_worker *w)
{
	char *json = NULL, me[256] = "";
	cJSON *e;

	w->started_wall_ms = aeth__wall_ms();
	gethostname(me, sizeof(me) - 1);
	if (aeth_queue_worker_get(&json, w->slots[0].q, w->id) == 0) {
		const char *host;
		double pid;

		e = cJSON_Parse(json);
		host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "host"));
		pid = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "pid"));
		/* not when that process is gone (killed and restarted at once) */
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "alive")) &&
		    !(host && !strcmp(host, me) && pid > 0 &&
		      kill((pid_t)pid, 0) != 0 && errno == ESRCH))
			aeth__warn("worker id %s is registered as alive already (host %s, "
				   "pid %.0f): two workers with one id share its VMs and "
				   "queue; give each its own -id", w->id,
				   host ? host : "?", pid);
		cJSON_Delete(e);
		aeth_free(json);
	}
	if (aeth__worker_register(w, w->slots[0].q) != 0)
		aeth__warn("worker %s: cannot enter the worker registry: %s", w->id,
			   aeth_error_last());
}

static void set_run_state(aeth_worker *w, int state)
{
	pthread_mutex_lock(&w->mu);
	w->run_state = state;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

int aeth_worker_wait_ready(aeth_worker *w, unsigned int timeout_ms)
{
	struct timespec ts = after_ms(timeout_ms);
	int state;

	if (!w)
		return aeth__error_set(AETH_EINVALID, "aeth_worker_wait_ready: NULL "
				       "worker");
	pthread_mutex_lock(&w->mu);
	while (w->run_state == AETH__RUN_NOT_READY &&
	       pthread_cond_timedwait(&w->cond, &w->mu, &ts) != ETIMEDOUT)
		;
	state = w->run_state;
	pthread_mutex_unlock(&w->mu);
	if (state == AETH__RUN_READY)
		return 0;
	if (state == AETH__RUN_ENDED)
		return aeth__error_set(AETH_ESTATE, "worker %s: its run has ended "
				       "(aeth_worker_run's result says why)", w->id);
	return aeth__error_set(AETH_ETIMEOUT, "worker %s is not taking tasks "
			       "after %u ms", w->id, timeout_ms);
}

static void log_warning(const char *what, const char *detail, const char *fix,
			void *userdata)
{
	aeth_worker *w = userdata;

	aeth__warn("worker %s: %s: %s (fix: %s)", w->id, what, detail, fix);
}

static void log_finding(const char *what, int status, const char *detail,
			const char *fix, void *userdata)
{
	if (status != 0)
		log_warning(what, detail, fix, userdata);
}

int aeth_worker_run(aeth_worker *w)
{
	aeth__rec *rec = NULL;
	int rc;

	if (!w)
		return aeth__error_set(AETH_EINVALID, "aeth_worker_run: NULL worker");
	set_run_state(w, AETH__RUN_NOT_READY);
	{
		/* logging.format for aeth_log_stderr and the progress lines */
		const char *format = NULL;
		if (aeth_config_get_string(&format, w->cfg, "logging.format") == 0
		    && format)
			aeth__log_set_json(strcmp(format, "json") == 0);
		aeth__log_worker_default(w->id);
		aeth__log_ctx_worker(w->id);
	}
	aeth__infra_warnings(w->redis_url, w->database_url, aeth_config_path(w->cfg),
			     log_warning, w);
	aeth__policy_exposure(&w->policy, w->redis_url, w->database_url,
			      log_warning, w);
	if ((rc = prepare(w, &rec)) == 0 &&
	    (rc = aeth__worker_metrics_start(w)) == 0) {
		aeth__redis_durability(w->slots[0].q, log_finding, w);
		aeth__pg_durability(aeth__rec_store(rec), log_finding, w);
		register_self(w);
		/* before the first task: a dead worker's VMs and queue */
		if (aeth__worker_adopt(w, rec, w->slots[0].q) != 0)
			aeth__warn("worker %s: adopting dead workers' VMs: %s (tried "
				   "again in a few seconds)", w->id, aeth_error_last());
		set_run_state(w, AETH__RUN_READY);
		aeth__worker_say(w, NULL, "Listening for tasks on Redis queue...");
		rc = start_threads(w);
		if (rc == 0)
			wait_for_stop(w);
		shut_down(w, rec);
		/* the slots ended: slot 0's connection is free again */
		if (!w->threads_stuck &&
		    aeth_queue_worker_unregister(w->slots[0].q, w->id) != 0)
			aeth__warn("worker %s: cannot mark its registry entry stopped: "
				   "%s", w->id, aeth_error_last());
	}
	if (!w->threads_stuck)
		aeth__worker_metrics_stop(w);
	if (!w->threads_stuck && w->slots)
		for (unsigned int i = 0; i < w->concurrency; i++)
			if (w->slots[i].w)
				close_slot(&w->slots[i]);
	aeth__rec_free(rec);
	set_run_state(w, AETH__RUN_ENDED);
	return rc;
}
