/*
 * lib/gateway/slots.c - streams per tenant (gateway.tenant_max_streams)
 * counted across every gateway on one Redis, and per gateway
 * (gateway.max_streams).
 *
 * Each gateway records in Redis how many streams of a tenant it runs,
 * with a lease (queue_rate.h aeth__queue_slots_set): a reservation sends
 * the gateway's count with the new stream and is refused when all
 * gateways' live counts together pass the limit. A stream's end only
 * lowers the count here; the keeper thread writes the counts every
 * SYNC_MS (and renews the leases), so another gateway sees a slot freed
 * within that, this one at once. A gateway that crashed stops renewing:
 * its streams drop out when its lease (LEASE_MS) ends. One gateway's
 * writes are serialized (slots_lock), so a count never overtakes a newer
 * one. Redis out of reach: each gateway counts on its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gateway/gateway_internal.h"
#include "internal.h"
#include "metrics/metrics.h"
#include "queue/queue_rate.h"

#define SYNC_MS 1000
#define LEASE_MS 10000

/* Record this gateway's count of `tenant`'s streams (its local count now)
 * on connection c, checking `limit` (0: no check): as
 * aeth__queue_slots_set(). Under slots_lock. */
static int record(aeth__gw *gw, aeth__gw_conn *c, const char *tenant,
		  unsigned int limit, unsigned int *total)
{
	aeth__gw_bucket *b;
	unsigned int own = 0;
	int rc;

	pthread_mutex_lock(&gw->lock);
	if ((b = aeth__gw_bucket_of(gw, tenant)))
		own = b->streams;
	pthread_mutex_unlock(&gw->lock);
	rc = aeth__queue_slots_set(aeth__gw_queue(c), tenant, gw->id, own, limit,
				   LEASE_MS, total);
	aeth__gw_shared_answered(gw, rc);
	if (rc >= 0) {
		pthread_mutex_lock(&gw->lock);
		if ((b = aeth__gw_bucket_of(gw, tenant)))
			b->streams_recorded = rc == 1 ? own : own - 1;
		pthread_mutex_unlock(&gw->lock);
	}
	return rc;
}

/* One more stream of the caller's tenant in the count of all gateways:
 * 0, or refused (*have: their streams). Redis out of reach: 0 (the local
 * count has decided). */
static int shared_reserve(aeth__gw_ctx *ctx, unsigned int *have)
{
	aeth__gw *gw = ctx->gw;
	int rc;

	if (!ctx->conn || !aeth__gw_shared_usable(gw))
		return 0;
	pthread_mutex_lock(&gw->slots_lock);
	rc = record(gw, ctx->conn, ctx->who.tenant, gw->tenant_max_streams, have);
	pthread_mutex_unlock(&gw->slots_lock);
	return rc == 0 ? 1 : 0;
}

int aeth__gw_stream_reserve(aeth__gw_ctx *ctx)
{
	aeth__gw *gw = ctx->gw;
	aeth__gw_bucket *b;
	const char *which = NULL;
	unsigned int have = 0;

	if (ctx->stream_slot)
		return 0;
	pthread_mutex_lock(&gw->lock);
	b = aeth__gw_bucket_of(gw, ctx->who.tenant);
	if (b && b->streams >= gw->tenant_max_streams)
		which = "tenant_max_streams", have = b->streams;
	else if (b && gw->nstreams >= gw->max_streams)
		which = "max_streams", have = gw->nstreams;
	if (b && !which) {
		b->streams++;
		gw->nstreams++;
		ctx->stream_slot = true;
	}
	pthread_mutex_unlock(&gw->lock);
	if (!b) {
		aeth__gw_fail(ctx, aeth__error_oom());
		return 1;
	}
	if (!which && shared_reserve(ctx, &have) != 0) {
		ctx->stream_slot = false;
		aeth__gw_stream_release(gw, ctx->who.tenant);
		which = "tenant_max_streams";
	}
	if (!which)
		return 0;
	aeth__metric_inc(AETH__M_GW_REFUSALS, which, NULL);
	aeth__http_respond_header(ctx->res, "Retry-After", "1");
	if (!strcmp(which, "max_streams"))
		aeth__http_respond_error(ctx->res, 503, "busy", "the gateway runs "
					 "%u waits and streams already, its limit "
					 "(gateway.max_streams): try again later", have);
	else
		aeth__http_respond_error(ctx->res, 429, "rate_limited", "tenant %s "
					 "runs %u waits and streams already, its limit "
					 "(gateway.tenant_max_streams): end one first",
					 ctx->who.tenant, have);
	return 1;
}

