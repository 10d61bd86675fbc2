/* Unit tests of lib/jail/rules.c: the egress rules of a network profile
 * and which addresses count as public (docs/security.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "jail/jail_rules.h"

static aeth__net_rule ok(const char *text)
{
	aeth__net_rule r;
	const char *why = NULL;

	if (aeth__net_rule_parse(text, &r, &why) != 0)
		fail_msg("'%s' refused: %s", text, why);
	return r;
}

static void bad(const char *text, const char *needle)
{
	aeth__net_rule r;
	const char *why = NULL;

	if (aeth__net_rule_parse(text, &r, &why) == 0)
		fail_msg("'%s' accepted", text ? text : "(null)");
	if (!strstr(why, needle))
		fail_msg("'%s': wanted '%s' in '%s'", text ? text : "(null)",
			 needle, why);
}

static void test_parse(void **state)
{
	aeth__net_rule r;

	(void)state;
	r = ok("host:9418");
	assert_int_equal(r.kind, AETH__RULE_HOST);
	assert_int_equal(r.port, 9418);
	r = ok("10.1.2.3:443");
	assert_int_equal(r.kind, AETH__RULE_NET);
	assert_int_equal(r.addr, 0x0a010203u);
	assert_int_equal(r.mask, 0xffffffffu);
	r = ok("10.1.2.3/16:443"); /* host bits dropped */
	assert_int_equal(r.addr, 0x0a010000u);
	assert_int_equal(r.mask, 0xffff0000u);
	r = ok("*:65535");
	assert_int_equal(r.kind, AETH__RULE_PUBLIC);
	assert_int_equal(r.port, 65535);
	r = ok("dns");
	assert_int_equal(r.kind, AETH__RULE_DNS);
	assert_int_equal(r.port, 0);

	bad(NULL, "expected");
	bad("", "expected");
	bad("host", "expected");
	bad("host:0", "port");
	bad("host:65536", "port");
	bad("host:-1", "port");
	bad("host:80x", "port");
	bad("example.com:443", "names are not resolved");
	bad("1.2.3:80", "IPv4");
	bad("1.2.3.4.5:80", "IPv4");
	bad("256.1.1.1:80", "IPv4");
	bad("1.2.3.4/33:80", "prefix");
	bad("0.0.0.0/0:22", "use *:PORT");
	bad("::1:80", "IPv4");
	bad("host:9418 ", "port");
	bad("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1",
	    "expected");
}

static void test_public(void **state)
{
	static const uint32_t closed[] = {
		0x00000001u, 0x0a000001u, 0x64400001u, 0x7f000001u, 0xa9fea9feu,
		0xac100001u, 0xac1fffffu, 0xc0000001u, 0xc0000201u, 0xc0a80101u,
		0xc6120001u, 0xc6336401u, 0xcb007101u, 0xe0000001u, 0xf0000001u,
		0xffffffffu};
	static const uint32_t open[] = {
		0x08080808u, 0x01010101u, 0xac200001u /* 172.32: past /12 */,
		0x64800001u /* 100.128: past CGNAT */, 0xc0a70101u, 0xdfffffffu};

	(void)state;
	for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++)
		if (aeth__net_addr_public(closed[i]))
			fail_msg("%08x counted public", closed[i]);
	for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++)
		if (!aeth__net_addr_public(open[i]))
			fail_msg("%08x not counted public", open[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_public),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
