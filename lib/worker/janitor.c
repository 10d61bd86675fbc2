/*
 * lib/worker/janitor.c - once a second, the worker looks after its VMs
 * without being asked: a VM past its lifetime (vm:create "ttl", limits.
 * ttl_s) is killed and deleted, and a VM whose VMM died (killed, crashed)
 * is failed and cleaned up; each vms row says why. VMs in use by a
 * lifecycle call are looked at again the next second; a VM whose
 * lifetime ends during a command is ended anyway (the command's task
 * fails saying so). Every few seconds it also adopts what dead workers
 * of this host left (adopt.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm/vm_internal.h"
#include "worker/worker_internal.h"

#define JANITOR_TICK_MS 1000
#define JANITOR_BATCH 16
/* How often it looks for dead workers' VMs and tasks (adopt.c). */
#define ADOPT_EVERY_TICKS 5

/* Rows the janitor could not write yet (PostgreSQL away): written again
 * each tick until they are. */
#define JANITOR_ROWS_MAX 256
typedef struct {
	struct {
		char id[37];
		const char *status;
		char why[512];
	} row[JANITOR_ROWS_MAX];
	size_t n;
} unwritten_rows;

static void write_row(aeth__rec *rec, unwritten_rows *u, const char *id,
		      const char *status, const char *why)
{
	if (rec && aeth__rec_vm_status(rec, id, status, why) == 0)
		return;
	if (!u || u->n == JANITOR_ROWS_MAX) {
		aeth__warn("VM %s %s: %s; its row could not be written and too "
			   "many are waiting: it stays as it is", id, status, why);
		return;
	}
	snprintf(u->row[u->n].id, sizeof(u->row[0].id), "%s", id);
	u->row[u->n].status = status;
	snprintf(u->row[u->n].why, sizeof(u->row[0].why), "%s", why);
	u->n++;
}

static void write_unwritten(aeth__rec *rec, unwritten_rows *u)
{
	size_t kept = 0;

	for (size_t i = 0; i < u->n; i++)
		if (aeth__rec_vm_status(rec, u->row[i].id, u->row[i].status,
					u->row[i].why) != 0)
			u->row[kept++] = u->row[i];
	u->n = kept;
}

static const char EXPIRED[] = "has ended: its lifetime (ttl) is over; "
			      "create a new VM";
static const char DIED[] = "has failed: its VMM process exited "
			   "unexpectedly; create a new VM";
/* failed by someone else (a command that gave up on its guest), who wrote
 * the row: only what is left of it is removed */
static const char FAILED[] = "has failed; create a new VM";

/* Take the refs to act on now (marked ending), at most n. */
static size_t collect(aeth_worker *w, aeth__vmref **out, size_t n)
{
	int64_t now = aeth__wall_ms();
	size_t k = 0;

	pthread_mutex_lock(&w->vm_mu);
	for (aeth__vmref *r = w->vms; r && k < n; r = r->next) {
		int64_t exp;

		if (r->deleted || r->ending)
			continue;
		exp = aeth_vm_expires_ms(r->vm);
		if (exp && now >= exp) {
			r->why_ended = EXPIRED;
		} else if (pthread_rwlock_trywrlock(&r->lock) == 0) {
			/* no call is using it: its record holds still */
			bool dead = !aeth__vm_vmm_alive(r->vm);
			bool failed = aeth__vm_recorded_state(r->vm) ==
				      AETH_VM_FAILED;

			pthread_rwlock_unlock(&r->lock);
			if (!dead)
				continue;
			r->why_ended = failed ? FAILED : DIED;
		} else {
			continue;
		}
		r->ending = true;
		r->refs++;
		out[k++] = r;
	}
	pthread_mutex_unlock(&w->vm_mu);
	return k;
}

static void end_vm(aeth_worker *w, aeth__rec *rec, unwritten_rows *u,
		   aeth__vmref *r)
{
	bool expired = r->why_ended == EXPIRED;
	char why[512];

	if (r->why_ended == FAILED) { /* its row says why already */
		pthread_rwlock_wrlock(&r->lock);
		if (aeth_vm_delete(r->vm) != 0)
			aeth__warn("VM %s: %s", r->id, aeth_error_last());
		r->deleted = true;
		aeth__vm_release(w, r, true);
		return;
	}

	if (expired) {
		char when[32];
		time_t t = (time_t)(aeth_vm_expires_ms(r->vm) / 1000);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(why, sizeof(why), "expired: its lifetime (ttl) ended at %s",
			 when);
	} else {
		snprintf(why, sizeof(why), "its VMM process (pid %d) exited "
			 "unexpectedly", aeth_vm_pid(r->vm));
	}
	/* Kill first, without the lock: a command running in it ends at
	 * once (its channel closes), so the lock comes free. */
	aeth__vm_fail(r->vm, why);
	pthread_rwlock_wrlock(&r->lock);
	if (aeth_vm_delete(r->vm) == 0)
		r->deleted = true;
	else
		aeth__warn("VM %s: %s", r->id, aeth_error_last());
	write_row(rec, u, r->id, expired ? "deleted" : "failed", why);
	aeth__worker_say(w, NULL, "%s VM %s: %s", expired ? "⌛" : "✗", r->id, why);
	r->deleted = true;
	aeth__vm_release(w, r, true);
}

/* Its own queue connection (for the registry and dead workers' queues). */
static aeth_queue *open_queue(aeth_worker *w)
{
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;

	qo.url = w->redis_url;
	qo.ns = w->redis_ns;
	qo.worker_id = w->id;
	qo.lease_ms = w->lease_ms;
	return aeth_queue_open(&q, &qo) == 0 ? q : NULL;
}

void *aeth__janitor_main(void *arg)
{
	aeth_worker *w = arg;
	aeth__rec *rec = NULL;
	aeth_queue *q = NULL;
	bool rec_failing = false;
	unsigned int tick = 0;
	unwritten_rows *u = calloc(1, sizeof(*u)); /* NULL: warn instead */

	while (!atomic_load(&w->stopping)) {
		aeth__vmref *todo[JANITOR_BATCH];
		size_t n;

		aeth__worker_nap(w, JANITOR_TICK_MS);
		if (atomic_load(&w->stopping))
			break;
		if (!rec && aeth__rec_open(&rec, w->database_url) != 0) {
			rec = NULL;
			if (!rec_failing)
				aeth__warn("janitor: %s (expired and dead VMs are "
					   "ended; their rows are written once "
					   "PostgreSQL answers)", aeth_error_last());
			rec_failing = true;
		} else {
			rec_failing = false;
		}
		if (rec && u && u->n)
			write_unwritten(rec, u);
		n = collect(w, todo, JANITOR_BATCH);
		for (size_t i = 0; i < n; i++)
			end_vm(w, rec, u, todo[i]);
		if (rec && ++tick % ADOPT_EVERY_TICKS == 0 && (q || (q = open_queue(w))) &&
		    aeth__worker_adopt(w, rec, q) == AETH_EUNAVAILABLE) {
			aeth_queue_free(q); /* reconnect next time */
			q = NULL;
		}
	}
	if (u && u->n)
		aeth__warn("worker %s stops with %zu VM rows unwritten (PostgreSQL "
			   "away); a restarted worker reconciles them", w->id, u->n);
	free(u);
	aeth_queue_free(q);
	aeth__rec_free(rec);
	return NULL;
}
