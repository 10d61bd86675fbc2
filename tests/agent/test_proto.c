/* Unit tests of the frame codec (lib/proto): round trips, every bad
 * header field, truncated and oversize frames, malformed fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

static void build_exec(aeth__proto_msg *m)
{
	aeth__proto_msg_begin(m, AETH__MSG_EXEC, 7);
	aeth__proto_add_str(m, AETH__F_ARG, "echo");
	aeth__proto_add_str(m, AETH__F_ARG, "hi there");
	aeth__proto_add_str(m, AETH__F_ENV, "A=b");
	aeth__proto_add_str(m, AETH__F_CWD, "/tmp");
	aeth__proto_add_u64(m, AETH__F_TIMEOUT_MS, 1500);
	aeth__proto_add_i64(m, AETH__F_EXIT_CODE, -1);
	aeth__proto_add_bytes(m, AETH__F_DATA, "\0\1\2", 3);
	assert_int_equal(aeth__proto_msg_finish(m), 0);
}

static void test_round_trip(void **state)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	aeth__proto_header h;
	aeth__proto_fields f;

	(void)state;
	build_exec(&m);
	assert_int_equal(aeth__proto_header_decode(&h, m.data), 0);
	assert_int_equal(h.type, AETH__MSG_EXEC);
	assert_int_equal(h.id, 7);
	assert_int_equal(h.len, m.len - AETH__PROTO_HEADER_LEN);
	assert_int_equal(aeth__proto_parse(&f, m.data + 12, h.len, NULL), 0);
	assert_int_equal(f.nargs, 2);
	assert_string_equal(f.args[0], "echo");
	assert_string_equal(f.args[1], "hi there");
	assert_null(f.args[2]);
	assert_int_equal(f.nenvs, 1);
	assert_string_equal(f.envs[0], "A=b");
	assert_string_equal(f.cwd, "/tmp");
	assert_int_equal(f.timeout_ms, 1500);
	assert_int_equal(f.exit_code, -1);
	assert_int_equal(f.data_len, 3);
	assert_memory_equal(f.data, "\0\1\2", 3);
	assert_true(AETH__PROTO_HAS(&f, AETH__F_CWD));
	assert_false(AETH__PROTO_HAS(&f, AETH__F_PATH));
	aeth__proto_fields_free(&f);
	aeth__proto_msg_free(&m);
}

static void test_bad_header_fields(void **state)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	aeth__proto_header h;
	uint8_t b[AETH__PROTO_HEADER_LEN];

	(void)state;
	build_exec(&m);
	memcpy(b, m.data, sizeof(b));
	b[0] = 'X';
	assert_int_equal(aeth__proto_header_decode(&h, b), AETH_EPROTO);
	memcpy(b, m.data, sizeof(b));
	b[1] = 'X';
	assert_int_equal(aeth__proto_header_decode(&h, b), AETH_EPROTO);
	memcpy(b, m.data, sizeof(b));
	b[2] = 2; /* version */
	assert_int_equal(aeth__proto_header_decode(&h, b), AETH_EPROTO);
	memcpy(b, m.data, sizeof(b));
	b[3] = 0; /* type */
	assert_int_equal(aeth__proto_header_decode(&h, b), AETH_EPROTO);
	aeth__proto_header_encode(b, AETH__MSG_PING, 1, AETH__PROTO_MAX_PAYLOAD + 1);
	assert_int_equal(aeth__proto_header_decode(&h, b), AETH_ETOOBIG);
	aeth__proto_header_encode(b, AETH__MSG_PING, 1, 0xffffffffu);
	assert_int_equal(aeth__proto_header_decode(&h, b), AETH_ETOOBIG);
	aeth__proto_header_encode(b, AETH__MSG_PING, 1, AETH__PROTO_MAX_PAYLOAD);
	assert_int_equal(aeth__proto_header_decode(&h, b), 0);
	/* An unknown type decodes: the receiver answers it with an error. */
	aeth__proto_header_encode(b, 200, 1, 0);
	assert_int_equal(aeth__proto_header_decode(&h, b), 0);
	aeth__proto_msg_free(&m);
}

static int parse_bytes(const uint8_t *p, size_t n)
{
	aeth__proto_fields f;
	const char *why = NULL;
	int rc = aeth__proto_parse(&f, p, n, &why);

	if (rc)
		assert_non_null(why);
	aeth__proto_fields_free(&f);
	return rc;
}

