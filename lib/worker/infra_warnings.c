/*
 * lib/worker/infra_warnings.c - see infra_warnings.h. How each service is
 * reached comes from endpoints.h; this file decides what is risky and
 * words the warnings and their fixes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "internal.h"
#include "queue/queue_internal.h"
#include "store/store_internal.h"
#include "worker/endpoints.h"
#include "worker/infra_warnings.h"

#define DOC "docs/deploy-credentials.md"
/* Largest config file searched for a password (the loader reads it too). */
#define CONFIG_READ_MAX (1024 * 1024)

typedef struct {
	aeth__infra_warn_cb cb;
	void *ud;
	int count;
} sink;

static void say(sink *s, const char *what, const char *fix, const char *fmt,
		...) AETH__PRINTF(4, 5);

static void say(sink *s, const char *what, const char *fix, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	s->count++;
	if (s->cb)
		s->cb(what, detail, fix, s->ud);
}

static void check_redis(sink *s, const char *url)
{
	aeth__redis_url u;
	aeth__endpoint ep;

	if (!aeth__redis_endpoint(url, &ep) ||
	    aeth__redis_url_parse(aeth__redis_url_resolve(url), &u) != 0)
		return;
	if (!u.password)
		say(s, "redis access", u.kind != AETH__REDIS_SINGLE ?
		    "give the Redis nodes an ACL user (docs/redis-acl.conf) or "
		    "requirepass and put it in the URL: redis-cluster://USER:"
		    "PASSWORD@host:port,... or redis-sentinel://USER:PASSWORD@"
		    "host:port,.../MASTER (a cluster and Sentinel work over TCP "
		    "only); " DOC :
		    "use a Unix socket (unix:///path/redis.sock "
		    "in a directory only the worker's user can enter), or give "
		    "Redis an ACL user or requirepass and put it in the URL: "
		    "redis://USER:PASSWORD@host:port/db; " DOC,
		    "%s is reached over TCP without a password: anything that can "
		    "connect to %s port %u (%s) can read and change every task and "
		    "drive every VM", u.display, ep.host, ep.port,
		    ep.loopback ? "any user or process on this host"
				: "any host on the network path");
	if (!ep.loopback)
		say(s, "redis transport", "run the worker on Redis's host with a Unix "
		    "socket, or reach Redis through a TLS tunnel (stunnel or "
		    "spiped) that listens on 127.0.0.1 here: "
		    "redis://USER:PASSWORD@127.0.0.1:PORT/db; " DOC,
		    "%s is reached over TCP on a non-loopback address in clear "
		    "text: hiredis 0.14 has no TLS, so credentials and every "
		    "payload and result cross the network readable and "
		    "changeable", u.display);
	aeth__redis_url_clear(&u);
}

static void check_postgres(sink *s, const char *conninfo)
{
	aeth__endpoint eps[AETH__PG_HOSTS_MAX];
	const char *mode = aeth__pg_sslmode(conninfo);
	char hosts[1024] = "";
	size_t n = 0, len = 0;
	bool plain, remote = false;

	if (!mode || !aeth__pg_endpoints(conninfo, eps, AETH__ARRAY_LEN(eps), &n))
		return;
	if (!strcmp(mode, "verify-full"))
		return;
	for (size_t i = 0; i < n; i++) {
		if (eps[i].loopback)
			continue;
		remote = true;
		len += (size_t)snprintf(hosts + len, sizeof(hosts) - len, "%s%s:%u",
					len ? ", " : "", eps[i].host, eps[i].port);
		if (len >= sizeof(hosts))
			break;
	}
	if (!remote)
		return;
	plain = strcmp(mode, "require") != 0 && strcmp(mode, "verify-ca") != 0;
	say(s, "postgresql transport", "add sslmode=verify-full and "
	    "sslrootcert=/path/to/ca.crt (the CA that signed the server's "
	    "certificate) to database.url, and a hostssl line in the server's "
	    "pg_hba.conf; " DOC,
	    "PostgreSQL at %s is reached over TCP on a non-loopback address "
	    "with sslmode=%s: %s", hosts, mode, plain ?
	    "the session may travel in clear text and the server is not "
	    "authenticated" : !strcmp(mode, "require") ?
	    "encrypted, but the server's certificate is not verified, so a "
	    "machine in the middle can pose as the server" :
	    "encrypted, but the server's name is not checked against its "
	    "certificate, so any server with a certificate from that CA can "
	    "pose as it");
}

/* The file's first CONFIG_READ_MAX bytes, NUL-terminated; NULL if none. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	if (!(buf = malloc(CONFIG_READ_MAX + 1))) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, CONFIG_READ_MAX, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Is the secret in `url` (the URL as written, or its decoded password)
 * written in `text`? */
static bool holds(const char *text, const char *url, const char *password)
{
	return password && *password &&
	       (strstr(text, password) || strstr(text, url));
}

static char *pg_password(const char *conninfo)
{
	aeth__store_conninfo ci;
	char *pw;

	if (aeth__store_conninfo_read(&ci, conninfo) != 0)
		return NULL;
	pw = ci.password;
	ci.password = NULL;
	aeth__store_conninfo_clear(&ci);
	return pw;
}

static void check_config_file(sink *s, const char *path, const char *redis_url,
			      const char *database_url)
{
	aeth__redis_url u = {0};
	char *text, *pg_pw, fix[1400];
	struct stat st;
	bool in_redis, in_pg;

	if (!path || stat(path, &st) != 0 || !(st.st_mode & (S_IRGRP | S_IROTH)))
		return;
	if (!(text = slurp(path)))
		return;
	redis_url = aeth__redis_url_resolve(redis_url);
	database_url = aeth__store_url_resolve(database_url);
	if (aeth__redis_url_parse(redis_url, &u) != 0)
		memset(&u, 0, sizeof(u));
	pg_pw = pg_password(database_url);
	in_redis = holds(text, redis_url, u.password);
	in_pg = holds(text, database_url, pg_pw);
	snprintf(fix, sizeof(fix), "chmod 600 %s (owned by the worker's user), "
		 "or take the password out of it: AETH_REDIS_URL / "
		 "AETH_DATABASE_URL in the service's environment, or a PostgreSQL "
		 "passfile (~/.pgpass, mode 600); " DOC, path);
	if (in_redis || in_pg)
		say(s, "config file", fix, "%s holds the %s in clear text and %s "
		    "can read it (mode %04o)", path, in_redis && in_pg ?
		    "Redis and PostgreSQL passwords" : in_redis ?
		    "Redis password (redis.url)" : "PostgreSQL password "
		    "(database.url)", st.st_mode & S_IROTH ? "every user" :
		    "its group", (unsigned int)(st.st_mode & 07777));
	aeth__redis_url_clear(&u);
	free(pg_pw);
	free(text);
}

int aeth__infra_warnings(const char *redis_url, const char *database_url,
			 const char *config_path, aeth__infra_warn_cb cb,
			 void *userdata)
{
	sink s = {cb, userdata, 0};

	check_redis(&s, redis_url);
	check_postgres(&s, database_url);
	check_config_file(&s, config_path, redis_url, database_url);
	return s.count;
}
