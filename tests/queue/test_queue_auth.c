/*
 * tests/queue/test_queue_auth.c - the queue against Redis servers that
 * want credentials, over TCP on 127.0.0.1:
 *
 * - one with the ACL users of docs/redis-acl.conf (the default user off,
 *   aeth-worker and aeth-submit with the narrow rules documented there,
 *   passwords with characters that must be percent-encoded): a submitter
 *   enqueues and waits, a worker dequeues, heartbeats, acks, nacks,
 *   registers, counts and cancels, and the server's ACL log shows no
 *   denied command; a submitter cannot take tasks; a connection killed by
 *   the server re-authenticates;
 * - one with only requirepass (redis://:PASSWORD@host:port);
 * - wrong, missing and malformed credentials fail with AETH_EINVALID and a
 *   message that names the server and what to set, and no message or log
 *   line ever shows a password.
 * Also the URL parser's user info: percent-decoding, IPv6, unix ?user=.
 */
#include "qtest.h"

#include <hiredis/hiredis.h>

#include "expect.h"
#include "queue/queue_internal.h"

#define NS "aethacl"
/* As written in the server's config, and percent-encoded for a URL. */
#define WORKER_PW "Wk-3r@p/ss:%x"
#define WORKER_PW_URL "Wk-3r%40p%2Fss%3A%25x"
#define SUBMIT_PW "sUb-m1t-s3cret"
#define ADMIN_PW "adm1n-s3cret"
#define LEGACY_PW "l3gacy-requirepass"

static aeth_test_redis *acl_srv, *legacy_srv;
static char worker_url[256], submit_url[256], admin_url[256], legacy_url[256];

/* Every password of this file, also in the forms a URL carries them. */
static const char *const secrets[] = {
	WORKER_PW, WORKER_PW_URL, SUBMIT_PW, ADMIN_PW, LEGACY_PW, "Wk-3r",
	"wrong-pw-77", NULL,
};

static void no_secret(const char *text, const char *where)
{
	expect_no_secret(text, where, secrets);
}

/* docs/redis-acl.conf with the test's passwords and namespace. */
static char *acl_conf(void)
{
	const char *root = getenv("AETH_SOURCE_ROOT");
	char path[1024], *text, *out;
	size_t n = 0, cap, o = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/docs/redis-acl.conf", root ? root : ".");
	if (!(f = fopen(path, "r")))
		fail_msg("cannot read %s (AETH_SOURCE_ROOT?)", path);
	text = calloc(1, 65536);
	assert_non_null(text);
	n = fread(text, 1, 65535, f);
	fclose(f);
	cap = n * 2 + 512;
	out = calloc(1, cap);
	assert_non_null(out);
	for (size_t i = 0; i < n;) {
		static const struct { const char *from, *to; } subst[] = {
			{"WORKER_PASSWORD", WORKER_PW}, {"SUBMIT_PASSWORD", SUBMIT_PW},
			{"~{aeth:*", "~{" NS ":*"}, {"~aeth:*", "~" NS ":*"},
		};
		bool done = false;

		for (size_t k = 0; k < sizeof(subst) / sizeof(subst[0]) && !done; k++) {
			size_t fl = strlen(subst[k].from);

			if (strncmp(text + i, subst[k].from, fl) == 0) {
				o += (size_t)snprintf(out + o, cap - o, "%s", subst[k].to);
				i += fl;
				done = true;
			}
		}
		if (!done)
			out[o++] = text[i++];
	}
	o += (size_t)snprintf(out + o, cap - o, "\nuser aeth-test-admin on >%s ~* &* +@all\n",
			      ADMIN_PW);
	free(text);
	return out;
}

static int group_setup(void **state)
{
	char *conf = acl_conf();
	int port;

	(void)state;
	/* every log line of the library, at every level, is checked too */
	aeth_log_set(expect_no_secret_log, AETH_LOG_DEBUG, (void *)secrets);
	if (!strstr(conf, "user default off") || !strstr(conf, "user aeth-worker on >" WORKER_PW))
		fail_msg("docs/redis-acl.conf no longer has the users this test expects");
	if (aeth_test_redis_start_tcp(&acl_srv, conf) != 0)
		fail_msg("cannot start redis-server with the ACL of docs/redis-acl.conf");
	free(conf);
	port = aeth_test_redis_port(acl_srv);
	snprintf(worker_url, sizeof(worker_url),
		 "redis://aeth-worker:%s@127.0.0.1:%d/0", WORKER_PW_URL, port);
	snprintf(submit_url, sizeof(submit_url),
		 "redis://aeth-submit:" SUBMIT_PW "@127.0.0.1:%d/0", port);
	snprintf(admin_url, sizeof(admin_url),
		 "redis://aeth-test-admin:" ADMIN_PW "@127.0.0.1:%d/0", port);
	if (aeth_test_redis_start_tcp(&legacy_srv, "requirepass " LEGACY_PW "\n") != 0)
		fail_msg("cannot start redis-server with requirepass");
	snprintf(legacy_url, sizeof(legacy_url), "redis://:" LEGACY_PW "@127.0.0.1:%d",
		 aeth_test_redis_port(legacy_srv));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	aeth_test_redis_free(acl_srv);
	aeth_test_redis_free(legacy_srv);
	aeth_log_set(NULL, AETH_LOG_OFF, NULL);
	return 0;
}

