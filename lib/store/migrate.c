/*
 * lib/store/migrate.c - apply the embedded migrations once each, in order,
 * under an advisory lock so that concurrent workers starting together do
 * not race; each migration and its schema_migrations row commit together.
 * Each row keeps a checksum of the migration's text: a migration changed
 * after a database applied it (its change would never reach that
 * database) is refused by name. Rows from before checksums get theirs on
 * the next run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"

/* Any constant will do; it only has to be the same in every process. */
#define LOCK_KEY "7245531900"

/* FNV-1a 64 of the migration's text as 16 hex digits: it detects an edit
 * (not an attack: whoever can edit the database can edit this too). */
static void checksum(const char *sql, char out[17])
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The checksum row of applied migration m: filled in when it has none,
 * else it must match. */
static int check_sum(aeth_store *s, const aeth__migration *m, const char *stored)
{
	char sum[17], version[16];
	const char *params[2] = {version, sum};

	checksum(m->sql, sum);
	if (stored && strcmp(stored, sum) == 0)
		return 0;
	if (stored && *stored)
		return aeth__error_set(AETH_ESTATE,
				       "migration %d (%s) was changed after the "
				       "database at %s applied it (checksum %s there, "
				       "%s in this library): its change never reached "
				       "this database; restore the migration's text and "
				       "put the change in a new migration file",
				       m->version, m->name, s->where, stored, sum);
	snprintf(version, sizeof(version), "%d", m->version);
	return aeth__store_exec(s, "recording a migration's checksum",
				"UPDATE schema_migrations SET checksum = $2 "
				"WHERE version = $1::int AND checksum IS NULL",
				2, params, NULL);
}

/*
 * Mark the applied migrations in done[]. A version this library does not
 * have means a newer aetherium migrated the database: going on would run
 * old code against a schema it does not know, so refuse and say so.
 */
static int applied(aeth_store *s, bool *done, size_t n)
{
	PGresult *r;
	int rc, newest = 0;
	char *name = NULL;

	rc = aeth__store_exec(s, "reading schema_migrations",
			      "SELECT version, name, checksum FROM schema_migrations "
			      "ORDER BY version", 0, NULL, &r);
	if (rc != 0)
		return rc;
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		int v = aeth__row_int(r, i, 0);

		if (v >= 1 && (size_t)v <= n) {
			done[v - 1] = true;
			rc = check_sum(s, &aeth__migrations[v - 1],
				       PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2));
		} else if (v > newest) {
			newest = v;
			free(name);
			aeth__row_str(r, i, 1, &name);
		}
	}
	PQclear(r);
	if (rc != 0 || newest == 0) {
		free(name);
		return rc;
	}
	rc = aeth__error_set(AETH_ESTATE,
			     "the database at %s has schema migration %d (%s), "
			     "newer than this library, which knows migrations 1 "
			     "to %zu (up to %s): a newer aetherium migrated it; "
			     "run that version of the program (upgrade this one), "
			     "or point it at another database", s->where, newest,
			     name ? name : "?", n,
			     n ? aeth__migrations[n - 1].name : "none");
	free(name);
	return rc;
}

static int apply_one(aeth_store *s, const aeth__migration *m)
{
	char what[128], version[16], sum[17];
	const char *params[3] = {version, m->name, sum};
	int rc;

	/* m->name is the file name without .sql: it has the number already */
	snprintf(what, sizeof(what), "applying migration %s", m->name);
	snprintf(version, sizeof(version), "%d", m->version);
	checksum(m->sql, sum);
	aeth__info("store: %s", what);
	if ((rc = aeth__store_exec_plain(s, what, "BEGIN")) != 0)
		return rc;
	rc = aeth__store_exec_plain(s, what, m->sql);
	if (rc == 0)
		rc = aeth__store_exec(s, what,
				      "INSERT INTO schema_migrations (version, name, "
				      "checksum) VALUES ($1, $2, $3)", 3, params, NULL);
	if (rc == 0)
		rc = aeth__store_exec_plain(s, what, "COMMIT");
	if (rc != 0 && PQstatus(s->conn) == CONNECTION_OK) {
		PGresult *r = PQexec(s->conn, "ROLLBACK");

		PQclear(r);
	}
	return rc;
}

int aeth_store_migrate(aeth_store *s)
{
	bool *done;
	int rc;

	if (!s)
		return aeth__error_set(AETH_EINVALID, "aeth_store_migrate: store is NULL");
	done = calloc(aeth__migrations_count + 1, sizeof(bool));
	if (!done)
		return aeth__error_oom();
	/* Waiting for another process's migration is fine; forever is not. */
	rc = aeth__store_exec_plain(s, "setting the lock timeout",
				    "SET lock_timeout = '300s'");
	if (rc == 0 &&
	    (rc = aeth__store_exec_plain(s, "waiting for the migration lock",
					 "SELECT pg_advisory_lock(" LOCK_KEY ")")) != 0 &&
	    PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "RESET lock_timeout"));
	if (rc != 0) {
		free(done);
		return rc;
	}
	s->pinned = true; /* the lock is the session's */
	rc = aeth__store_exec_plain(s, "creating schema_migrations",
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		" version INTEGER PRIMARY KEY,"
		" name TEXT NOT NULL,"
		" applied_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),"
		" checksum TEXT);"
		/* a table made before checksums */
		"ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum TEXT");
	if (rc == 0)
		rc = applied(s, done, aeth__migrations_count);
	for (size_t i = 0; rc == 0 && i < aeth__migrations_count; i++)
		if (!done[i])
			rc = apply_one(s, &aeth__migrations[i]);
	free(done);
	s->pinned = false;
	if (PQstatus(s->conn) == CONNECTION_OK) {
		PGresult *r = PQexec(s->conn, "SELECT pg_advisory_unlock(" LOCK_KEY
					      "); RESET lock_timeout");

		PQclear(r);
	}
	return rc;
}

int aeth_store_schema_version(int *version, aeth_store *s)
{
	PGresult *r;
	bool exists;
	int rc;

	if (!version)
		return aeth__error_set(AETH_EINVALID, "version is NULL");
	*version = 0;
	rc = aeth__store_exec(s, "reading the schema version",
			      "SELECT to_regclass('schema_migrations') IS NOT NULL",
			      0, NULL, &r);
	if (rc != 0)
		return rc;
	exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!exists)
		return 0;
	rc = aeth__store_exec(s, "reading the schema version",
			      "SELECT coalesce(max(version), 0) FROM schema_migrations",
			      0, NULL, &r);
	if (rc != 0)
		return rc;
	*version = aeth__row_int(r, 0, 0);
	PQclear(r);
	return 0;
}
