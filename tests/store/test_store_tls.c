/*
 * lib/store against PostgreSQL over TLS with sslmode=verify-full, as
 * docs/deploy-credentials.md tells an operator to run it. The test makes a
 * throw-away CA and a server certificate for "localhost" with the openssl
 * command line, and a private cluster (tests/support/pgcluster.h) with
 * ssl = on on 127.0.0.1 (a free port), whose pg_hba.conf admits the role
 * "aeth" only over TLS with a SCRAM password. It shows:
 *
 * (a) aeth_store_open() and the worker's record connection connect with
 *     verify-full and the CA as sslrootcert, in the URI and the key=value
 *     form, and pg_stat_ssl says each session is encrypted, also after the
 *     store reconnected to a restarted server;
 * (b) a name or address the certificate does not list, a CA that did not
 *     sign it, a missing CA file, or no TLS at all are refused with
 *     AETH_EUNAVAILABLE and a message that says what to check (not "is the
 *     server running?");
 * (c) a wrong password says to check it, and no message and no library
 *     log line ever shows a password (also when libpq's parser quotes the
 *     token it chokes on).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "aetherium/aetherium.h"
#include "expect.h"
#include "pgcluster.h"
#include "port.h"
#include "store/sql.h"

/* The role's password as set in the server, and percent-encoded. */
#define PW "Pg-S3cret/@:x"
#define PW_URL "Pg-S3cret%2F%40%3Ax"

static aeth_test_pgc *cluster;
static const char *dir;
static int port;
static char tls[256], admin[512];

static const char *const secrets[] = {PW, PW_URL, "S3cret", "Wrong-pw-42", NULL};

static void no_secret(const char *text, const char *where)
{
	expect_no_secret(text, where, secrets);
}

/* Run a shell command; say which step failed. */
static int sh(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int sh(const char *what, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0) {
		fprintf(stderr, "FAIL: %s: `%s` failed (see %s/cmd.log)\n", what, cmd, dir);
		return -1;
	}
	return 0;
}

/*
 * A CA, a server certificate for DNS:localhost only (so 127.0.0.1 and any
 * other name do not match) signed by it, and a second CA that signed
 * nothing here. EC keys: fast to make.
 */
static int make_certs(void)
{
	static const char *const ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1";

	if (system("openssl version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "FAIL: the openssl command is missing: scripts/setup.sh "
			"installs it (apt-get install openssl)\n");
		return -1;
	}
	snprintf(tls, sizeof(tls), "%s/tls", dir);
	return sh("the CA", "mkdir -p %s && cd %s && openssl req -x509 %s -nodes "
		  "-keyout ca.key -out ca.crt -days 2 -subj '/CN=aeth test CA' "
		  "-addext basicConstraints=critical,CA:TRUE "
		  "-addext keyUsage=critical,keyCertSign,cRLSign >>%s/cmd.log 2>&1",
		  tls, tls, ec, dir) ||
	       sh("another CA", "cd %s && openssl req -x509 %s -nodes -keyout "
		  "other-ca.key -out other-ca.crt -days 2 -subj '/CN=not our CA' "
		  ">>%s/cmd.log 2>&1", tls, ec, dir) ||
	       sh("the server certificate", "cd %s && openssl req %s -nodes "
		  "-keyout server.key -out server.csr -subj '/CN=localhost' "
		  ">>%s/cmd.log 2>&1 && printf 'subjectAltName=DNS:localhost\\n"
		  "extendedKeyUsage=serverAuth\\n' >server.ext && openssl x509 -req "
		  "-in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
		  "-extfile server.ext -out server.crt >>%s/cmd.log 2>&1",
		  tls, ec, dir, dir);
}

