/*
 * lib/worker/metrics.c - the worker's metrics endpoint (metrics.listen:
 * GET /metrics in the Prometheus text format, GET /healthz) and its
 * collector: the gauges read at scrape time from the worker's VM table
 * and slots, and the depth of its queues read from Redis (with a 1 s
 * deadline, cached 2 s so that several scrapers cost Redis little).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aetherium/config.h"
#include "metrics/metrics.h"
#include "worker/pool.h"
#include "worker/worker_internal.h"
#ifdef AETH_HAVE_HTTP
#include "http/http.h"
#endif

#define DEPTH_CACHE_MS 2000
#define DEPTH_TIMEOUT_MS 1000

struct aeth__worker_metrics {
	aeth_worker *w;
	pthread_mutex_t mu; /* the Redis handle and the cache */
	aeth_queue *q;
	int64_t depth_at;   /* aeth__now_ms() of the cached depths */
	bool depth_ok;
	aeth_queue_counts *depth; /* one per source queue */
#ifdef AETH_HAVE_HTTP
	aeth__http_server *srv;
#endif
};

static void read_depths(struct aeth__worker_metrics *m)
{
	aeth_worker *w = m->w;
	int64_t now = aeth__now_ms();
	bool ok = true;

	if (m->depth_ok && now - m->depth_at < DEPTH_CACHE_MS)
		return;
	if (!m->q) {
		aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
		qo.url = w->redis_url;
		qo.ns = w->redis_ns;
		qo.worker_id = w->id;
		qo.connect_timeout_ms = DEPTH_TIMEOUT_MS;
		qo.command_timeout_ms = DEPTH_TIMEOUT_MS;
		if (aeth_queue_open(&m->q, &qo) != 0)
			m->q = NULL;
	}
	for (size_t i = 0; ok && m->q && i < w->nsources; i++) {
		aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
		if (aeth_queue_count(&c, m->q, w->sources[i].name) != 0)
			ok = false;
		else
			m->depth[i] = c;
	}
	if (!m->q || !ok) {
		aeth__metric_inc(AETH__M_QUEUE_SCRAPE_ERRORS, NULL, NULL);
		aeth__debug("worker %s: metrics: queue depths: %s", w->id,
			    aeth_error_last());
		return; /* the last values stay */
	}
	m->depth_ok = true;
	m->depth_at = now;
}

static void collect(void *userdata)
{
	struct aeth__worker_metrics *m = userdata;
	aeth_worker *w = m->w;
	double running = 0, procs = 0, memory = 0, busy = 0;

	pthread_mutex_lock(&w->vm_mu);
	for (aeth__vmref *r = w->vms; r; r = r->next) {
		int pid;
		if (r->deleted)
			continue;
		pid = aeth_vm_pid(r->vm);
		if (pid > 0 && kill(pid, 0) == 0) {
			procs++;
			if (!r->ending) {
				running++;
				memory += (double)aeth_vm_memory_mb(r->vm) * 1048576.0;
			}
		}
	}
	pthread_mutex_unlock(&w->vm_mu);
	for (unsigned int i = 0; w->slots && i < w->concurrency; i++) {
		aeth__slot *s = &w->slots[i];
		pthread_mutex_lock(&s->mu);
		for (size_t j = 0; j < s->nheld; j++)
			if (s->held[j] == AETH__HELD_RUNNING) {
				busy++;
				break;
			}
		pthread_mutex_unlock(&s->mu);
	}
	aeth__metric_add(AETH__M_VMS_RUNNING, running, NULL, NULL);
	aeth__metric_add(AETH__M_VMM_PROCESSES, procs, NULL, NULL);
	aeth__metric_add(AETH__M_GUEST_MEMORY, memory, NULL, NULL);
	aeth__metric_add(AETH__M_WORKER_SLOTS, w->concurrency, NULL, NULL);
	aeth__metric_add(AETH__M_WORKER_BUSY, busy, NULL, NULL);
	aeth__pools_collect(w);

	pthread_mutex_lock(&m->mu);
	read_depths(m);
	for (size_t i = 0; m->depth_ok && i < w->nsources; i++)
		for (int st = 0; st < AETH_QUEUE_NSTATES; st++)
			aeth__metric_add(AETH__M_QUEUE_TASKS,
					 (double)m->depth[i].n[st],
					 w->sources[i].name,
					 aeth_queue_state_name((aeth_queue_state)st));
	pthread_mutex_unlock(&m->mu);
}

