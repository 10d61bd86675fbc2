/*
 * lib/gateway/auth.c - who is asking and how much they may: API keys
 * (made from getrandom(), kept as their SHA-256 through nettle, Debian's
 * libnettle that GnuTLS is built on), per-tenant requests per second (a
 * token bucket the gateways share in Redis, this process's own while
 * Redis is out of reach), per-tenant limits read from the tenants table
 * (cached for 5 s), and the admin calls of aeth-gateway keys / tenants.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <nettle/sha2.h>


#include "aetherium/unstable/gateway.h"
#include "gateway/gateway_internal.h"
#include "internal.h"
#include "metrics/metrics.h"
#include "queue/queue_rate.h"

#define KEY_BYTES 32
#define KEY_PREFIX "aeth_"
#define KEY_MAX 128        /* longer Authorization values are refused */
#define LIMITS_KEEP_MS 5000
#define SHARED_DOWN_MS 1000 /* on the local counts after Redis failed */

static void sha256_hex(const char *s, size_t len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t d[SHA256_DIGEST_SIZE];
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, len, (const uint8_t *)s);
	sha256_digest(&ctx, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[64] = 0;
}

/* base64url without padding: 32 bytes -> 43 characters */
static void b64url(const uint8_t *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				"0123456789-_";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = t[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = t[(acc << (6 - bits)) & 63];
	out[o] = 0;
}

/* ---- per request ---------------------------------------------------------- */

int aeth__gw_limits(aeth__gw *gw, aeth_store *s, const char *tenant,
		    aeth__tenant_limits *out)
{
	int rc = aeth__store_tenant_limits(s, tenant, out);

	if (rc == AETH_ENOTFOUND) {
		out->max_vms = out->max_vcpus = out->max_memory_mb = -1;
		out->max_rps = -1;
		aeth_error_clear();
	} else if (rc != 0) {
		return rc;
	}
	if (out->max_vms < 0)
		out->max_vms = gw->quota_vms;
	if (out->max_vcpus < 0)
		out->max_vcpus = gw->quota_vcpus;
	if (out->max_memory_mb < 0)
		out->max_memory_mb = gw->quota_memory_mb;
	if (out->max_rps < 0)
		out->max_rps = gw->quota_rps;
	return 0;
}

aeth__gw_bucket *aeth__gw_bucket_of(aeth__gw *gw, const char *tenant)
{
	for (size_t i = 0; i < gw->nbuckets; i++)
		if (!strcmp(gw->buckets[i].tenant, tenant))
			return &gw->buckets[i];
	if (gw->nbuckets == gw->capbuckets) {
		size_t cap = gw->capbuckets ? 2 * gw->capbuckets : 16;
		aeth__gw_bucket *b = realloc(gw->buckets, cap * sizeof(*b));

		if (!b)
			return NULL;
		gw->buckets = b;
		gw->capbuckets = cap;
	}
	memset(&gw->buckets[gw->nbuckets], 0, sizeof(*gw->buckets));
	snprintf(gw->buckets[gw->nbuckets].tenant, 65, "%s", tenant);
	return &gw->buckets[gw->nbuckets++];
}

/* Newly read limits into `b` (under gw->lock). */
static void set_limits(aeth__gw_bucket *b, const aeth__tenant_limits *lim,
		       int64_t now)
{
	/* a new limit starts with a full burst */
	if (b->lim_read_ms == 0 || lim->max_rps != b->lim.max_rps) {
		b->tokens = lim->max_rps;
		b->refill_ms = now;
		b->shared_empty_until_ms = 0;
	}
	b->lim = *lim;
	b->lim_read_ms = now;
}

/*
 * Take one token of `b`, this process's bucket of a tenant (max_rps per
 * second, a burst of max_rps): 0, or 1 when empty. Under gw->lock.
 */
static int local_take(aeth__gw_bucket *b, int64_t now)
{
	double rate = b->lim.max_rps;

	if (b->refill_ms)
		b->tokens += rate * (double)(now - b->refill_ms) / 1000.0;
	if (b->tokens > rate)
		b->tokens = rate;
	b->refill_ms = now;
	if (b->tokens < 1.0)
		return 1;
	b->tokens -= 1.0;
	return 0;
}

void aeth__gw_shared_answered(aeth__gw *gw, int rc)
{
	pthread_mutex_lock(&gw->lock);
	if (rc < 0) {
		gw->shared_down_until_ms = aeth__now_ms() + SHARED_DOWN_MS;
		if (!gw->shared_down)
			aeth__warn("gateway: the shared limits are out of reach (%s): "
				   "each gateway counts max_rps and "
				   "tenant_max_streams on its own until Redis "
				   "answers", aeth_error_last());
		gw->shared_down = true;
	} else if (gw->shared_down) {
		gw->shared_down = false;
		aeth__warn("gateway: Redis answers again: max_rps and "
			   "tenant_max_streams are shared by the gateways again");
	}
	pthread_mutex_unlock(&gw->lock);
	if (rc < 0)
		aeth_error_clear();
}

bool aeth__gw_shared_usable(aeth__gw *gw)
{
	bool up;

	pthread_mutex_lock(&gw->lock);
	up = aeth__now_ms() >= gw->shared_down_until_ms;
	pthread_mutex_unlock(&gw->lock);
	return up;
}

/*
 * The bucket every gateway on this Redis shares (queue_rate.h): 0 taken,
 * 1 empty (*retry_s), or -1: Redis did not answer, use the local bucket.
 * After a failure the gateway stays on its own buckets for
 * SHARED_DOWN_MS before it asks Redis again, so that an outage costs one
 * connect timeout a second, not one per request. Once Redis said the
 * bucket is empty until some time, requests before then are refused
 * without asking: only time adds tokens, so Redis would say so again (a
 * flood over the limit costs no round trips).
 */
static int shared_take(aeth__gw *gw, aeth__gw_conn *c, const char *tenant,
		       int rps, unsigned int *retry_s)
{
	unsigned int retry_ms = 0;
	int64_t now = aeth__now_ms(), empty_ms = 0;
	aeth__gw_bucket *b;
	int rc;

	if (!aeth__gw_shared_usable(gw))
		return -1;
	pthread_mutex_lock(&gw->lock);
	if ((b = aeth__gw_bucket_of(gw, tenant)))
		empty_ms = b->shared_empty_until_ms - now;
	pthread_mutex_unlock(&gw->lock);
	if (empty_ms > 0) {
		*retry_s = (unsigned int)((empty_ms + 999) / 1000);
		return 1;
	}
	rc = aeth__queue_rate_take(aeth__gw_queue(c), tenant, (unsigned int)rps,
				   &retry_ms);
	aeth__gw_shared_answered(gw, rc);
	if (rc < 0)
		return -1;
	pthread_mutex_lock(&gw->lock);
	if (rc == 0 && (b = aeth__gw_bucket_of(gw, tenant)))
		b->shared_empty_until_ms = now + retry_ms;
	pthread_mutex_unlock(&gw->lock);
	*retry_s = retry_ms > 1000 ? (retry_ms + 999) / 1000 : 1;
	return rc == 1 ? 0 : 1;
}

/*
 * Take one token of `tenant`'s requests per second: from the bucket the
 * gateways share in Redis, or, when Redis does not answer, from this
 * process's own (aeth_gateway_rate_limit_fallbacks_total counts those). 0,
 * or 1 when empty (the limit to *limit, the seconds to wait to *retry_s).
 * The limits are re-read every 5 s, so a change by aeth-gateway tenants
 * takes effect within that.
 */
static int rate_take(aeth__gw *gw, aeth__gw_conn *c, const char *tenant,
		     int *limit, unsigned int *retry_s)
{
	aeth_store *s = aeth__gw_store(c);
	aeth__tenant_limits lim;
	aeth__gw_bucket *b;
	int64_t now = aeth__now_ms();
	bool stale;
	int rc = 0, rps;

	*retry_s = 1;
	pthread_mutex_lock(&gw->lock);
	b = aeth__gw_bucket_of(gw, tenant);
	stale = !b || now - b->lim_read_ms > LIMITS_KEEP_MS;
	pthread_mutex_unlock(&gw->lock);
	if (!b)
		return aeth__error_oom();
	if (stale && (rc = aeth__gw_limits(gw, s, tenant, &lim)) != 0)
		return rc;
	pthread_mutex_lock(&gw->lock);
	/* again: another thread may have grown (moved) the table meanwhile */
	if ((b = aeth__gw_bucket_of(gw, tenant)) && stale)
		set_limits(b, &lim, now);
	rps = *limit = b ? b->lim.max_rps : 0;
	pthread_mutex_unlock(&gw->lock);
	if (!b)
		return aeth__error_oom();
	if (rps <= 0) /* 0: no limit */
		return 0;
	if ((rc = shared_take(gw, c, tenant, rps, retry_s)) >= 0)
		return rc;
	aeth__metric_inc(AETH__M_GW_RATE_FALLBACKS, NULL, NULL);
	pthread_mutex_lock(&gw->lock);
	if ((b = aeth__gw_bucket_of(gw, tenant)))
		rc = local_take(b, aeth__now_ms());
	pthread_mutex_unlock(&gw->lock);
	*retry_s = 1;
	return b ? rc : aeth__error_oom();
}

/* ---- refused keys per client address -------------------------------------- */

/*
 * The address a client's failures count against: its IPv4 address (also
 * when mapped into IPv6), its IPv6 /64 (one host usually has a whole /64
 * to pick from), "unix".
 */
static void client_addr(const char *peer, char out[64])
{
	char host[INET6_ADDRSTRLEN + 1];
	struct in6_addr a6;
	const char *end;
	size_t n;

	if (peer[0] == '[' && (end = strchr(peer, ']')) &&
	    (n = (size_t)(end - peer - 1)) < sizeof(host)) {
		memcpy(host, peer + 1, n);
		host[n] = 0;
		if (inet_pton(AF_INET6, host, &a6) == 1) {
			/* an IPv4 client of a dual-stack socket (lib/http sets
			 * IPV6_V6ONLY today, so only if that changes): its own */
			if (IN6_IS_ADDR_V4MAPPED(&a6)) {
				inet_ntop(AF_INET, a6.s6_addr + 12, host,
					  sizeof(host));
				snprintf(out, 64, "%s", host);
				return;
			}
			memset(a6.s6_addr + 8, 0, 8);
			inet_ntop(AF_INET6, &a6, host, sizeof(host));
			snprintf(out, 64, "%s/64", host);
			return;
		}
	}
	end = strrchr(peer, ':');
	n = end ? (size_t)(end - peer) : strlen(peer);
	snprintf(out, 64, "%.*s", (int)(n < 63 ? n : 63), peer);
}

/* Under gw->lock: the bucket of `addr`, refilled to now; with `make`, a
 * full one made for an address without (the stalest entry goes). */
static aeth__gw_anon *anon_bucket(aeth__gw *gw, const char *addr, bool make)
{
	int64_t now = aeth__now_ms();
	aeth__gw_anon *a = NULL, *stalest = &gw->anon[0];
	double rate = gw->unauth_rps;

	/* the used slots only: while no key was refused, nothing to scan */
	for (size_t i = 0; i < gw->nanon && !a; i++) {
		if (!strcmp(gw->anon[i].addr, addr))
			a = &gw->anon[i];
		else if (gw->anon[i].refill_ms < stalest->refill_ms)
			stalest = &gw->anon[i];
	}
	if (!a && !make)
		return NULL;
	if (!a) {
		a = gw->nanon < AETH__GW_ANON_MAX ? &gw->anon[gw->nanon++] : stalest;
		snprintf(a->addr, sizeof(a->addr), "%s", addr);
		a->tokens = rate;
		a->refill_ms = now;
	}
	a->tokens += rate * (double)(now - a->refill_ms) / 1000.0;
	if (a->tokens > rate)
		a->tokens = rate;
	a->refill_ms = now;
	return a;
}

/* Has this client spent its refused keys? Then 429 and true. */
static bool anon_over(aeth__gw *gw, const aeth__http_request *req,
		      aeth__http_response *res)
{
	aeth__gw_anon *a;
	char addr[64];
	bool over;

	if (!gw->unauth_rps)
		return false;
	client_addr(req->peer, addr);
	pthread_mutex_lock(&gw->lock);
	a = anon_bucket(gw, addr, false);
	over = a && a->tokens < 1.0;
	pthread_mutex_unlock(&gw->lock);
	if (!over)
		return false;
	aeth__metric_inc(AETH__M_GW_REFUSALS, "unauthenticated_rps", NULL);
	aeth__http_respond_header(res, "Retry-After", "1");
	aeth__http_respond_error(res, 429, "rate_limited", "too many requests "
				 "without a valid API key from %s: over the limit "
				 "of %u per second (gateway.unauthenticated_rps)",
				 addr, gw->unauth_rps);
	return true;
}

/* Answer 401 and count it against the client's address. */
static void refuse_key(aeth__gw *gw, const aeth__http_request *req,
		       aeth__http_response *res, const char *reason,
		       const char *msg)
{
	char addr[64];

	aeth__metric_inc(AETH__M_GW_AUTH_FAILURES, reason, NULL);
	if (gw->unauth_rps) {
		aeth__gw_anon *a;

		client_addr(req->peer, addr);
		pthread_mutex_lock(&gw->lock);
		if ((a = anon_bucket(gw, addr, true)) && a->tokens >= 1.0)
			a->tokens -= 1.0;
		pthread_mutex_unlock(&gw->lock);
	}
	aeth__http_respond_header(res, "WWW-Authenticate", "Bearer");
	aeth__http_respond_error(res, 401, "unauthorized", "%s", msg);
}

/* ---- authentication ------------------------------------------------------- */

int aeth__gw_begin(aeth__gw_ctx *ctx, aeth__gw *gw,
		   const aeth__http_request *req, aeth__http_response *res)
{
	const char *auth = aeth__http_header(req, "Authorization");
	aeth__apikey key;
	char hex[65], retry[16];
	unsigned int retry_s = 1;
	int rc, limit = 0;

	memset(ctx, 0, sizeof(*ctx));
	ctx->gw = gw;
	ctx->req = req;
	ctx->res = res;
	/* before the key is looked at: a client that spent its refusals
	 * learns nothing more, right key or wrong, until its bucket refills */
	if (anon_over(gw, req, res))
		return 1;
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
	    strlen(auth + 7) > KEY_MAX || strncmp(auth + 7, KEY_PREFIX, 5) != 0) {
		refuse_key(gw, req, res, auth ? "malformed" : "missing",
			   "give an API key: "
			   "Authorization: Bearer aeth_... (aeth-gateway keys "
			   "create makes one)");
		return 1;
	}
	sha256_hex(auth + 7, strlen(auth + 7), hex);
	if (!(ctx->conn = aeth__gw_conn_get(gw, false, 2000))) {
		aeth__gw_fail(ctx, AETH_EBUSY);
		return 1;
	}
	rc = aeth__store_key_find(aeth__gw_store(ctx->conn), hex, &key);
	if (rc == AETH_ENOTFOUND) {
		aeth__gw_end(ctx);
		refuse_key(gw, req, res, "unknown", "the API key is not known or "
			   "was revoked: check that the whole key is sent; an "
			   "operator makes a new one with aeth-gateway keys "
			   "create");
		return 1;
	}
	if (rc == 0) {
		snprintf(ctx->who.tenant, sizeof(ctx->who.tenant), "%s", key.tenant);
		snprintf(ctx->who.key_prefix, sizeof(ctx->who.key_prefix), "%s",
			 key.prefix);
		ctx->who.operator_ = key.operator_;
		rc = rate_take(gw, ctx->conn, key.tenant, &limit, &retry_s);
	}
	if (rc == 1) {
		aeth__gw_end(ctx);
		aeth__metric_inc(AETH__M_GW_REFUSALS, "max_rps", NULL);
		snprintf(retry, sizeof(retry), "%u", retry_s);
		aeth__http_respond_header(res, "Retry-After", retry);
		aeth__http_respond_error(res, 429, "rate_limited", "tenant %s is over "
					 "its limit of %d requests per second (max_rps)",
					 key.tenant, limit);
		return 1;
	}
	if (rc != 0) {
		aeth__gw_fail(ctx, rc);
		aeth__gw_end(ctx);
		return 1;
	}
	return 0;
}

