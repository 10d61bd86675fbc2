/*
 * Unit tests of lib/worker/endpoints.h (where a Redis or PostgreSQL URL
 * leads) and of the start-up warnings built on it (infra_warnings.h). No
 * services: nothing here connects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/endpoints.h"
#include "worker/infra_warnings.h"

static int clear_env(void **state)
{
	static const char *const vars[] = {
		"PGHOST", "PGHOSTADDR", "PGPORT", "PGSSLMODE", "AETH_REDIS_URL",
		"AETH_DATABASE_URL",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	return 0;
}

static void test_loopback(void **state)
{
	static const char *const yes[] = {
		"127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1",
		"::ffff:127.0.0.1", "localhost", "LocalHost", "localhost.",
	};
	static const char *const no[] = {
		"", "0.0.0.0", "10.0.0.1", "128.0.0.1", "::", "::ffff:10.0.0.1",
		"fe80::1", "db.example", "localhost.example.com", "127.0.0.1.nip.io",
		"/var/run/postgresql",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!aeth__host_is_loopback(yes[i]))
			fail_msg("%s should be loopback", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (aeth__host_is_loopback(no[i]))
			fail_msg("%s should not be loopback", no[i]);
	assert_false(aeth__host_is_loopback(NULL));
}

static void expect_redis(const char *url, const char *host, unsigned int port,
			 bool loopback)
{
	aeth__endpoint ep;

	memset(&ep, 0x55, sizeof(ep));
	if (!aeth__redis_endpoint(url, &ep))
		fail_msg("%s: should be TCP", url ? url : "(null)");
	assert_string_equal(ep.host, host);
	assert_int_equal(ep.port, port);
	assert_int_equal(ep.loopback, loopback);
}

static void test_redis(void **state)
{
	(void)state;
	assert_false(aeth__redis_endpoint("unix:///tmp/r/redis.sock", NULL));
	assert_false(aeth__redis_endpoint("unix:///tmp/r.sock?db=2&password=x", NULL));
	assert_false(aeth__redis_endpoint("http://127.0.0.1:6379", NULL));
	assert_false(aeth__redis_endpoint("redis://[::1", NULL));
	assert_true(aeth__redis_endpoint("redis://127.0.0.1", NULL));
	expect_redis("redis://127.0.0.1:6380/0", "127.0.0.1", 6380, true);
	expect_redis("redis://:pw@localhost", "localhost", 6379, true);
	expect_redis("redis://aeth:p%40ss@[::1]:7000/3", "::1", 7000, true);
	expect_redis("redis://aeth:raw@at@10.0.0.5:6379", "10.0.0.5", 6379, false);
	expect_redis("redis://cache.internal:6379/2", "cache.internal", 6379, false);
	expect_redis("redis://[2001:db8::7]:6379", "2001:db8::7", 6379, false);
	/* NULL: the environment, else the queue's default */
	expect_redis(NULL, "127.0.0.1", 6379, true);
	setenv("AETH_REDIS_URL", "unix:///run/aeth/redis.sock", 1);
	assert_false(aeth__redis_endpoint(NULL, NULL));
	setenv("AETH_REDIS_URL", "redis://queue.example:6390", 1);
	expect_redis(NULL, "queue.example", 6390, false);
	unsetenv("AETH_REDIS_URL");
	/* the seed forms: every seed (a cluster's other nodes and the
	 * primary the sentinels name are not known without asking) */
	expect_redis("redis-cluster://10.0.0.1:7000,127.0.0.1:7001", "10.0.0.1", 7000, false);
	expect_redis("redis-sentinel://127.0.0.1,s2:26380/m", "127.0.0.1", 26379, true);
	{
		aeth__endpoint eps[4];
		size_t n = 0;

		assert_true(aeth__redis_endpoints("redis-cluster://a:1,b:2,[::1]:3", eps, 4, &n));
		assert_int_equal(n, 3);
		assert_string_equal(eps[1].host, "b");
		assert_int_equal(eps[2].port, 3);
		assert_true(eps[2].loopback);
		assert_true(aeth__redis_endpoints("redis-cluster://a:1,b:2,c:3", eps, 2, &n));
		assert_int_equal(n, 2);
		assert_false(aeth__redis_endpoints("unix:///r.sock", eps, 4, &n));
		assert_int_equal(n, 0);
	}
}

