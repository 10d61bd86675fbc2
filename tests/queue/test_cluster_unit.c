/*
 * tests/queue/test_cluster_unit.c - no server needed (suite 'unit'): the
 * seed-list URL forms (redis-cluster://, redis-sentinel://), hash slots
 * as Redis computes them, MOVED / ASK and CLUSTER SLOTS as
 * lib/queue/cluster_reply.c reads them. tests/cluster runs the same code
 * against real clusters and sentinels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "queue/cluster_reply.h"
#include "queue/queue_internal.h"

static void test_cluster_url(void **state)
{
	aeth__redis_url u;

	(void)state;
	assert_int_equal(aeth__redis_url_parse(
		"redis-cluster://w:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002", &u), 0);
	assert_int_equal(u.kind, AETH__REDIS_CLUSTER);
	assert_int_equal(u.nseeds, 3);
	assert_string_equal(u.seeds[0].host, "10.0.0.1");
	assert_int_equal(u.seeds[0].port, 7000);
	assert_int_equal(u.seeds[1].port, 6379);
	assert_string_equal(u.seeds[2].host, "::1");
	assert_string_equal(u.user, "w");
	assert_string_equal(u.password, "s@cret");
	assert_string_equal(u.display, "redis-cluster://w@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002");
	assert_null(strstr(u.display, "cret"));
	aeth__redis_url_clear(&u);

	assert_int_equal(aeth__redis_url_parse("redis-cluster://h:1/0", &u), 0);
	aeth__redis_url_clear(&u);
	/* a cluster has no other database; no empty hosts; no bad ports */
	assert_int_equal(aeth__redis_url_parse("redis-cluster://h:1/2", &u), AETH_EINVALID);
	assert_int_equal(aeth__redis_url_parse("redis-cluster://h:1,,h:2", &u), AETH_EINVALID);
	assert_int_equal(aeth__redis_url_parse("redis-cluster://h:0", &u), AETH_EINVALID);
	assert_int_equal(aeth__redis_url_parse("redis-cluster://", &u), AETH_EINVALID);
}

static void test_sentinel_url(void **state)
{
	aeth__redis_url u;

	(void)state;
	assert_int_equal(aeth__redis_url_parse(
		"redis-sentinel://:pw@s1,s2:26380/mymaster?db=3&sentinel_password=x%26y", &u), 0);
	assert_int_equal(u.kind, AETH__REDIS_SENTINEL);
	assert_int_equal(u.nseeds, 2);
	assert_int_equal(u.seeds[0].port, 26379);
	assert_int_equal(u.seeds[1].port, 26380);
	assert_string_equal(u.master, "mymaster");
	assert_int_equal(u.db, 3);
	assert_string_equal(u.password, "pw");
	assert_null(u.sentinel_user);
	assert_string_equal(u.sentinel_password, "x&y");
	assert_string_equal(u.display, "redis-sentinel://s1:26379,s2:26380/mymaster?db=3");
	aeth__redis_url_clear(&u);

	/* the primary's name is required; the data nodes' user goes in the
	 * user info, not the query */
	assert_int_equal(aeth__redis_url_parse("redis-sentinel://s1:26379", &u), AETH_EINVALID);
	assert_int_equal(aeth__redis_url_parse("redis-sentinel://s1/", &u), AETH_EINVALID);
	assert_int_equal(aeth__redis_url_parse("redis-sentinel://s1/m?user=u&password=p", &u),
			 AETH_EINVALID);
	assert_int_equal(aeth__redis_url_parse("redis-sentinel://s1/m?sentinel_user=u", &u),
			 AETH_EINVALID);
	assert_int_equal(aeth__redis_url_parse("redis-sentinel://s1/m m", &u), AETH_EINVALID);
	/* no password in the message */
	assert_int_equal(aeth__redis_url_parse("redis-sentinel://s1/m?sentinel_password=hunter2&x=1",
					       &u), AETH_EINVALID);
	assert_null(strstr(aeth_error_last(), "hunter2"));
}

static void test_key_slot(void **state)
{
	(void)state;
	/* values of CLUSTER KEYSLOT (and the CRC16 check value of the spec) */
	assert_int_equal(aeth__q_key_slot("123456789", 9), 0x31c3 & 16383);
	assert_int_equal(aeth__q_key_slot("foo", 3), 12182);
	assert_int_equal(aeth__q_key_slot("{q}:a", 5), 11958);
	assert_int_equal(aeth__q_key_slot("{q}:pending", 11), aeth__q_key_slot("q", 1));
	/* "{}" is no tag: the whole key counts; only the first '{' does */
	assert_int_equal(aeth__q_key_slot("{}x", 3), aeth__q_key_slot("{}x", 3));
	assert_int_not_equal(aeth__q_key_slot("{}x", 3), aeth__q_key_slot("", 0));
	assert_int_equal(aeth__q_key_slot("a{b}{c}", 7), aeth__q_key_slot("b", 1));
	assert_int_equal(aeth__q_key_slot("a{b", 3), aeth__q_key_slot("a{b", 3));
}