static int admin_exec(const char *sql)
{
	PGconn *c = PQconnectdb(admin);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "FAIL: %s: %s\n", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

static int group_setup(void **state)
{
	char conf[1024], hba[512], path[512];

	(void)state;
	/* libpq's environment must not change what the URLs say */
	unsetenv("PGSSLMODE");
	unsetenv("PGSSLROOTCERT");
	unsetenv("PGHOST");
	unsetenv("PGPASSWORD");
	if (aeth_test_pgc_init(&cluster, "pgtls") != 0)
		return -1;
	dir = aeth_test_pgc_dir(cluster);
	if (make_certs() != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/server.crt", tls);
	if (aeth_test_pgc_install(cluster, path, "server.crt", 0644) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/server.key", tls);
	if (aeth_test_pgc_install(cluster, path, "server.key", 0600) != 0)
		return -1;
	/* only "aeth" over TLS with a password, and the superuser on the socket */
	snprintf(hba, sizeof(hba),
		 "local all postgres trust\n"
		 "hostssl all aeth 127.0.0.1/32 scram-sha-256\n"
		 "hostnossl all all 127.0.0.1/32 reject\n");
	if (aeth_test_pgc_hba(cluster, hba) != 0)
		return -1;
	for (int attempt = 0; attempt < 3; attempt++) {
		port = aeth_test_free_port();
		snprintf(conf, sizeof(conf), "listen_addresses = '127.0.0.1'\n"
			 "port = %d\nssl = on\nssl_cert_file = 'server.crt'\n"
			 "ssl_key_file = 'server.key'\n"
			 "password_encryption = 'scram-sha-256'\n", port);
		if (aeth_test_pgc_conf(cluster, conf) == 0 &&
		    aeth_test_pgc_ctl(cluster, "start", "fast") == 0)
			break;
		port = -1;
	}
	if (port < 0)
		return -1;
	snprintf(admin, sizeof(admin), "host=%s port=%d user=postgres dbname=postgres",
		 dir, port);
	if (admin_exec("CREATE ROLE aeth LOGIN PASSWORD '" PW "'") != 0 ||
	    admin_exec("CREATE DATABASE aeth_tls OWNER aeth") != 0)
		return -1;
	aeth_log_set(expect_no_secret_log, AETH_LOG_DEBUG, (void *)secrets);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	aeth_log_set(NULL, AETH_LOG_OFF, NULL);
	aeth_test_pgc_free(cluster);
	return 0;
}

/* postgresql://aeth:PW@HOST:PORT/aeth_tls?sslmode=verify-full&... */
static void uri(char *out, size_t n, const char *host, const char *extra)
{
	snprintf(out, n, "postgresql://aeth:%s@%s:%d/aeth_tls?sslmode=verify-full&"
		 "sslrootcert=%s/ca.crt%s", PW_URL, host, port, tls, extra);
}

/* Is this store's own session encrypted? (TLS version, or "" if not) */
static void expect_encrypted(aeth_store *s)
{
	PGresult *r = NULL;

	OK(aeth__store_exec(s, "reading pg_stat_ssl", "SELECT ssl, version "
			    "FROM pg_stat_ssl WHERE pid = pg_backend_pid()", 0,
			    NULL, &r));
	assert_int_equal(PQntuples(r), 1);
	print_message("  session: ssl=%s version=%s\n", PQgetvalue(r, 0, 0),
		      PQgetvalue(r, 0, 1));
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	assert_non_null(strstr(PQgetvalue(r, 0, 1), "TLS"));
	PQclear(r);
}

/* From the server's side: no session of "aeth" without TLS, and how many
 * with. */
static int aeth_sessions_encrypted(void)
{
	PGconn *c = PQconnectdb(admin);
	PGresult *r = PQexec(c, "SELECT count(*) FILTER (WHERE s.ssl), "
			     "count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s "
			     "JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'aeth'");
	int n;

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 1), "0");
	n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return n;
}

static void test_verify_full_connects(void **state)
{
	char url[1024], kv[1024];
	aeth_store *s = NULL, *s2 = NULL;
	aeth__rec *rec = NULL;
	int version = 0;

	(void)state;
	/* the name in the certificate; hostaddr skips the name lookup */
	uri(url, sizeof(url), "localhost", "&hostaddr=127.0.0.1");
	OK(aeth_store_open(&s, url));
	expect_encrypted(s);
	OK(aeth_store_migrate(s));
	/* plain host=localhost (resolved), in the key=value form */
	snprintf(kv, sizeof(kv), "host=localhost port=%d dbname=aeth_tls user=aeth "
		 "password='%s' sslmode=verify-full sslrootcert='%s/ca.crt'",
		 port, PW, tls);
	OK(aeth_store_open(&s2, kv));
	expect_encrypted(s2);
	/* the worker's and aeth-submit's record connection */
	OK(aeth__rec_open(&rec, url));
	OK(aeth__rec_schema_version(rec, &version));
	assert_true(version > 0);
	assert_int_equal(aeth_sessions_encrypted(), 3);
	aeth__rec_free(rec);
	aeth_store_free(s2);

	/* the server restarts: the store reconnects, with TLS again */
	assert_int_equal(aeth_test_pgc_ctl(cluster, "restart", "fast"), 0);
	assert_int_equal(aeth_store_schema_version(&version, s), 0);
	expect_encrypted(s);
	assert_int_equal(aeth_sessions_encrypted(), 1);
	aeth_store_free(s);
}

/* Opening `url` fails with a message holding every one of parts and no
 * password. */
static void expect_refused(const char *url, const char *const *parts)
{
	aeth_store *s = NULL;
	int rc = aeth_store_open(&s, url);

	assert_null(s);
	print_message("  %s\n", aeth_error_last());
	for (size_t i = 0; parts[i]; i++)
		if (!strstr(aeth_error_last(), parts[i]))
			fail_msg("rc %d: '%s' not in: %s", rc, parts[i], aeth_error_last());
	no_secret(aeth_error_last(), "the message");
}

#define PARTS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define TLS_FIX "check sslrootcert in database.url"

static void expect_tls_refused(const char *url, const char *why)
{
	aeth_store *s = NULL;

	assert_int_equal(aeth_store_open(&s, url), AETH_EUNAVAILABLE);
	expect_refused(url, PARTS(why, TLS_FIX, "subjectAltName",
				  "docs/deploy-credentials.md"));
	if (strstr(aeth_error_last(), "is the server running"))
		fail_msg("a TLS failure is not a stopped server: %s", aeth_error_last());
}

static void test_verify_full_refuses(void **state)
{
	char url[1024], kv[1024];
	aeth_store *s = NULL;

	(void)state;
	/* an address the certificate does not list */
	uri(url, sizeof(url), "127.0.0.1", "");
	expect_tls_refused(url, "does not match host name \"127.0.0.1\"");
	expect_msg("server certificate for \"localhost\"");
	/* another name, on the right address */
	uri(url, sizeof(url), "db.example", "&hostaddr=127.0.0.1");
	expect_tls_refused(url, "does not match host name \"db.example\"");
	/* a CA that did not sign the server's certificate */
	snprintf(url, sizeof(url), "postgresql://aeth:%s@localhost:%d/aeth_tls?"
		 "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=%s/other-ca.crt",
		 PW_URL, port, tls);
	expect_tls_refused(url, "certificate verify failed");
	/* no CA file where the URL says */
	snprintf(kv, sizeof(kv), "host=localhost hostaddr=127.0.0.1 port=%d "
		 "dbname=aeth_tls user=aeth password='%s' sslmode=verify-full "
		 "sslrootcert=%s/missing.crt", port, PW, tls);
	expect_tls_refused(kv, "root certificate file");
	/* no TLS: the server's pg_hba.conf refuses it */
	snprintf(kv, sizeof(kv), "host=127.0.0.1 port=%d dbname=aeth_tls user=aeth "
		 "password='%s' sslmode=disable", port, PW);
	assert_int_equal(aeth_store_open(&s, kv), AETH_EUNAVAILABLE);
	expect_refused(kv, PARTS("pg_hba.conf", "no encryption",
				 "hostssl lines admit only TLS sessions"));
}

static void test_no_password_in_messages(void **state)
{
	char url[1024];
	aeth_store *s = NULL;

	(void)state;
	/* a wrong password */
	snprintf(url, sizeof(url), "postgresql://aeth:Wrong-pw-42@localhost:%d/"
		 "aeth_tls?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=%s/ca.crt",
		 port, tls);
	assert_int_equal(aeth_store_open(&s, url), AETH_EUNAVAILABLE);
	expect_refused(url, PARTS("password authentication failed for user \"aeth\"",
				  "check the user and password in database.url",
				  "the password is not shown",
				  "localhost:", "(database aeth_tls, user aeth)"));
	/* libpq's parser quotes the token it cannot read: the password here */
	snprintf(url, sizeof(url), "postgresql://aeth:Pg-S3cret%%zz@localhost:%d/x", port);
	assert_int_equal(aeth_store_open(&s, url), AETH_EINVALID);
	expect_refused(url, PARTS("invalid database URL", "(password)"));
	snprintf(url, sizeof(url), "postgresql://localhost/x?password=S3cret%%zz");
	assert_int_equal(aeth_store_open(&s, url), AETH_EINVALID);
	expect_refused(url, PARTS("invalid database URL", "(password)"));
	snprintf(url, sizeof(url), "postgresql://u:Wrong-pw-42%%00@localhost/x");
	assert_int_equal(aeth_store_open(&s, url), AETH_EINVALID);
	expect_refused(url, PARTS("invalid database URL"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_full_connects),
		cmocka_unit_test(test_verify_full_refuses),
		cmocka_unit_test(test_no_password_in_messages),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
