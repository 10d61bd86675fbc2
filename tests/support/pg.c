/* tests/support/pg.c - fresh databases for integration tests; see pg.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "pg.h"

#define MAX_DBS 64

static char error_text[1024];
static char created[MAX_DBS][64];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const char *aeth_test_pg_error(void)
{
	return error_text;
}

const char *aeth_test_pg_admin_url(void)
{
	const char *url = getenv("AETH_TEST_DATABASE_URL");

	if (!url || !*url) {
		snprintf(error_text, sizeof(error_text),
			 "AETH_TEST_DATABASE_URL is not set: this test needs "
			 "PostgreSQL. Run it through scripts/test.sh, or start "
			 "the private services with `scripts/services.sh start` "
			 "and `eval \"$(scripts/services.sh env)\"` first");
		return NULL;
	}
	return url;
}

/* The admin URL's settings as "key='value' ...", dbname replaced. */
static char *conninfo_for(const char *admin, const char *dbname)
{
	PQconninfoOption *opts = PQconninfoParse(admin, NULL);
	size_t cap = 4096, n = 0;
	char *out;

	if (!opts || !(out = malloc(cap))) {
		PQconninfoFree(opts);
		return NULL;
	}
	out[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = strcmp(o->keyword, "dbname") == 0 ? dbname : o->val;

		if (!v || !*v)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%s='", n ? " " : "",
				      o->keyword);
		for (const char *p = v; *p && n + 3 < cap; p++) {
			if (*p == '\'' || *p == '\\')
				out[n++] = '\\';
			out[n++] = *p;
		}
		n += (size_t)snprintf(out + n, cap - n, "'");
		if (n + 8 >= cap)
			break;
	}
	PQconninfoFree(opts);
	return out;
}

static int admin_exec(const char *sql)
{
	const char *admin = aeth_test_pg_admin_url();
	PGconn *c;
	PGresult *r;
	int rc = 0;

	if (!admin)
		return -1;
	c = PQconnectdb(admin);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(error_text, sizeof(error_text),
			 "cannot connect to the test PostgreSQL server "
			 "(AETH_TEST_DATABASE_URL=%s): %s; is it running? "
			 "scripts/services.sh start", admin, PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(error_text, sizeof(error_text), "%s: %s", sql,
			 PQerrorMessage(c));
		rc = -1;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

static void drop_name(const char *name)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
		 name);
	if (admin_exec(sql) != 0)
		fprintf(stderr, "pg.c: could not drop %s: %s\n", name, error_text);
}

static void drop_leftovers(void)
{
	for (int i = 0; i < MAX_DBS; i++)
		if (created[i][0]) {
			drop_name(created[i]);
			created[i][0] = '\0';
		}
}

int aeth_test_pg_fresh(char **url_out)
{
	static unsigned int counter;
	static int registered;
	const char *admin = aeth_test_pg_admin_url();
	char name[64], sql[128];

	*url_out = NULL;
	if (!admin)
		return -1;
	pthread_mutex_lock(&lock);
	snprintf(name, sizeof(name), "aeth_test_%d_%u_%lx", (int)getpid(),
		 counter++, (unsigned long)time(NULL) ^ (unsigned long)random());
	pthread_mutex_unlock(&lock);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
	if (admin_exec(sql) != 0)
		return -1;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_DBS; i++)
		if (!created[i][0]) {
			snprintf(created[i], sizeof(created[i]), "%s", name);
			break;
		}
	if (!registered++)
		atexit(drop_leftovers);
	pthread_mutex_unlock(&lock);
	*url_out = conninfo_for(admin, name);
	if (!*url_out) {
		snprintf(error_text, sizeof(error_text),
			 "cannot parse AETH_TEST_DATABASE_URL=%s", admin);
		drop_name(name);
		return -1;
	}
	return 0;
}

void aeth_test_pg_drop(const char *url)
{
	PQconninfoOption *opts;

	if (!url)
		return;
	opts = PQconninfoParse(url, NULL);
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (strcmp(o->keyword, "dbname") != 0 || !o->val)
			continue;
		drop_name(o->val);
		pthread_mutex_lock(&lock);
		for (int i = 0; i < MAX_DBS; i++)
			if (strcmp(created[i], o->val) == 0)
				created[i][0] = '\0';
		pthread_mutex_unlock(&lock);
	}
	PQconninfoFree(opts);
}