static aeth_queue *open_as(const char *url)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;

	o.url = url;
	o.ns = NS;
	o.worker_id = "auth-test";
	o.lease_ms = 5000;
	o.retry_base_ms = 50;
	QOK(aeth_queue_open(&q, &o));
	return q;
}

/* The code and message of opening `url`, which must fail. */
static void expect_refused(const char *url, int code, const char *const *parts)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;
	int rc;

	o.url = url;
	o.ns = NS;
	rc = aeth_queue_open(&q, &o);
	assert_null(q);
	if (rc != code)
		fail_msg("opening with %s gave %d (%s), wanted %d", parts[0], rc,
			 aeth_error_last(), code);
	print_message("  %s\n", aeth_error_last());
	for (size_t i = 0; parts[i]; i++)
		if (!strstr(aeth_error_last(), parts[i]))
			fail_msg("'%s' not in: %s", parts[i], aeth_error_last());
	no_secret(aeth_error_last(), "the message");
}

#define PARTS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The server's ACL log: entries of denied commands and failed AUTHs. */
static size_t acl_log_entries(const char *reason)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", aeth_test_redis_port(acl_srv), tv);
	redisReply *r;
	size_t n = 0;

	assert_true(c && !c->err);
	r = redisCommand(c, "AUTH aeth-test-admin %s", ADMIN_PW);
	assert_true(r && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	r = redisCommand(c, "ACL LOG");
	assert_true(r && r->type == REDIS_REPLY_ARRAY);
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *e = r->element[i];
		bool match = false;

		for (size_t k = 0; k + 1 < e->elements; k += 2)
			if (!strcmp(e->element[k]->str, "reason") &&
			    (!reason || !strcmp(e->element[k + 1]->str, reason)))
				match = true;
		if (!match)
			continue;
		n++;
		for (size_t k = 0; k + 1 < e->elements; k += 2)
			if (e->element[k + 1]->type == REDIS_REPLY_STRING)
				print_message("  acl log: %s=%s\n", e->element[k]->str,
					      e->element[k + 1]->str);
	}
	freeReplyObject(r);
	r = redisCommand(c, "ACL LOG RESET");
	freeReplyObject(r);
	redisFree(c);
	return n;
}

static void test_url_user_info(void **state)
{
	aeth__redis_url u;

	(void)state;
	QOK(aeth__redis_url_parse("redis://aeth-worker:" WORKER_PW_URL "@127.0.0.1:7000/2", &u));
	assert_string_equal(u.user, "aeth-worker");
	assert_string_equal(u.password, WORKER_PW);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 7000);
	assert_int_equal(u.db, 2);
	assert_string_equal(u.display, "redis://aeth-worker@127.0.0.1:7000/2");
	aeth__redis_url_clear(&u);
	/* a raw '@' in the password: the user info ends at the last '@' */
	QOK(aeth__redis_url_parse("redis://:p@ss@cache.example", &u));
	assert_null(u.user);
	assert_string_equal(u.password, "p@ss");
	assert_string_equal(u.display, "redis://cache.example:6379/0");
	aeth__redis_url_clear(&u);
	QOK(aeth__redis_url_parse("redis://u:pw@[::1]:6390", &u));
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6390);
	assert_string_equal(u.display, "redis://u@[::1]:6390/0");
	aeth__redis_url_clear(&u);
	QOK(aeth__redis_url_parse("redis://[::1]", &u));
	assert_int_equal(u.port, 6379);
	aeth__redis_url_clear(&u);
	QOK(aeth__redis_url_parse("unix:///run/r.sock?db=3&user=aeth-worker&password=" WORKER_PW_URL, &u));
	assert_string_equal(u.path, "/run/r.sock");
	assert_string_equal(u.user, "aeth-worker");
	assert_string_equal(u.password, WORKER_PW);
	assert_string_equal(u.display, "unix:///run/r.sock?db=3&user=aeth-worker");
	aeth__redis_url_clear(&u);
	QOK(aeth__redis_url_parse("unix:///run/r.sock?user=w&password=x", &u));
	assert_string_equal(u.display, "unix:///run/r.sock?user=w");
	aeth__redis_url_clear(&u);
	/* refused, without the password in the message */
	static const char *const bad[] = {
		"redis://u:Wk-3r%zz@127.0.0.1", "redis://u:Wk-3r%2@127.0.0.1",
		"redis://u:Wk-3r%00@127.0.0.1", "unix:///r.sock?password=Wk-3r%g1",
		"unix:///r.sock?user=aeth", "redis://[::1:6379", "redis://[::1]x:1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(aeth__redis_url_parse(bad[i], &u), AETH_EINVALID);
		print_message("  %s\n", aeth_error_last());
		no_secret(aeth_error_last(), "a URL error");
	}
}