static void test_redirects(void **state)
{
	aeth__q_redirect rd;

	(void)state;
	assert_int_equal(aeth__q_redirect_parse("MOVED 3999 127.0.0.1:6381", 25, &rd), 1);
	assert_int_equal(rd.kind, AETH__Q_REDIR_MOVED);
	assert_int_equal(rd.slot, 3999);
	assert_string_equal(rd.to.host, "127.0.0.1");
	assert_int_equal(rd.to.port, 6381);
	assert_int_equal(aeth__q_redirect_parse("ASK 0 ::1:7000", 14, &rd), 1);
	assert_int_equal(rd.kind, AETH__Q_REDIR_ASK);
	assert_string_equal(rd.to.host, "::1");
	assert_int_equal(aeth__q_redirect_parse("MOVED 1 :7000", 13, &rd), 1);
	assert_string_equal(rd.to.host, "");
	assert_int_equal(aeth__q_redirect_parse("TRYAGAIN x", 10, &rd), 0);
	/* malformed: nothing is half-filled */
	static const char *const bad[] = {"MOVED 16384 h:1", "MOVED -1 h:1", "MOVED 1 h:0",
		"MOVED 1 h:65536", "MOVED 1 h", "MOVED 1", "ASK 1 h h:1", "MOVED 1 h\n:1",
		"MOVED 99999999999 h:1", "MOVED 1 h:1x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(aeth__q_redirect_parse(bad[i], strlen(bad[i]), &rd), -1);
		assert_int_equal(rd.kind, AETH__Q_REDIR_NONE);
	}
}

/* A reply from RESP bytes, as hiredis reads it off a socket. */
static redisReply *resp(const char *bytes)
{
	redisReader *rd = redisReaderCreate();
	void *r = NULL;

	redisReaderFeed(rd, bytes, strlen(bytes));
	assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
	redisReaderFree(rd);
	assert_non_null(r);
	return r;
}

static void test_slots_reply(void **state)
{
	aeth__q_slot_range rs[4];
	aeth__q_hostport at;
	size_t n;
	redisReply *r;

	(void)state;
	r = resp("*2\r\n*3\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n"
		 "*4\r\n:5461\r\n:16383\r\n*2\r\n$0\r\n\r\n:7002\r\n*2\r\n$1\r\nr\r\n:7003\r\n");
	assert_int_equal(aeth__q_slots_parse(r, rs, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rs[0].last, 5460);
	assert_string_equal(rs[0].at.host, "127.0.0.1");
	assert_int_equal(rs[1].first, 5461);
	assert_string_equal(rs[1].at.host, ""); /* the node asked */
	assert_int_equal(rs[1].at.port, 7002);
	assert_int_equal(aeth__q_slots_parse(r, rs, 1, &n), -1); /* more than max */
	freeReplyObject(r);
	r = resp("*1\r\n*3\r\n:9\r\n:8\r\n*2\r\n$1\r\nh\r\n:1\r\n"); /* reversed */
	assert_int_equal(aeth__q_slots_parse(r, rs, 4, &n), -1);
	assert_int_equal(n, 0);
	freeReplyObject(r);

	r = resp("*2\r\n$9\r\n10.0 .0.9\r\n$4\r\n6380\r\n");
	assert_int_equal(aeth__q_sentinel_addr_parse(r, &at), -1); /* a space */
	freeReplyObject(r);
	r = resp("*2\r\n$8\r\n10.0.0.9\r\n$4\r\n6380\r\n");
	assert_int_equal(aeth__q_sentinel_addr_parse(r, &at), 1);
	assert_string_equal(at.host, "10.0.0.9");
	assert_int_equal(at.port, 6380);
	freeReplyObject(r);
	r = resp("*-1\r\n");
	assert_int_equal(aeth__q_sentinel_addr_parse(r, &at), 0);
	freeReplyObject(r);
	r = resp("*3\r\n$6\r\nmaster\r\n:1\r\n*0\r\n");
	assert_int_equal(aeth__q_role_parse(r), 1);
	freeReplyObject(r);
	r = resp("*5\r\n$5\r\nslave\r\n$1\r\nh\r\n:1\r\n$9\r\nconnected\r\n:1\r\n");
	assert_int_equal(aeth__q_role_parse(r), 0);
	freeReplyObject(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_url),
		cmocka_unit_test(test_sentinel_url),
		cmocka_unit_test(test_key_slot),
		cmocka_unit_test(test_redirects),
		cmocka_unit_test(test_slots_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