typedef struct {
	const char *host;
	unsigned int port;
	bool loopback;
} want_ep;

static void expect_pg(const char *conninfo, size_t n, const want_ep *want)
{
	aeth__endpoint eps[AETH__PG_HOSTS_MAX];
	size_t got = 99;
	bool tcp = aeth__pg_endpoints(conninfo, eps, AETH__PG_HOSTS_MAX, &got);

	if (tcp != (n > 0) || got != n)
		fail_msg("%s: tcp %d with %zu endpoints, wanted %zu", conninfo, tcp,
			 got, n);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(eps[i].host, want[i].host) || eps[i].port != want[i].port ||
		    eps[i].loopback != want[i].loopback)
			fail_msg("%s: endpoint %zu is %s:%u (loopback %d), wanted "
				 "%s:%u (%d)", conninfo, i, eps[i].host, eps[i].port,
				 eps[i].loopback, want[i].host, want[i].port,
				 want[i].loopback);
	}
}

#define EPS(...) ((const want_ep[]){__VA_ARGS__})

static void test_pg_unix(void **state)
{
	(void)state;
	/* no host at all: libpq's socket directory */
	expect_pg("dbname=aetherium", 0, NULL);
	expect_pg("postgresql:///aetherium", 0, NULL);
	expect_pg("host=/tmp/pg dbname=x user=postgres", 0, NULL);
	expect_pg("postgresql:///postgres?host=/tmp/aeth-pg.x&user=postgres", 0, NULL);
	expect_pg("postgresql://%2Fvar%2Frun%2Fpostgresql/db", 0, NULL);
	expect_pg("host=@abstract-socket dbname=x", 0, NULL);
	/* a string that does not parse is not TCP */
	expect_pg("host='unterminated", 0, NULL);
	expect_pg("postgresql://u:p%zz@db.example/x", 0, NULL);
	expect_pg("nonsense_key=1", 0, NULL);
}

static void test_pg_tcp(void **state)
{
	(void)state;
	expect_pg("postgresql://aeth:secret@127.0.0.1:5433/aetherium", 1,
		  EPS({"127.0.0.1", 5433, true}));
	expect_pg("postgresql://[::1]/db", 1, EPS({"::1", 5432, true}));
	expect_pg("postgres://localhost/db?sslmode=disable", 1,
		  EPS({"localhost", 5432, true}));
	expect_pg("host=db.example port=6432 dbname=x", 1,
		  EPS({"db.example", 6432, false}));
	/* the default in lib/store */
	expect_pg(NULL, 1, EPS({"127.0.0.1", 5432, true}));
	/* host lists: one port for all, or one each; sockets left out */
	expect_pg("postgresql://db1.example:5432,db2.example:5433/x", 2,
		  EPS({"db1.example", 5432, false}, {"db2.example", 5433, false}));
	expect_pg("host=a.example,/tmp,localhost port=1,2,3", 2,
		  EPS({"a.example", 1, false}, {"localhost", 3, true}));
	expect_pg("host=a.example,b.example port=7000", 2,
		  EPS({"a.example", 7000, false}, {"b.example", 7000, false}));
	/* hostaddr is what is connected to (host is then the TLS name) */
	expect_pg("host=db.example hostaddr=10.1.2.3 port=6432", 1,
		  EPS({"10.1.2.3", 6432, false}));
	expect_pg("host=localhost hostaddr=127.0.0.1 sslmode=verify-full", 1,
		  EPS({"127.0.0.1", 5432, true}));
	expect_pg("hostaddr=127.0.0.1,10.9.9.9", 2,
		  EPS({"127.0.0.1", 5432, true}, {"10.9.9.9", 5432, false}));
	expect_pg("host=/tmp,db.example hostaddr=,10.0.0.2", 1,
		  EPS({"10.0.0.2", 5432, false}));
	/* a bad port is reported as 0, not guessed */
	expect_pg("host=db.example port=http", 1, EPS({"db.example", 0, false}));
}