void aeth__gw_stream_release(aeth__gw *gw, const char *tenant)
{
	aeth__gw_bucket *b;

	pthread_mutex_lock(&gw->lock);
	/* the tenant's bucket exists: its reservation made it, and buckets
	 * are never removed */
	if ((b = aeth__gw_bucket_of(gw, tenant)) && b->streams > 0)
		b->streams--;
	if (gw->nstreams > 0)
		gw->nstreams--;
	pthread_mutex_unlock(&gw->lock);
}

/* ---- the keeper ------------------------------------------------------------ */

/* The tenants whose count Redis should hear (streams running, or a count
 * recorded that is now stale): a malloc'd array of names, *n of them. */
static char (*to_record(aeth__gw *gw, size_t *n))[65]
{
	char (*names)[65];

	*n = 0;
	pthread_mutex_lock(&gw->lock);
	names = calloc(gw->nbuckets + 1, sizeof(*names));
	for (size_t i = 0; names && i < gw->nbuckets; i++)
		if (gw->buckets[i].streams > 0 || gw->buckets[i].streams_recorded > 0)
			memcpy(names[(*n)++], gw->buckets[i].tenant, 65);
	pthread_mutex_unlock(&gw->lock);
	return names;
}

/* Write every count that Redis should hear, renewing the leases. */
static void sync_all(aeth__gw *gw)
{
	aeth__gw_conn *c;
	unsigned int total;
	char (*names)[65];
	size_t n;

	if (!aeth__gw_shared_usable(gw) || !(names = to_record(gw, &n)))
		return;
	if (n && (c = aeth__gw_conn_get(gw, true, SYNC_MS))) {
		for (size_t i = 0; i < n; i++) {
			pthread_mutex_lock(&gw->slots_lock);
			int rc = record(gw, c, names[i], 0, &total);
			pthread_mutex_unlock(&gw->slots_lock);
			if (rc < 0)
				break;
		}
		aeth__gw_conn_put(gw, c);
	}
	free(names);
}

static void *keeper(void *arg)
{
	aeth__gw *gw = arg;
	struct timespec until;

	pthread_mutex_lock(&gw->keeper_mu);
	while (!gw->keeper_stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += SYNC_MS / 1000;
		pthread_cond_timedwait(&gw->keeper_cv, &gw->keeper_mu, &until);
		if (gw->keeper_stop)
			break;
		pthread_mutex_unlock(&gw->keeper_mu);
		sync_all(gw);
		aeth_error_clear(); /* this thread's: a failure is logged once */
		pthread_mutex_lock(&gw->keeper_mu);
	}
	pthread_mutex_unlock(&gw->keeper_mu);
	return NULL;
}

int aeth__gw_slots_start(aeth__gw *gw)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[8];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return aeth__error_set(AETH_EIO, "getrandom: cannot make the "
				       "gateway's id");
	for (size_t i = 0; i < sizeof(raw); i++) {
		gw->id[2 * i] = hex[raw[i] >> 4];
		gw->id[2 * i + 1] = hex[raw[i] & 15];
	}
	gw->id[16] = 0;
	pthread_mutex_init(&gw->slots_lock, NULL);
	pthread_mutex_init(&gw->keeper_mu, NULL);
	pthread_cond_init(&gw->keeper_cv, NULL);
	if (pthread_create(&gw->keeper, NULL, keeper, gw) != 0)
		return aeth__error_set(AETH_ERROR, "cannot start the gateway's "
				       "stream count keeper thread");
	gw->keeper_running = true;
	return 0;
}

void aeth__gw_slots_stop(aeth__gw *gw)
{
	if (!gw->keeper_running)
		return;
	pthread_mutex_lock(&gw->keeper_mu);
	gw->keeper_stop = true;
	pthread_cond_signal(&gw->keeper_cv);
	pthread_mutex_unlock(&gw->keeper_mu);
	pthread_join(gw->keeper, NULL);
	gw->keeper_running = false;
	/* the streams have ended (the server stopped first): their counts
	 * go, so other gateways need not wait for this one's lease */
	sync_all(gw);
}