void aeth__gw_end(aeth__gw_ctx *ctx)
{
	aeth__gw_conn_put(ctx->gw, ctx->conn);
	ctx->conn = NULL;
	if (ctx->stream_slot)
		aeth__gw_stream_release(ctx->gw, ctx->who.tenant);
	ctx->stream_slot = false;
}

/* ---- admin (aeth-gateway keys, tenants) ----------------------------------- */

static int admin_store(aeth_store **s, const aeth_config *cfg)
{
	const char *url = NULL;
	int rc;

	if (aeth_config_get_string(&url, cfg, "database.url") != 0 || !url || !*url)
		url = NULL;
	if ((rc = aeth_store_open(s, url)) != 0)
		return rc;
	if ((rc = aeth_store_migrate(*s)) != 0) {
		aeth_store_free(*s);
		*s = NULL;
	}
	return rc;
}

int aeth_gateway_key_create(char **key_out, char id_out[37],
			    const aeth_config *cfg, const char *tenant,
			    const char *name, int operator_key)
{
	uint8_t raw[KEY_BYTES];
	char key[sizeof(KEY_PREFIX) + 64], hex[65];
	aeth__apikey k;
	aeth_store *s = NULL;
	int rc;

	if (!key_out || !cfg)
		return aeth__error_set(AETH_EINVALID, "aeth_gateway_key_create: NULL "
				       "argument");
	*key_out = NULL;
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return aeth__error_set(AETH_EIO, "getrandom: %s", strerror(errno));
	memcpy(key, KEY_PREFIX, 5);
	b64url(raw, sizeof(raw), key + 5);
	sha256_hex(key, strlen(key), hex);
	memset(&k, 0, sizeof(k));
	snprintf(k.tenant, sizeof(k.tenant), "%s", tenant ? tenant : "");
	snprintf(k.name, sizeof(k.name), "%s", name ? name : "");
	memcpy(k.prefix, key, 12); /* "aeth_" + 7: tells keys apart, gives nothing */
	k.prefix[12] = 0;
	k.operator_ = operator_key != 0;
	if ((rc = admin_store(&s, cfg)) == 0)
		rc = aeth__store_key_insert(s, &k, hex);
	aeth_store_free(s);
	if (rc == 0 && !(*key_out = strdup(key)))
		rc = aeth__error_oom();
	if (rc == 0 && id_out)
		memcpy(id_out, k.id, 37);
	memset(raw, 0, sizeof(raw));
	memset(key, 0, sizeof(key));
	return rc;
}

