/*
 * lib/queue/rate.c - a tenant's requests-per-second bucket in Redis,
 * shared by the gateways (queue_rate.h).
 */
#include <stdio.h>
#include <string.h>

#include "queue_internal.h"
#include "queue_rate.h"

int aeth__queue_rate_take(aeth_queue *q, const char *tenant, unsigned int rps,
			  unsigned int *retry_ms)
{
	char key[AETH__Q_KEY_MAX], who[80], rate[16];
	const char *argv[2] = {key, rate};
	redisReply *r = NULL;
	int rc;

	*retry_ms = 0;
	/* tenant names are 1..64 of [a-z0-9_.-] (the store checks them);
	 * a '}' would move the hash tag */
	if (!tenant || !*tenant || strlen(tenant) > 64 || strchr(tenant, '}'))
		return aeth__error_set(AETH_EINVALID, "bad tenant name for a rate "
				       "limit");
	if (rps == 0)
		return 1;
	snprintf(who, sizeof(who), "tenant:%s", tenant);
	snprintf(rate, sizeof(rate), "%u", rps);
	if ((rc = aeth__q_key(q, key, sizeof(key), who, "rps")) != 0 ||
	    (rc = aeth__q_script(q, AETH__LUA_RATE, 1, 2, argv, NULL, &r)) != 0)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->integer < 0) {
		rc = aeth__q_bad_reply(q, "rate limit", r);
	} else {
		rc = r->element[0]->integer == 1;
		*retry_ms = r->element[1]->integer > 3600000 ? 3600000u
			: (unsigned int)r->element[1]->integer;
	}
	freeReplyObject(r);
	return rc;
}
