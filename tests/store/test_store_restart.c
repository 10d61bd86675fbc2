/*
 * lib/store across PostgreSQL restarts. The shared test server must not be
 * restarted under other tests, so this test makes its own short-lived
 * cluster (initdb in a temp dir, as the `postgres` user when run as root,
 * like scripts/services.sh), restarts and stops it, and checks that the
 * store reconnects by itself, says AETH_EUNAVAILABLE clearly while the
 * server is down or when it goes away mid-statement, and that nothing
 * written before is lost. The cluster (tests/support/pgcluster.h) is
 * stopped and deleted at the end, or by its watchdog if the test dies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "aetherium/aetherium.h"
/* rows written as the worker does (unstable API) */
#define AETH_UNSTABLE
#include "aetherium/unstable/store.h"
#include "expect.h"
#include "pgcluster.h"

static aeth_test_pgc *cluster;
static const char *base;
static char url[256];
static int started;

static int make_cluster(void)
{
	if (aeth_test_pgc_init(&cluster, "pgr") != 0)
		return -1;
	base = aeth_test_pgc_dir(cluster);
	snprintf(url, sizeof(url), "host=%s user=postgres dbname=postgres", base);
	return 0;
}

/* pg_ctl VERB with shutdown MODE ("fast": sessions are told to end and
 * release their locks; "immediate": every backend is killed at once, like a
 * crash, and the server recovers from its WAL on start). */
static void server_mode(const char *verb, const char *mode)
{
	if (aeth_test_pgc_ctl(cluster, verb, mode) != 0)
		fail_msg("pg_ctl %s failed; see %s/cmd.log and %s/server.log", verb,
			 base, base);
	started = strcmp(verb, "stop") != 0;
}

static void server(const char *verb)
{
	server_mode(verb, "fast");
}

static void insert_vm(aeth_store *s, aeth_store_vm *vm, const char *name)
{
	aeth_store_vm_init(vm, AETH_STORE_VM_VERSION);
	vm->name = (char *)name;
	vm->orchestrator = (char *)"qemu";
	OK(aeth_store_vm_insert(s, vm));
}

static size_t count_vms(aeth_store *s)
{
	aeth_store_vm **list = NULL;
	size_t n = 0;

	OK(aeth_store_vm_list(&list, &n, s, NULL));
	aeth_store_vm_list_free(list);
	return n;
}

static void test_restart_and_stop(void **state)
{
	aeth_store *s = NULL;
	aeth_store_vm a, b, *out = NULL;

	(void)state;
	server("start");
	OK(aeth_store_open(&s, url));
	OK(aeth_store_migrate(s));
	insert_vm(s, &a, "before-restart");

	/* restart: the next call reconnects by itself and sees the row */
	server("restart");
	OK(aeth_store_vm_get(&out, s, a.id));
	assert_string_equal(out->name, "before-restart");
	aeth_store_vm_free(out);
	insert_vm(s, &b, "after-restart");
	OK(aeth_store_migrate(s)); /* plain statements reconnect too */

	/* down: a clear AETH_EUNAVAILABLE, every time, no crash */
	server("stop");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(aeth_store_vm_get(&out, s,
						   a.id), AETH_EUNAVAILABLE);
		assert_null(out);
		expect_msg("PostgreSQL at unix socket ");
		expect_msg(base);
		expect_msg("cannot reconnect");
		expect_msg("is the server running?");
	}
	assert_int_equal(aeth_store_migrate(s), AETH_EUNAVAILABLE);

	/* back: it works again and nothing was lost */
	server("start");
	assert_int_equal(count_vms(s), 2);
	OK(aeth_store_vm_get(&out, s, b.id));
	assert_string_equal(out->name, "after-restart");
	aeth_store_vm_free(out);
	aeth_store_free(s);
}

typedef struct {
	aeth_store *s;
	int rc;
	char msg[1024];
} migrator;

