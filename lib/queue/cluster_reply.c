/*
 * lib/queue/cluster_reply.c - see cluster_reply.h. Every number and name
 * a server sends is checked before it is used: a slot indexes a table, a
 * host and port are dialled.
 */
#include <string.h>

#include "cluster_reply.h"

/* CRC16-CCITT (XMODEM, polynomial 0x1021, init 0), as Redis Cluster's
 * keyHashSlot(); four bits at a time. */
static const unsigned short crc_nibble[16] = {
	0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
	0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
};

static unsigned int crc16(const unsigned char *p, size_t n)
{
	unsigned int crc = 0;

	for (size_t i = 0; i < n; i++) {
		crc = ((crc << 4) ^ crc_nibble[((crc >> 12) ^ (p[i] >> 4)) & 0xf]) & 0xffff;
		crc = ((crc << 4) ^ crc_nibble[((crc >> 12) ^ p[i]) & 0xf]) & 0xffff;
	}
	return crc;
}

unsigned int aeth__q_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len), *close;

	if (open) {
		size_t after = len - (size_t)(open - key) - 1;

		close = memchr(open + 1, '}', after);
		if (close && close > open + 1)
			return crc16((const unsigned char *)open + 1,
				     (size_t)(close - open - 1)) & (AETH__Q_NSLOTS - 1);
	}
	return crc16((const unsigned char *)key, len) & (AETH__Q_NSLOTS - 1);
}

/* A host a server may name: letters, digits and . - _ : % (IPv6 with a
 * zone), at most AETH__Q_HOST_MAX bytes; "" means "the node asked". */
static int host_ok(const char *h, size_t n)
{
	if (n > AETH__Q_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
		      c == ':' || c == '%'))
			return 0;
	}
	return 1;
}

static int set_host(aeth__q_hostport *hp, const char *h, size_t n)
{
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { /* [::1] */
		h++;
		n -= 2;
	}
	if (!host_ok(h, n))
		return -1;
	memcpy(hp->host, h, n);
	hp->host[n] = '\0';
	return 0;
}

/* Decimal digits s[0..n) as a number in [min, max], else -1. */
static long num_in(const char *s, size_t n, long min, long max)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v < min || v > max ? -1 : v;
}

int aeth__q_redirect_parse(const char *err, size_t len, aeth__q_redirect *out)
{
	const char *p, *end = err + len, *sp, *colon;
	long slot, port;

	memset(out, 0, sizeof(*out));
	if (len >= 6 && !memcmp(err, "MOVED ", 6)) {
		out->kind = AETH__Q_REDIR_MOVED;
		p = err + 6;
	} else if (len >= 4 && !memcmp(err, "ASK ", 4)) {
		out->kind = AETH__Q_REDIR_ASK;
		p = err + 4;
	} else {
		return 0;
	}
	if (!(sp = memchr(p, ' ', (size_t)(end - p))) ||
	    (slot = num_in(p, (size_t)(sp - p), 0, AETH__Q_NSLOTS - 1)) < 0)
		goto bad;
	p = sp + 1;
	/* host:port, the port after the last ':' (an IPv6 host has more) */
	for (colon = NULL, sp = p; sp < end; sp++)
		if (*sp == ':')
			colon = sp;
	if (!colon || (port = num_in(colon + 1, (size_t)(end - colon - 1), 1, 65535)) < 0 ||
	    set_host(&out->to, p, (size_t)(colon - p)) != 0)
		goto bad;
	out->slot = (unsigned int)slot;
	out->to.port = (int)port;
	return 1;
bad:
	memset(out, 0, sizeof(*out));
	return -1;
}

/* A reply element that holds a number: an integer, or digits as text. */
static long elem_num(const redisReply *e, long min, long max)
{
	if (!e)
		return -1;
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer < min || e->integer > max ? -1 : (long)e->integer;
	if (e->type == REDIS_REPLY_STRING)
		return num_in(e->str, e->len, min, max);
	return -1;
}

/* {host, port, ...} of a node. */
static int node_parse(const redisReply *n, aeth__q_hostport *out)
{
	long port;

	if (!n || n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
	    n->element[0]->type != REDIS_REPLY_STRING ||
	    (port = elem_num(n->element[1], 1, 65535)) < 0)
		return -1;
	/* "?" : a node whose address the cluster does not know yet */
	if (n->element[0]->len == 1 && n->element[0]->str[0] == '?')
		return -1;
	if (set_host(out, n->element[0]->str, n->element[0]->len) != 0)
		return -1;
	out->port = (int)port;
	return 0;
}

int aeth__q_slots_parse(const redisReply *r, aeth__q_slot_range *out, size_t max,
			size_t *n)
{
	*n = 0;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements > max)
		return -1;
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		long first, last;

		if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    (first = elem_num(e->element[0], 0, AETH__Q_NSLOTS - 1)) < 0 ||
		    (last = elem_num(e->element[1], 0, AETH__Q_NSLOTS - 1)) < 0 ||
		    first > last || node_parse(e->element[2], &out[i].at) != 0) {
			*n = 0;
			return -1;
		}
		out[i].first = (unsigned int)first;
		out[i].last = (unsigned int)last;
	}
	*n = r->elements;
	return 0;
}

int aeth__q_sentinel_addr_parse(const redisReply *r, aeth__q_hostport *out)
{
	long port;

	memset(out, 0, sizeof(*out));
	if (r && r->type == REDIS_REPLY_NIL)
		return 0;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len == 0 ||
	    (port = elem_num(r->element[1], 1, 65535)) < 0 ||
	    set_host(out, r->element[0]->str, r->element[0]->len) != 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->port = (int)port;
	return 1;
}

int aeth__q_role_parse(const redisReply *r)
{
	const redisReply *e;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return -1;
	e = r->element[0];
	if (e->type != REDIS_REPLY_STRING)
		return -1;
	return e->len == 6 && !memcmp(e->str, "master", 6);
}