static void test_acl_round_trip(void **state)
{
	aeth_queue *sub = open_as(submit_url), *wrk = open_as(worker_url);
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, "default", 1, 0};
	aeth_queue_task *t = NULL, *done = NULL;
	aeth_queue_counts counts = AETH_QUEUE_COUNTS_INIT;
	char id[37], id2[37], id3[37], *json = NULL, **ids = NULL;

	(void)state;
	acl_log_entries(NULL);
	/* the submitter's part: enqueue, the registry, wait (below) */
	QOK(aeth_queue_enqueue(id, sub, "demo:echo", "{\"n\":1}", NULL));
	QOK(aeth_queue_worker_register(wrk, "auth-w1", "{\"types\":[\"demo:echo\"]}", 5000));
	QOK(aeth_queue_worker_list(&json, sub));
	assert_non_null(strstr(json, "auth-w1"));
	aeth_free(json);
	QOK(aeth_queue_worker_get(&json, sub, "auth-w1"));
	aeth_free(json);
	/* the worker's: dequeue, heartbeat, ack */
	QOK(aeth_queue_dequeue(&t, wrk, &src, 1, 2000));
	assert_string_equal(t->id, id);
	QOK(aeth_queue_heartbeat(wrk, t));
	QOK(aeth_queue_ack(wrk, t, "{\"echo\":1}"));
	aeth_queue_task_free(t);
	QOK(aeth_queue_wait_result(&done, sub, NULL, id, 2000));
	assert_int_equal(done->state, AETH_QUEUE_COMPLETED);
	assert_string_equal(done->result, "{\"echo\":1}");
	aeth_queue_task_free(done);
	QOK(aeth_queue_get(&done, sub, NULL, id));
	aeth_queue_task_free(done);
	/* a nack, a batch, the operator calls a worker may make */
	QOK(aeth_queue_enqueue(id2, sub, "demo:echo", "{}", NULL));
	QOK(aeth_queue_enqueue(id3, sub, "demo:echo", "{}", NULL));
	size_t got = 0;
	aeth_queue_task *batch[4] = {NULL};
	QOK(aeth_queue_dequeue_batch(batch, &got, 1, wrk, &src, 1, 2000));
	assert_int_equal(got, 1);
	QOK(aeth_queue_nack(wrk, batch[0], "failed on purpose", 0));
	aeth_queue_task_free(batch[0]);
	QOK(aeth_queue_count(&counts, wrk, "default"));
	QOK(aeth_queue_list(&ids, wrk, "default", AETH_QUEUE_PENDING, 0, 10));
	aeth_strarray_free(ids);
	QOK(aeth_queue_queues(&ids, wrk));
	aeth_strarray_free(ids);
	QOK(aeth_queue_cancel(wrk, NULL, id3));
	QOK(aeth_queue_recover(NULL, wrk, "default"));
	QOK(aeth_queue_worker_unregister(wrk, "auth-w1"));
	/* no command of either was denied */
	assert_int_equal(acl_log_entries(NULL), 0);
	aeth_queue_free(sub);
	aeth_queue_free(wrk);
}

static void test_submitter_cannot_take_tasks(void **state)
{
	aeth_queue *sub = open_as(submit_url);
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, "default", 1, 0};
	aeth_queue_task *t = NULL;
	char id[37];
	int rc;

	(void)state;
	QOK(aeth_queue_enqueue(id, sub, "demo:echo", "{}", NULL));
	rc = aeth_queue_dequeue(&t, sub, &src, 1, 0);
	print_message("  %d %s\n", rc, aeth_error_last());
	assert_int_equal(rc, AETH_EINVALID);
	assert_null(t);
	/* Redis 7.0 words it so when a script's command is refused */
	assert_non_null(strstr(aeth_error_last(), "can't run this command"));
	assert_non_null(strstr(aeth_error_last(), "the ACL user aeth-submit lacks"));
	assert_non_null(strstr(aeth_error_last(), "docs/redis-acl.conf"));
	no_secret(aeth_error_last(), "the message");
	assert_true(acl_log_entries("command") >= 1);
	aeth_queue_free(sub);
}

