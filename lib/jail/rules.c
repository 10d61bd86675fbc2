/*
 * lib/jail/rules.c - parse egress rules and classify addresses (jail_rules.h).
 */
#include <stdlib.h>
#include <string.h>

#include "jail/jail_rules.h"

/* "1..65535" with nothing after it. */
static int parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	if (v == 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* Dotted quad, exactly four parts of 0..255, no leading zeros games. */
static int parse_ipv4(const char *s, size_t len, uint32_t *out)
{
	uint32_t a = 0;
	int parts = 0;
	size_t i = 0;

	while (parts < 4) {
		unsigned int v = 0, digits = 0;

		while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			v = v * 10 + (unsigned int)(s[i++] - '0');
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return -1;
		a = a << 8 | v;
		if (++parts < 4) {
			if (i >= len || s[i] != '.')
				return -1;
			i++;
		}
	}
	if (i != len)
		return -1;
	*out = a;
	return 0;
}

int aeth__net_rule_parse(const char *text, aeth__net_rule *out,
			 const char **why)
{
	const char *colon, *slash;
	size_t hostlen;

	memset(out, 0, sizeof(*out));
	*why = "expected host:PORT, A.B.C.D:PORT, A.B.C.D/N:PORT, *:PORT or dns";
	if (!text || strlen(text) >= AETH__NET_RULE_LEN)
		return -1;
	if (!strcmp(text, "dns")) {
		out->kind = AETH__RULE_DNS;
		return 0;
	}
	colon = strrchr(text, ':');
	if (!colon)
		return -1;
	if (parse_port(colon + 1, &out->port) != 0) {
		*why = "the port must be a number from 1 to 65535";
		return -1;
	}
	hostlen = (size_t)(colon - text);
	if (hostlen == 4 && !strncmp(text, "host", 4)) {
		out->kind = AETH__RULE_HOST;
		return 0;
	}
	if (hostlen == 1 && text[0] == '*') {
		out->kind = AETH__RULE_PUBLIC;
		return 0;
	}
	out->kind = AETH__RULE_NET;
	out->mask = 0xffffffffu;
	slash = memchr(text, '/', hostlen);
	if (slash) {
		uint16_t bits = 0;
		char nbuf[4];
		size_t nlen = hostlen - (size_t)(slash + 1 - text);

		if (nlen == 0 || nlen >= sizeof(nbuf))
			return -1;
		memcpy(nbuf, slash + 1, nlen);
		nbuf[nlen] = '\0';
		if (!strcmp(nbuf, "0"))
			bits = 0;
		else if (parse_port(nbuf, &bits) != 0 || bits > 32) {
			*why = "the network prefix must be /0 to /32";
			return -1;
		}
		if (bits == 0) {
			*why = "a /0 network is every address: use *:PORT for the "
			       "public internet";
			return -1;
		}
		out->mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
		hostlen = (size_t)(slash - text);
	}
	if (parse_ipv4(text, hostlen, &out->addr) != 0) {
		*why = "the address must be an IPv4 address (A.B.C.D), \"host\" "
		       "or \"*\"; names are not resolved";
		return -1;
	}
	out->addr &= out->mask;
	return 0;
}

bool aeth__net_addr_public(uint32_t a)
{
	static const struct {
		uint32_t net, mask;
	} closed[] = {
		{0x00000000u, 0xff000000u}, /* 0.0.0.0/8 "this network" */
		{0x0a000000u, 0xff000000u}, /* 10.0.0.0/8 */
		{0x64400000u, 0xffc00000u}, /* 100.64.0.0/10 shared (CGNAT) */
		{0x7f000000u, 0xff000000u}, /* 127.0.0.0/8 loopback */
		{0xa9fe0000u, 0xffff0000u}, /* 169.254.0.0/16 link-local, metadata */
		{0xac100000u, 0xfff00000u}, /* 172.16.0.0/12 */
		{0xc0000000u, 0xffffff00u}, /* 192.0.0.0/24 IETF protocol */
		{0xc0000200u, 0xffffff00u}, /* 192.0.2.0/24 documentation */
		{0xc0a80000u, 0xffff0000u}, /* 192.168.0.0/16 */
		{0xc6120000u, 0xfffe0000u}, /* 198.18.0.0/15 benchmarking */
		{0xc6336400u, 0xffffff00u}, /* 198.51.100.0/24 documentation */
		{0xcb007100u, 0xffffff00u}, /* 203.0.113.0/24 documentation */
		{0xe0000000u, 0xf0000000u}, /* 224.0.0.0/4 multicast */
		{0xf0000000u, 0xf0000000u}, /* 240.0.0.0/4 reserved, broadcast */
	};

	for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++)
		if ((a & closed[i].mask) == closed[i].net)
			return false;
	return true;
}
