/*
 * aetherium/unstable/gateway.h - the HTTP API for tenants (aeth-gateway).
 *
 * UNSTABLE: these functions may change or go in any release, without a
 * soname change (lib/aetherium.sym lists them apart). They are what the
 * aeth-gateway program is made of; docs/gateway.md describes the API it
 * serves (and docs/openapi.yaml each route). Define AETH_UNSTABLE before
 * including it, to say you know.
 *
 * The gateway is built only when the library is built with the meson
 * option `http` (libmicrohttpd and nettle); without it every function
 * here returns AETH_EUNAVAILABLE saying so.
 *
 * Threads: an aeth_gateway serves on threads of its own; start and free
 * it from one thread. The key functions open their own connection and
 * may be called from any thread.
 */
#ifndef AETHERIUM_UNSTABLE_GATEWAY_H
#define AETHERIUM_UNSTABLE_GATEWAY_H

#ifndef AETH_UNSTABLE
#error "aetherium/unstable/gateway.h is not a stable API: define AETH_UNSTABLE to use it"
#endif

#include "../common.h"
#include "../config.h"

AETH_BEGIN_DECLS

typedef struct aeth_gateway aeth_gateway;

/**
 * Start serving the API with the gateway.* keys of `cfg` (database.url,
 * redis.url for the connections; docs/config.md). Migrates the database
 * first. *out is the caller's (aeth_gateway_free()). AETH_EINVALID for a
 * refused listen address or TLS files, AETH_EUNAVAILABLE when the address
 * is taken or a server does not answer.
 */
AETH_API int aeth_gateway_start(aeth_gateway **out, const aeth_config *cfg);

/** The TCP port served (useful with gateway.listen port 0), 0 for a
 *  Unix socket. */
AETH_API int aeth_gateway_port(const aeth_gateway *gw);

/** The TCP port of the metrics endpoint (metrics.listen: GET /metrics,
 *  docs/metrics.md), 0 when it is off or on a Unix socket. */
AETH_API int aeth_gateway_metrics_port(const aeth_gateway *gw);

/** Stop serving: streams end, connections close. NULL is accepted. */
AETH_API void aeth_gateway_free(aeth_gateway *gw);

/**
 * Make an API key for `tenant` (made if new; a-z 0-9 _ . -, <= 64) and
 * record its SHA-256. The key, "aeth_" and 43 characters of base64url
 * from 32 bytes of getrandom(), goes to *key_out (the caller's;
 * aeth_free()) and is shown nowhere else: it cannot be read back.
 * `operator_key` nonzero: the key sees and acts on every tenant and may
 * read workers and queues. `name` (may be NULL) is a note for lists.
 * The key's id goes to id_out (may be NULL).
 */
AETH_API int aeth_gateway_key_create(char **key_out, char id_out[37],
				     const aeth_config *cfg, const char *tenant,
				     const char *name, int operator_key);

/** Every key (never the key itself: id, tenant, prefix, name, operator,
 *  created_at, revoked_at) as a JSON array into *json_out (aeth_free()). */
AETH_API int aeth_gateway_key_list(char **json_out, const aeth_config *cfg);

/** Revoke the key with this id, or this prefix when one key has it; from
 *  the next request on, the key is refused (401). AETH_ENOTFOUND. */
AETH_API int aeth_gateway_key_revoke(const aeth_config *cfg,
				     const char *id_or_prefix);

/**
 * Set `tenant`'s limits (made if new): VMs at once, vCPUs and memory of
 * them, requests per second. -1 leaves a limit to the gateway's default
 * (gateway.quota_*); 0 allows no VM (vCPU, memory), and for max_rps
 * means no limit.
 */
AETH_API int aeth_gateway_tenant_limits(const aeth_config *cfg,
					const char *tenant, int max_vms,
					int max_vcpus, int max_memory_mb,
					int max_rps);

AETH_END_DECLS

#endif
