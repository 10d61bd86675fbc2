/*
 * lib/store/conninfo.c - read where and how a PostgreSQL connection
 * string connects (libpq's own parser), for other modules' checks of the
 * store's endpoint; see aeth__store_conninfo_read().
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "internal.h"
#include "store/store_internal.h"

/* The value of `key` in parsed options, else $env (env may be NULL). */
static const char *option(const PQconninfoOption *opts, const char *key,
			  const char *env)
{
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, key) && o->val && *o->val)
			return o->val;
	env = env ? getenv(env) : NULL;
	return env && *env ? env : NULL;
}

static int copy(char **dst, const char *v)
{
	if (v && !(*dst = strdup(v)))
		return aeth__error_oom();
	return 0;
}

int aeth__store_conninfo_read(aeth__store_conninfo *out, const char *url)
{
	PQconninfoOption *opts;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!(opts = PQconninfoParse(aeth__store_url_resolve(url), NULL)))
		return aeth__error_set(AETH_EINVALID, "the PostgreSQL URL does not parse");
	rc = copy(&out->host, option(opts, "host", "PGHOST"));
	rc = rc ? rc : copy(&out->hostaddr, option(opts, "hostaddr", "PGHOSTADDR"));
	rc = rc ? rc : copy(&out->port, option(opts, "port", "PGPORT"));
	rc = rc ? rc : copy(&out->sslmode, option(opts, "sslmode", "PGSSLMODE"));
	rc = rc ? rc : copy(&out->password, option(opts, "password", NULL));
	PQconninfoFree(opts);
	if (rc != 0)
		aeth__store_conninfo_clear(out);
	return rc;
}

void aeth__store_conninfo_clear(aeth__store_conninfo *c)
{
	free(c->host);
	free(c->hostaddr);
	free(c->port);
	free(c->sslmode);
	free(c->password);
	memset(c, 0, sizeof(*c));
}
