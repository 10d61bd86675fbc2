/*
 * lib/gateway/metrics.c - aeth-gateway's metrics (docs/metrics.md): the
 * count and time of each request by route template, the gauges of open
 * connections and streams read from lib/http at scrape time, and the
 * metrics.listen server that serves them, as a worker's does: a listener
 * of its own (loopback unless metrics.allow_remote), off when unset, so
 * that the API's port and its TLS and keys stay the API's alone.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aetherium/config.h"
#include "gateway/gateway_internal.h"
#include "internal.h"
#include "metrics/metrics.h"

double aeth__gw_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A method as a label: the ones HTTP defines, "other" for the rest (the
 * method is the client's text: it must not grow the label set). */
static const char *method_label(const char *m)
{
	static const char *const known[] = {"GET", "POST", "PUT", "DELETE",
					    "PATCH", "HEAD", "OPTIONS"};

	for (size_t i = 0; m && i < AETH__ARRAY_LEN(known); i++)
		if (!strcmp(m, known[i]))
			return known[i];
	return "other";
}

static void count(const char *method, const char *route, int status)
{
	static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	/* a handler that answered nothing gets lib/http's 500 */
	const char *cls = status >= 100 && status < 600 ? classes[status / 100 - 1]
							: "5xx";

	aeth__metric_add3(AETH__M_GW_REQUESTS, 1.0, method_label(method), route,
			  cls);
}

void aeth__gw_metrics_answered(const char *method, const char *route,
			       int status, double t0)
{
	count(method, route, status);
	aeth__metric_observe(AETH__M_GW_REQUEST_SECONDS, aeth__gw_clock() - t0,
			     route, NULL);
}

void aeth__gw_metrics_request(const char *method, const char *route,
			      const aeth__http_response *res, double t0)
{
	if (!aeth__http_response_is_later(res))
		aeth__gw_metrics_answered(method, route,
					  aeth__http_response_status(res), t0);
}

void aeth__gw_metrics_unrouted(const char *method, int status, void *gw)
{
	(void)gw;
	count(method, "unmatched", status);
}

static void collect(void *userdata)
{
	aeth__gw *gw = userdata;
	unsigned int conns = 0, streams = 0;

	aeth__http_server_load(gw->srv, &conns, &streams);
	aeth__metric_add(AETH__M_GW_CONNECTIONS, conns, NULL, NULL);
	aeth__metric_add(AETH__M_GW_STREAMS, streams, NULL, NULL);
}

int aeth__gw_metrics_start(aeth__gw *gw)
{
	const aeth__http_route routes[] = {{"GET", "/metrics", aeth__metrics_serve,
					    (void *)(intptr_t)AETH__PART_GATEWAY}};
	aeth__http_config hc = {0};
	const char *listen = NULL;
	bool remote = false;
	int rc;

	if ((rc = aeth__metrics_collector_add(collect, gw)) != 0)
		return rc;
	gw->collecting = true;
	if (aeth_config_get_string(&listen, gw->cfg, "metrics.listen") != 0 ||
	    !listen || !*listen || !strcmp(listen, "off"))
		return 0;
	aeth_config_get_bool(&remote, gw->cfg, "metrics.allow_remote");
	hc.listen = listen;
	hc.allow_remote = remote;
	hc.routes = routes;
	hc.n_routes = AETH__ARRAY_LEN(routes);
	hc.max_body_bytes = 4096;
	hc.timeout_s = 10;
	hc.max_conns = 16;
	hc.threads = 1;
	hc.what = "gateway metrics (metrics.listen)";
	return aeth__http_server_start(&gw->metrics_srv, &hc);
}

void aeth__gw_metrics_stop(aeth__gw *gw)
{
	aeth__http_server_free(gw->metrics_srv);
	gw->metrics_srv = NULL;
	if (gw->collecting)
		aeth__metrics_collector_remove(collect, gw);
	gw->collecting = false;
}
