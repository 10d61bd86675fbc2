/*
 * tests/support/pgcluster.h - a private, short-lived PostgreSQL cluster
 * for tests that restart, stop or reconfigure their server (the shared
 * test server of pg.h must never be): initdb in a temp dir, run as the
 * `postgres` user when the test runs as root (PostgreSQL refuses root),
 * like scripts/services.sh.
 *
 * The cluster is stopped and its directory deleted by
 * aeth_test_pgc_free(), and otherwise by a watchdog process when the test
 * process ends in any way (a failed assertion, a crash, meson's timeout
 * kill), so that no server is left running.
 */
#ifndef AETH_TEST_PGCLUSTER_H
#define AETH_TEST_PGCLUSTER_H

#include <sys/types.h>

typedef struct aeth_test_pgc aeth_test_pgc;

/*
 * initdb a cluster into a new /tmp/aeth-<tag>.XXXXXX/data (superuser
 * "postgres", trust authentication, fsync off, no TCP: listen_addresses
 * '', its Unix socket in that directory). 0, or -1 with the reason on
 * stderr.
 */
int aeth_test_pgc_init(aeth_test_pgc **out, const char *tag);

/* The temp dir (the socket's directory; the data is in <dir>/data). */
const char *aeth_test_pgc_dir(const aeth_test_pgc *c);

/* Append `text` to the cluster's postgresql.conf (later lines win). */
int aeth_test_pgc_conf(aeth_test_pgc *c, const char *text);

/* Replace the cluster's pg_hba.conf with `text`. */
int aeth_test_pgc_hba(aeth_test_pgc *c, const char *text);

/* Copy `src` to <data>/`name`, owned by the cluster's user with `mode`
 * (a server certificate, a key: PostgreSQL wants keys 0600). */
int aeth_test_pgc_install(aeth_test_pgc *c, const char *src, const char *name,
			  mode_t mode);

/* Run a PostgreSQL program of the newest installed version as the
 * cluster's owner from "/": args like "pg_ctl status -D /x/data". Output
 * goes to <dir>/cmd.log. Returns system()'s status. */
int aeth_test_pgc_run(aeth_test_pgc *c, const char *args);

/* pg_ctl VERB (start, stop, restart) with shutdown mode MODE (fast,
 * immediate), waiting up to 60 s; 0 or -1 (see <dir>/cmd.log and
 * <dir>/server.log). */
int aeth_test_pgc_ctl(aeth_test_pgc *c, const char *verb, const char *mode);

/* Stop the server (immediate) and delete the directory. NULL accepted. */
void aeth_test_pgc_free(aeth_test_pgc *c);

#endif
