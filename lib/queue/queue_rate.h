/*
 * lib/queue/queue_rate.h - a tenant's limits that every gateway on one
 * Redis shares: requests per second and streams at once (lib/queue/rate.c;
 * docs/gateway.md "Quotas and rates").
 *
 * The bucket of a tenant is the key "{<ns>:tenant:<tenant>}:rps": one
 * number, kept by rate.lua on Redis's clock, so gateways whose clocks
 * differ still share one limit. The hash tag puts it in one Redis
 * Cluster slot like any queue key; it expires a second after the bucket
 * is full again, so an idle tenant costs nothing.
 */
#ifndef AETH_QUEUE_RATE_H
#define AETH_QUEUE_RATE_H

#include "aetherium/queue.h"

/*
 * Take one token of `tenant`'s bucket of `rps` a second (a burst of
 * `rps`): 1 taken; 0 empty (*retry_ms: until the next token); or a
 * negative error (Redis not reachable: the caller decides what then).
 */
int aeth__queue_rate_take(aeth_queue *q, const char *tenant, unsigned int rps,
			  unsigned int *retry_ms);

/*
 * A tenant's streams on all gateways (gateway.tenant_max_streams): the
 * hash "{<ns>:tenant:<tenant>}:streams", a field per gateway process
 * (`gw_id`) holding its count and a lease of `lease_ms` on Redis's clock.
 * Record that this gateway runs `own` streams of `tenant` (renewing its
 * lease; 0 removes its field) and, with `limit` > 0, check that all
 * gateways' live counts together stay within it: 1 recorded (or within
 * the limit), 0 over it (`own` - 1 recorded: the new one is not), a
 * negative error. *total: all gateways' streams of the tenant.
 */
int aeth__queue_slots_set(aeth_queue *q, const char *tenant, const char *gw_id,
			  unsigned int own, unsigned int limit,
			  unsigned int lease_ms, unsigned int *total);

#endif