static void add_ms(cJSON *o, const char *k, int64_t ms)
{
	if (ms)
		cJSON_AddNumberToObject(o, k, (double)ms);
	else
		cJSON_AddNullToObject(o, k);
}

int aeth_gateway_key_list(char **json_out, const aeth_config *cfg)
{
	aeth__apikey *keys = NULL;
	aeth_store *s = NULL;
	size_t n = 0;
	cJSON *a;
	int rc;

	if (!json_out || !cfg)
		return aeth__error_set(AETH_EINVALID, "aeth_gateway_key_list: NULL "
				       "argument");
	*json_out = NULL;
	if ((rc = admin_store(&s, cfg)) == 0)
		rc = aeth__store_key_list(s, &keys, &n);
	aeth_store_free(s);
	if (rc != 0)
		return rc;
	a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "id", keys[i].id);
		cJSON_AddStringToObject(o, "tenant", keys[i].tenant);
		cJSON_AddStringToObject(o, "prefix", keys[i].prefix);
		cJSON_AddStringToObject(o, "name", keys[i].name);
		cJSON_AddBoolToObject(o, "operator", keys[i].operator_);
		add_ms(o, "created_at_ms", keys[i].created_at_ms);
		add_ms(o, "revoked_at_ms", keys[i].revoked_at_ms);
		cJSON_AddItemToArray(a, o);
	}
	free(keys);
	*json_out = a ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return *json_out ? 0 : aeth__error_oom();
}

int aeth_gateway_key_revoke(const aeth_config *cfg, const char *id_or_prefix)
{
	aeth_store *s = NULL;
	int rc;

	if (!cfg)
		return aeth__error_set(AETH_EINVALID, "aeth_gateway_key_revoke: NULL "
				       "argument");
	if ((rc = admin_store(&s, cfg)) == 0)
		rc = aeth__store_key_revoke(s, id_or_prefix, NULL);
	aeth_store_free(s);
	return rc;
}

int aeth_gateway_tenant_limits(const aeth_config *cfg, const char *tenant,
			       int max_vms, int max_vcpus, int max_memory_mb,
			       int max_rps)
{
	aeth__tenant_limits l = {max_vms, max_vcpus, max_memory_mb, max_rps};
	aeth_store *s = NULL;
	int rc;

	if (!cfg)
		return aeth__error_set(AETH_EINVALID, "aeth_gateway_tenant_limits: "
				       "NULL argument");
	if ((rc = admin_store(&s, cfg)) == 0)
		rc = aeth__store_tenant_set_limits(s, tenant, &l);
	aeth_store_free(s);
	return rc;
}