#ifdef AETH_HAVE_HTTP
static void h_healthz(const aeth__http_request *req, aeth__http_response *res,
		      void *userdata)
{
	struct aeth__worker_metrics *m = userdata;
	aeth_worker *w = m->w;
	int state;
	char body[256];

	(void)req;
	pthread_mutex_lock(&w->mu);
	state = w->run_state;
	pthread_mutex_unlock(&w->mu);
	snprintf(body, sizeof(body), "{\"worker\":\"%s\",\"state\":\"%s\"}\n",
		 w->id, state == AETH__RUN_READY ?
		 (atomic_load(&w->stopping) ? "stopping" : "ready") :
		 state == AETH__RUN_ENDED ? "ended" : "starting");
	aeth__http_respond(res, state == AETH__RUN_READY &&
			   !atomic_load(&w->stopping) ? 200 : 503,
			   "application/json", body, strlen(body));
}
#endif

int aeth__worker_metrics_start(aeth_worker *w)
{
	struct aeth__worker_metrics *m;
	const char *listen = NULL;
	bool remote = false;
	int rc;

	if (w->metrics)
		return 0;
	if (aeth_config_get_string(&listen, w->cfg, "metrics.listen") != 0 ||
	    !listen || !*listen || strcmp(listen, "off") == 0)
		listen = NULL;
	aeth_config_get_bool(&remote, w->cfg, "metrics.allow_remote");
#ifndef AETH_HAVE_HTTP
	if (listen)
		return aeth__error_set(AETH_EINVALID, "metrics.listen is %s but "
				       "this libaetherium was built without HTTP "
				       "(libmicrohttpd): install libmicrohttpd-dev "
				       "and rebuild, or unset metrics.listen",
				       listen);
#endif
	m = calloc(1, sizeof(*m));
	if (!m || !(m->depth = calloc(w->nsources ? w->nsources : 1,
				      sizeof(*m->depth)))) {
		free(m);
		return aeth__error_oom();
	}
	m->w = w;
	pthread_mutex_init(&m->mu, NULL);
	if ((rc = aeth__metrics_collector_add(collect, m)) != 0) {
		pthread_mutex_destroy(&m->mu);
		free(m->depth);
		free(m);
		return rc;
	}
	w->metrics = m;
#ifdef AETH_HAVE_HTTP
	if (listen) {
		aeth__http_route routes[] = {
			{"GET", "/metrics", aeth__metrics_serve,
			 (void *)(intptr_t)AETH__PART_WORKER},
			{"GET", "/healthz", h_healthz, m},
		};
		aeth__http_config hc = {0};

		hc.listen = listen;
		hc.allow_remote = remote;
		hc.routes = routes;
		hc.n_routes = 2;
		hc.max_body_bytes = 4096;
		hc.timeout_s = 10;
		hc.max_conns = 16;
		hc.threads = 1;
		hc.what = "worker metrics (metrics.listen)";
		if ((rc = aeth__http_server_start(&m->srv, &hc)) != 0) {
			aeth__worker_metrics_stop(w);
			return rc;
		}
		if (aeth__http_server_port(m->srv) > 0)
			aeth__worker_say(w, NULL, "Metrics on %s (port %d): GET "
					 "/metrics, /healthz", listen,
					 aeth__http_server_port(m->srv));
		else
			aeth__worker_say(w, NULL, "Metrics on %s: GET /metrics, "
					 "/healthz", listen);
	}
#endif
	return 0;
}

int aeth__worker_metrics_port(const aeth_worker *w)
{
#ifdef AETH_HAVE_HTTP
	return w->metrics ? aeth__http_server_port(w->metrics->srv) : 0;
#else
	(void)w;
	return 0;
#endif
}

void aeth__worker_metrics_stop(aeth_worker *w)
{
	struct aeth__worker_metrics *m = w->metrics;

	if (!m)
		return;
#ifdef AETH_HAVE_HTTP
	aeth__http_server_free(m->srv);
#endif
	aeth__metrics_collector_remove(collect, m);
	aeth_queue_free(m->q);
	pthread_mutex_destroy(&m->mu);
	free(m->depth);
	free(m);
	w->metrics = NULL;
}