static void test_wrong_credentials(void **state)
{
	char url[256];
	int port = aeth_test_redis_port(acl_srv);

	(void)state;
	acl_log_entries(NULL);
	/* none: the server's NOAUTH, and what to set */
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
	expect_refused(url, AETH_EINVALID, PARTS("redis at redis://127.0.0.1:", "NOAUTH",
		"the server wants a password: set it in redis.url or AETH_REDIS_URL",
		"redis://USER:PASSWORD@host:port/db"));
	/* a wrong password, an unknown user, the default user (off) */
	snprintf(url, sizeof(url), "redis://aeth-worker:wrong-pw-77@127.0.0.1:%d/0", port);
	expect_refused(url, AETH_EINVALID, PARTS("redis at redis://aeth-worker@127.0.0.1:",
		"refused the user and password", "WRONGPASS",
		"check the user and password in redis.url or AETH_REDIS_URL",
		"the password is not shown"));
	snprintf(url, sizeof(url), "redis://nobody:" SUBMIT_PW "@127.0.0.1:%d/0", port);
	expect_refused(url, AETH_EINVALID, PARTS("redis://nobody@", "WRONGPASS"));
	snprintf(url, sizeof(url), "redis://:" SUBMIT_PW "@127.0.0.1:%d/0", port);
	expect_refused(url, AETH_EINVALID, PARTS("refused the password", "WRONGPASS"));
	/* the worker's password percent-decoded wrongly (raw '/' ends the host) */
	snprintf(url, sizeof(url), "redis://aeth-worker:%s@127.0.0.1:%d/0", WORKER_PW, port);
	expect_refused(url, AETH_EINVALID, PARTS("bad redis URL '(URL with a password)'",
		"must be written %2F"));
	/* the same over the server's Unix socket */
	snprintf(url, sizeof(url), "%s?user=aeth-worker&password=wrong-pw-77",
		 aeth_test_redis_server_url(acl_srv));
	expect_refused(url, AETH_EINVALID, PARTS("?user=aeth-worker", "WRONGPASS"));
	/* repeats of one user are one entry (with a count) */
	assert_true(acl_log_entries("auth") >= 3);
}

static void test_unix_socket_user(void **state)
{
	char url[512];
	aeth_queue *q;

	(void)state;
	snprintf(url, sizeof(url), "%s?user=aeth-worker&password=%s",
		 aeth_test_redis_server_url(acl_srv), WORKER_PW_URL);
	q = open_as(url);
	QOK(aeth_queue_ping(q));
	aeth_queue_free(q);
}

/* The server drops the worker's connection: the next call reconnects and
 * authenticates again (AUTH is part of every connect). */
static void test_reconnect_authenticates(void **state)
{
	aeth_queue *wrk = open_as(worker_url);
	char *killed;

	(void)state;
	QOK(aeth_queue_ping(wrk));
	killed = aeth_test_redis_cmd(admin_url, "CLIENT KILL USER aeth-worker");
	assert_non_null(killed);
	assert_string_equal(killed, "1");
	free(killed);
	QOK(aeth_queue_ping(wrk));
	QOK(aeth_queue_worker_register(wrk, "auth-w2", NULL, 5000));
	aeth_queue_free(wrk);
}

static void test_requirepass(void **state)
{
	char url[256];
	aeth_queue *q;
	int port = aeth_test_redis_port(legacy_srv);

	(void)state;
	q = open_as(legacy_url);
	QOK(aeth_queue_enqueue(NULL, q, "demo:echo", "{}", NULL));
	aeth_queue_free(q);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	expect_refused(url, AETH_EINVALID, PARTS("NOAUTH", "redis://:PASSWORD@host:port/db "
						 "for requirepass"));
	snprintf(url, sizeof(url), "redis://:wrong-pw-77@127.0.0.1:%d", port);
	expect_refused(url, AETH_EINVALID, PARTS("refused the password", "WRONGPASS"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_user_info),
		cmocka_unit_test(test_acl_round_trip),
		cmocka_unit_test(test_submitter_cannot_take_tasks),
		cmocka_unit_test(test_wrong_credentials),
		cmocka_unit_test(test_unix_socket_user),
		cmocka_unit_test(test_reconnect_authenticates),
		cmocka_unit_test(test_requirepass),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