static void test_pg_env(void **state)
{
	aeth__endpoint one;
	size_t n = 0;

	(void)state;
	setenv("PGHOST", "remote.example", 1);
	setenv("PGPORT", "5999", 1);
	expect_pg("dbname=x", 1, EPS({"remote.example", 5999, false}));
	/* the string wins over the environment */
	expect_pg("host=/tmp dbname=x", 0, NULL);
	unsetenv("PGHOST");
	unsetenv("PGPORT");
	setenv("AETH_DATABASE_URL", "host=10.0.0.9 dbname=x", 1);
	expect_pg(NULL, 1, EPS({"10.0.0.9", 5432, false}));
	unsetenv("AETH_DATABASE_URL");
	/* asked for fewer: the first ones, and still true */
	assert_true(aeth__pg_endpoints("host=a.example,b.example", &one, 1, &n));
	assert_int_equal(n, 1);
	assert_string_equal(one.host, "a.example");
	assert_true(aeth__pg_endpoints("host=a.example", NULL, 0, NULL));
}

static void test_pg_sslmode(void **state)
{
	(void)state;
	assert_string_equal(aeth__pg_sslmode("host=db.example"), "prefer");
	assert_string_equal(aeth__pg_sslmode("host=db.example sslmode=verify-full "
					     "sslrootcert=/etc/aeth/ca.crt"),
			    "verify-full");
	assert_string_equal(aeth__pg_sslmode("postgresql://db.example/x?sslmode=require"),
			    "require");
	setenv("PGSSLMODE", "verify-ca", 1);
	assert_string_equal(aeth__pg_sslmode("host=db.example"), "verify-ca");
	assert_string_equal(aeth__pg_sslmode("host=db.example sslmode=disable"),
			    "disable");
	unsetenv("PGSSLMODE");
	assert_null(aeth__pg_sslmode("host=db.example sslmode=bogus"));
	assert_null(aeth__pg_sslmode("host='unterminated"));
}

/* ---- the warnings ---- */

typedef struct {
	int n;
	char text[8][1600];
} seen;

static void collect(const char *what, const char *detail, const char *fix,
		    void *userdata)
{
	seen *s = userdata;

	if (s->n < 8)
		snprintf(s->text[s->n], sizeof(s->text[0]), "%s | %s | %s", what,
			 detail, fix);
	s->n++;
}

/* The warnings for these settings, each containing its `parts` in order;
 * none may show `secret`. */
static void expect_warnings(const char *redis, const char *pg, const char *file,
			    const char *secret, int n, const char *const *parts)
{
	seen s;
	int count;

	memset(&s, 0, sizeof(s));
	count = aeth__infra_warnings(redis, pg, file, collect, &s);
	assert_int_equal(count, s.n);
	if (s.n != n)
		fail_msg("%s / %s: %d warnings, wanted %d; first: %s", redis, pg,
			 s.n, n, s.text[0]);
	for (int i = 0; i < n; i++) {
		print_message("  %s\n", s.text[i]);
		if (!strstr(s.text[i], parts[i]))
			fail_msg("warning %d lacks '%s': %s", i, parts[i], s.text[i]);
		if (secret && strstr(s.text[i], secret))
			fail_msg("warning %d shows the password: %s", i, s.text[i]);
	}
}

#define P(...) ((const char *const[]){__VA_ARGS__})

static void test_warnings_redis(void **state)
{
	(void)state;
	expect_warnings("unix:///run/aeth/redis.sock", "host=/tmp", NULL, NULL, 0, NULL);
	expect_warnings("redis://aeth:s3cr3t-pw@127.0.0.1:6379/0", "host=/tmp", NULL,
			"s3cr3t-pw", 0, NULL);
	expect_warnings("redis://127.0.0.1:6379/0", "host=/tmp", NULL, NULL, 1,
			P("redis access | redis://127.0.0.1:6379/0 is reached over "
			  "TCP without a password"));
	expect_warnings("redis://queue.example:6379/0", "host=/tmp", NULL, NULL, 2,
			P("any host on the network path", "hiredis 0.14 has no TLS"));
	expect_warnings("redis://aeth:s3cr3t-pw@10.0.0.5:6379/0", "host=/tmp", NULL,
			"s3cr3t-pw", 1, P("redis transport | redis://aeth@10.0.0.5:6379/0 "
					  "is reached over TCP on a non-loopback"));
	/* the fix names the tunnels */
	expect_warnings("redis://:pw@[2001:db8::7]:6379", "host=/tmp", NULL, "pw@",
			1, P("stunnel or spiped"));
}