static void *migrate_blocked(void *arg)
{
	migrator *m = arg;

	m->rc = aeth_store_migrate(m->s);
	snprintf(m->msg, sizeof(m->msg), "%s", aeth_error_last());
	return NULL;
}

/* Until another session waits on an advisory lock (no fixed sleep: the
 * migrating thread may take long to get there on a loaded machine). */
static void wait_for_lock_waiter(PGconn *c)
{
	for (int i = 0; i < 3000; i++) {
		PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_activity "
				     "WHERE wait_event_type = 'Lock' AND "
				     "wait_event = 'advisory'");
		bool waiting = PQresultStatus(r) == PGRES_TUPLES_OK &&
			       strcmp(PQgetvalue(r, 0, 0), "0") != 0;

		PQclear(r);
		if (waiting)
			return;
		usleep(10000);
	}
	fail_msg("no session started waiting for the advisory lock in 30 s");
}

/* Ways to interrupt the blocked statement; HOLDER holds the lock. */
static void interrupt_by_crash(PGconn *holder)
{
	(void)holder;
	/* Immediate, not fast: in a fast shutdown the holder's session may
	 * end first and release the lock, and the waiting statement then
	 * finishes before its own session is told to end (seen in CI: rc 0).
	 * Killed at once, no backend releases anything. */
	server_mode("restart", "immediate");
}

static void interrupt_by_terminate(PGconn *holder)
{
	PGresult *r = PQexec(holder, "SELECT pg_terminate_backend(pid) FROM "
				     "pg_stat_activity WHERE wait_event_type = "
				     "'Lock' AND wait_event = 'advisory'");

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	PQclear(r);
}

/*
 * A statement (aeth_store_migrate waiting for the advisory lock another
 * session holds) is cut short by INTERRUPT: the call fails as a lost
 * connection, the next call reconnects by itself (without waiting on the
 * lock, which a surviving holder still has) and the committed row is there.
 */
static void check_mid_statement(void (*interrupt)(PGconn *), const char *name)
{
	aeth_store *s = NULL;
	aeth_store_vm a, *out = NULL;
	migrator m = {0};
	pthread_t t;
	PGconn *holder;
	PGresult *r;

	if (!started)
		server("start");
	OK(aeth_store_open(&s, url));
	OK(aeth_store_migrate(s));
	insert_vm(s, &a, name);
	holder = PQconnectdb(url);
	r = PQexec(holder, "SELECT pg_advisory_lock(7245531900)");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	m.s = s;
	assert_int_equal(pthread_create(&t, NULL, migrate_blocked, &m), 0);
	wait_for_lock_waiter(holder);
	interrupt(holder);
	pthread_join(t, NULL);
	assert_int_equal(m.rc, AETH_EUNAVAILABLE);
	if (!strstr(m.msg, "while the statement ran") ||
	    !strstr(m.msg, "the next call reconnects"))
		fail_msg("unexpected message: %s", m.msg);
	OK(aeth_store_vm_get(&out, s, a.id));
	assert_string_equal(out->name, name);
	aeth_store_vm_free(out);
	PQfinish(holder);
	OK(aeth_store_migrate(s));
	aeth_store_free(s);
}

/* The server crashes and restarts while a statement runs; the committed
 * row survives the recovery. */
static void test_restart_mid_statement(void **state)
{
	(void)state;
	check_mid_statement(interrupt_by_crash, "kept");
}

/* An administrator ends the session while a statement runs
 * (pg_terminate_backend: the server sends a FATAL error, then closes the
 * connection), the server stays up. */
static void test_session_terminated(void **state)
{
	(void)state;
	check_mid_statement(interrupt_by_terminate, "kept-too");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_and_stop),
		cmocka_unit_test(test_restart_mid_statement),
		cmocka_unit_test(test_session_terminated),
	};

	int rc;

	if (make_cluster() != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	aeth_test_pgc_free(cluster);
	return rc;
}