static void test_bad_fields(void **state)
{
	/* tag, len(4), value */
	static const uint8_t trunc_head[] = {AETH__F_CWD, 0, 0};
	static const uint8_t too_long[] = {AETH__F_CWD, 0, 0, 0, 9, 'a', 0};
	static const uint8_t no_nul[] = {AETH__F_CWD, 0, 0, 0, 1, 'a'};
	static const uint8_t inner_nul[] = {AETH__F_CWD, 0, 0, 0, 3, 'a', 0, 0};
	static const uint8_t empty_str[] = {AETH__F_CWD, 0, 0, 0, 0};
	static const uint8_t short_int[] = {AETH__F_PID, 0, 0, 0, 4, 1, 2, 3, 4};
	static const uint8_t twice[] = {AETH__F_CWD, 0, 0, 0, 2, 'a', 0,
					AETH__F_CWD, 0, 0, 0, 2, 'b', 0};
	static const uint8_t unknown[] = {99, 0, 0, 0, 3, 1, 2, 3};
	static const uint8_t args[] = {AETH__F_ARG, 0, 0, 0, 2, 'a', 0,
				       AETH__F_ARG, 0, 0, 0, 2, 'b', 0};

	(void)state;
	assert_int_equal(parse_bytes(trunc_head, sizeof(trunc_head)), AETH_EPROTO);
	assert_int_equal(parse_bytes(too_long, sizeof(too_long)), AETH_EPROTO);
	assert_int_equal(parse_bytes(no_nul, sizeof(no_nul)), AETH_EPROTO);
	assert_int_equal(parse_bytes(inner_nul, sizeof(inner_nul)), AETH_EPROTO);
	assert_int_equal(parse_bytes(empty_str, sizeof(empty_str)), AETH_EPROTO);
	assert_int_equal(parse_bytes(short_int, sizeof(short_int)), AETH_EPROTO);
	assert_int_equal(parse_bytes(twice, sizeof(twice)), AETH_EPROTO);
	assert_int_equal(parse_bytes(unknown, sizeof(unknown)), 0);
	assert_int_equal(parse_bytes(args, sizeof(args)), 0);
	assert_int_equal(parse_bytes(NULL, 0), 0);
}

static void test_too_many_args(void **state)
{
	size_t n = AETH__PROTO_MAX_LIST + 1;
	uint8_t *p = malloc(n * 7);
	aeth__proto_fields f;

	(void)state;
	for (size_t i = 0; i < n; i++)
		memcpy(p + i * 7, "\x03\0\0\0\x02x\0", 7);
	assert_int_equal(aeth__proto_parse(&f, p, n * 7, NULL), AETH_EPROTO);
	aeth__proto_fields_free(&f);
	assert_int_equal(aeth__proto_parse(&f, p, (n - 1) * 7, NULL), 0);
	assert_int_equal(f.nargs, n - 1);
	aeth__proto_fields_free(&f);
	free(p);
}

static void test_builder_limit(void **state)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	size_t big = AETH__PROTO_MAX_PAYLOAD;
	char *p = calloc(1, big);

	(void)state;
	aeth__proto_msg_begin(&m, AETH__MSG_STDIN, 1);
	aeth__proto_add_bytes(&m, AETH__F_DATA, p, big - 5);
	assert_int_equal(aeth__proto_msg_finish(&m), 0);
	assert_int_equal(m.len, AETH__PROTO_HEADER_LEN + big);
	aeth__proto_msg_begin(&m, AETH__MSG_STDIN, 1);
	aeth__proto_add_bytes(&m, AETH__F_DATA, p, big - 4);
	assert_int_equal(aeth__proto_msg_finish(&m), AETH_ETOOBIG);
	aeth__proto_msg_free(&m);
	free(p);
}

static void test_rx_stream(void **state)
{
	aeth__proto_rx rx = AETH__PROTO_RX_INIT;
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	aeth__proto_header h;
	const uint8_t *pl;
	uint8_t stream[4096];
	size_t len = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		aeth__proto_msg_begin(&m, AETH__MSG_PING, (uint32_t)i + 1);
		aeth__proto_add_bytes(&m, AETH__F_DATA, "abcdef", (size_t)i * 2);
		assert_int_equal(aeth__proto_msg_finish(&m), 0);
		memcpy(stream + len, m.data, m.len);
		len += m.len;
	}
	/* Byte by byte: frames come out whole, in order, never early. */
	for (size_t i = 0, got = 0; i < len; i++) {
		int rc;

		assert_int_equal(aeth__proto_rx_feed(&rx, stream + i, 1), 0);
		while ((rc = aeth__proto_rx_next(&rx, &h, &pl)) == 1) {
			got++;
			assert_int_equal(h.id, got);
			assert_int_equal(h.len, 5 + (got - 1) * 2);
		}
		assert_int_equal(rc, 0);
		if (i == len - 1)
			assert_int_equal(got, 3);
	}
	/* A truncated frame stays pending; garbage is an error. */
	aeth__proto_rx_reset(&rx);
	assert_int_equal(aeth__proto_rx_feed(&rx, stream, 11), 0);
	assert_int_equal(aeth__proto_rx_next(&rx, &h, &pl), 0);
	aeth__proto_rx_reset(&rx);
	assert_int_equal(aeth__proto_rx_feed(&rx, "GET / HTTP/1.1\r\n", 16), 0);
	assert_int_equal(aeth__proto_rx_next(&rx, &h, &pl), AETH_EPROTO);
	aeth__proto_rx_free(&rx);
	aeth__proto_msg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_header_fields),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_too_many_args),
		cmocka_unit_test(test_builder_limit),
		cmocka_unit_test(test_rx_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
