/*
 * lib/jail/jail_rules.h - egress rules of a guest network profile, shared by
 * the library (which checks a profile before it boots anything) and
 * aeth-jailer (whose relay applies them to every connection). Plain C,
 * no library state: the jailer is a separate program.
 *
 * A rule is one string:
 *   "host:PORT"          the worker host's own loopback on PORT; the guest
 *                        dials 10.0.2.2:PORT (QEMU user networking's name
 *                        for the host)
 *   "A.B.C.D:PORT"       that IPv4 address on PORT (any range: the
 *                        operator named it)
 *   "A.B.C.D/N:PORT"     any address of that network on PORT
 *   "*:PORT"             any public IPv4 address on PORT: never loopback,
 *                        private, link-local (cloud metadata), shared,
 *                        multicast or reserved ranges, nor the host's own
 *                        addresses
 *   "dns"                name resolution through the host's resolver
 * Everything else is unreachable: a guest's connection to it is refused.
 */
#ifndef AETH_JAIL_RULES_H
#define AETH_JAIL_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AETH__NET_RULE_MAX 64   /* rules in one profile */
#define AETH__NET_RULE_LEN 64   /* longest rule text */

typedef enum {
	AETH__RULE_HOST = 1,  /* the host's loopback */
	AETH__RULE_NET,       /* an address or network the operator named */
	AETH__RULE_PUBLIC,    /* any public address */
	AETH__RULE_DNS        /* the resolver */
} aeth__rule_kind;

typedef struct {
	aeth__rule_kind kind;
	uint32_t addr;        /* host byte order; NET only */
	uint32_t mask;        /* host byte order; NET only */
	uint16_t port;        /* 0 for DNS */
} aeth__net_rule;

/*
 * Parse one rule. 0, or -1 with *why set to a static explanation
 * ("port must be 1 to 65535", ...).
 */
int aeth__net_rule_parse(const char *text, aeth__net_rule *out,
			 const char **why);

/*
 * True when `addr` (host byte order) is outside every range a guest must
 * not reach through a "*:PORT" rule (RFC 1918, loopback, link-local,
 * CGNAT, multicast, documentation, benchmarking, reserved, broadcast).
 */
bool aeth__net_addr_public(uint32_t addr);

#endif
