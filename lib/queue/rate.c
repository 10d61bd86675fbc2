/*
 * lib/queue/rate.c - a tenant's requests-per-second bucket and its
 * streams' count in Redis, shared by the gateways (queue_rate.h).
 */
#include <stdio.h>
#include <string.h>

#include "queue_internal.h"
#include "queue_rate.h"

/* The key "{<ns>:tenant:<tenant>}:<suffix>". */
static int tenant_key(aeth_queue *q, char key[AETH__Q_KEY_MAX],
		      const char *tenant, const char *suffix)
{
	char who[80];

	/* tenant names are 1..64 of [a-z0-9_.-] (the store checks them);
	 * a '}' would move the hash tag */
	if (!tenant || !*tenant || strlen(tenant) > 64 || strchr(tenant, '}'))
		return aeth__error_set(AETH_EINVALID, "bad tenant name \"%.64s\" "
				       "for a shared limit", tenant ? tenant : "");
	snprintf(who, sizeof(who), "tenant:%s", tenant);
	return aeth__q_key(q, key, AETH__Q_KEY_MAX, who, suffix);
}

/* Run `script` and read its {flag, n} answer: flag == 1 (1 or 0), *n
 * (from 0 to `max`), or a negative error. */
static int flag_and_count(aeth_queue *q, int script, int argc,
			  const char **argv, const char *what,
			  unsigned int max, unsigned int *n)
{
	redisReply *r = NULL;
	int rc;

	if ((rc = aeth__q_script(q, script, 1, argc, argv, NULL, &r)) != 0)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->integer < 0) {
		rc = aeth__q_bad_reply(q, what, r);
	} else {
		rc = r->element[0]->integer == 1;
		*n = r->element[1]->integer > (long long)max ? max
			: (unsigned int)r->element[1]->integer;
	}
	freeReplyObject(r);
	return rc;
}

int aeth__queue_rate_take(aeth_queue *q, const char *tenant, unsigned int rps,
			  unsigned int *retry_ms)
{
	char key[AETH__Q_KEY_MAX], rate[16];
	const char *argv[2] = {key, rate};
	int rc;

	*retry_ms = 0;
	if ((rc = tenant_key(q, key, tenant, "rps")) != 0)
		return rc;
	if (rps == 0)
		return 1;
	snprintf(rate, sizeof(rate), "%u", rps);
	return flag_and_count(q, AETH__LUA_RATE, 2, argv, "rate limit", 3600000u,
			      retry_ms);
}

int aeth__queue_slots_set(aeth_queue *q, const char *tenant, const char *gw_id,
			  unsigned int own, unsigned int limit,
			  unsigned int lease_ms, unsigned int *total)
{
	char key[AETH__Q_KEY_MAX], o[16], l[16], m[16];
	const char *argv[5] = {key, gw_id, o, l, m};
	int rc;

	*total = 0;
	if ((rc = tenant_key(q, key, tenant, "streams")) != 0)
		return rc;
	if (!gw_id || !*gw_id || strchr(gw_id, ' '))
		return aeth__error_set(AETH_EINVALID, "bad gateway id for a shared "
				       "count");
	snprintf(o, sizeof(o), "%u", own);
	snprintf(l, sizeof(l), "%u", lease_ms ? lease_ms : 1);
	snprintf(m, sizeof(m), "%u", limit);
	return flag_and_count(q, AETH__LUA_SLOTS, 5, argv, "stream count",
			      1000000u, total);
}
