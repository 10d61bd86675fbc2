/*
 * tests/support/pg.h - a fresh PostgreSQL database per integration test.
 *
 * The server is the one AETH_TEST_DATABASE_URL points at (an admin URL,
 * exported by scripts/test.sh and `eval "$(scripts/services.sh env)"`).
 */
#ifndef AETH_TEST_PG_H
#define AETH_TEST_PG_H

/*
 * Create a uniquely named empty database and return a libpq connection
 * string for it in *url_out (malloc'd; the caller frees it after
 * aeth_test_pg_drop()). Returns 0, or -1 with the reason in
 * aeth_test_pg_error() (e.g. AETH_TEST_DATABASE_URL unset: it says how to
 * start the services). Databases not dropped are dropped at exit.
 */
int aeth_test_pg_fresh(char **url_out);

/* Drop a database made by aeth_test_pg_fresh() (closing its sessions). */
void aeth_test_pg_drop(const char *url);

/* Why the last aeth_test_pg_fresh() failed. */
const char *aeth_test_pg_error(void);

/* AETH_TEST_DATABASE_URL, or NULL (and the reason set) when unset. */
const char *aeth_test_pg_admin_url(void);

#endif
