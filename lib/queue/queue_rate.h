/*
 * lib/queue/queue_rate.h - a tenant's requests-per-second limit shared by
 * every gateway on one Redis (lib/queue/rate.c; docs/gateway.md "Quotas
 * and rates").
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

#endif