static void test_warnings_pg(void **state)
{
	const char *unix_redis = "unix:///r.sock";

	(void)state;
	/* loopback and sockets: no warning whatever the sslmode */
	expect_warnings(unix_redis, "postgresql://aeth:pw1234@127.0.0.1/x", NULL,
			NULL, 0, NULL);
	expect_warnings(unix_redis, "host=localhost sslmode=disable", NULL, NULL, 0, NULL);
	/* remote: verify-full is the only quiet mode */
	expect_warnings(unix_redis, "host=db.example sslmode=verify-full "
			"sslrootcert=/ca.crt password=pw1234", NULL, "pw1234", 0, NULL);
	expect_warnings(unix_redis, "postgresql://aeth:pw1234@db.example/x", NULL,
			"pw1234", 1, P("postgresql transport | PostgreSQL at "
				       "db.example:5432 is reached over TCP on a "
				       "non-loopback address with sslmode=prefer: the "
				       "session may travel in clear text"));
	expect_warnings(unix_redis, "host=db.example sslmode=require", NULL, NULL, 1,
			P("certificate is not verified"));
	expect_warnings(unix_redis, "host=db.example sslmode=verify-ca", NULL, NULL, 1,
			P("name is not checked"));
	/* only the remote hosts of a list are named */
	expect_warnings(unix_redis, "host=localhost,db2.example port=5432,5433", NULL,
			NULL, 1, P("PostgreSQL at db2.example:5433 is"));
	expect_warnings(unix_redis, "host=db.example hostaddr=10.1.1.1", NULL, NULL,
			1, P("PostgreSQL at 10.1.1.1:5432"));
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_warnings_config_file(void **state)
{
	char dir[] = "/tmp/aeth-endpoints.XXXXXX", path[64];
	const char *redis = "redis://aeth:Zq9-pw%2Fx@127.0.0.1:6379/0";
	const char *pg = "postgresql://aeth:Pg-s3cret@127.0.0.1/aetherium";
	char text[512];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/aeth.yaml", dir);
	snprintf(text, sizeof(text), "# redis://[user:password@]host\nredis:\n"
		 "  url: \"%s\"\ndatabase:\n  url: %s\n", redis, pg);
	write_file(path, text, 0644);
	expect_warnings(redis, pg, path, "s3cret", 1,
			P("config file | /tmp/aeth-endpoints."));
	expect_warnings(redis, pg, path, "Zq9-pw", 1,
			P("holds the Redis and PostgreSQL passwords in clear text "
			  "and every user can read it (mode 0644)"));
	write_file(path, text, 0640);
	expect_warnings(redis, pg, path, "Zq9-pw", 1, P("its group can read it"));
	write_file(path, text, 0600);
	expect_warnings(redis, pg, path, NULL, 0, NULL);
	/* passwords from the environment, not in the file: nothing to say */
	write_file(path, "redis:\n  url: unix:///x.sock\n", 0644);
	expect_warnings(redis, pg, path, NULL, 0, NULL);
	/* only the PostgreSQL password in the file */
	write_file(path, "database:\n  url: host=127.0.0.1 password=Pg-s3cret\n", 0604);
	expect_warnings(redis, "host=127.0.0.1 password=Pg-s3cret", path, "s3cret",
			1, P("PostgreSQL password (database.url)"));
	/* no file, a file that is gone */
	expect_warnings(redis, pg, NULL, NULL, 0, NULL);
	unlink(path);
	expect_warnings(redis, pg, path, NULL, 0, NULL);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_loopback, clear_env),
		cmocka_unit_test_setup(test_redis, clear_env),
		cmocka_unit_test_setup(test_pg_unix, clear_env),
		cmocka_unit_test_setup(test_pg_tcp, clear_env),
		cmocka_unit_test_setup(test_pg_env, clear_env),
		cmocka_unit_test_setup(test_pg_sslmode, clear_env),
		cmocka_unit_test_setup(test_warnings_redis, clear_env),
		cmocka_unit_test_setup(test_warnings_pg, clear_env),
		cmocka_unit_test_setup(test_warnings_config_file, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
