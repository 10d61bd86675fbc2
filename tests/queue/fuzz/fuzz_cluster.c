/*
 * libFuzzer target: what a Redis Cluster node or a sentinel may send,
 * read by lib/queue/cluster_reply.c. The bytes go in three ways: as the
 * text of an error reply (MOVED / ASK), as a key (its hash slot), and as
 * a stream of RESP replies (hiredis's reader, as on a connection) given
 * to every parser. Whatever the input, a crash, a sanitizer report or a
 * parsed value out of range (a slot over 16383, a port out of 1..65535,
 * a host a server may not name) is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "queue/cluster_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RANGES_MAX 64

static void check_host(const aeth__q_hostport *h, int may_be_empty)
{
	size_t n = strnlen(h->host, sizeof(h->host));

	if (n == sizeof(h->host) || (!may_be_empty && n == 0) || h->port < 1 ||
	    h->port > 65535)
		abort();
	for (size_t i = 0; i < n; i++)
		if (h->host[i] <= ' ' || h->host[i] >= 0x7f || h->host[i] == '[' ||
		    h->host[i] == ']')
			abort();
}

static void check_redirect(const char *s, size_t n)
{
	aeth__q_redirect rd;
	int k = aeth__q_redirect_parse(s, n, &rd);

	if (k < -1 || k > 1)
		abort();
	if (k == 1) {
		if ((rd.kind != AETH__Q_REDIR_MOVED && rd.kind != AETH__Q_REDIR_ASK) ||
		    rd.slot >= AETH__Q_NSLOTS)
			abort();
		check_host(&rd.to, 1);
	} else if (rd.kind != AETH__Q_REDIR_NONE) {
		abort(); /* nothing half-filled on failure */
	}
}

static void check_reply(const redisReply *r)
{
	static aeth__q_slot_range rs[RANGES_MAX];
	aeth__q_hostport at;
	size_t n = 99;
	int k;

	if (aeth__q_slots_parse(r, rs, RANGES_MAX, &n) == 0) {
		if (n > RANGES_MAX)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (rs[i].first > rs[i].last || rs[i].last >= AETH__Q_NSLOTS)
				abort();
			check_host(&rs[i].at, 1);
		}
	} else if (n != 0) {
		abort();
	}
	k = aeth__q_sentinel_addr_parse(r, &at);
	if (k == 1)
		check_host(&at, 0);
	else if (k != 0 && k != -1)
		abort();
	k = aeth__q_role_parse(r);
	if (k < -1 || k > 1)
		abort();
	if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS)
		check_redirect(r->str, r->len);
}

/*
 * hiredis 0.14's reader allocates an array or string of whatever length
 * a header says ("*1222922222"), before any byte of it arrives: no limit
 * of its own (1.0 has maxelements). That is hiredis's, on a connection
 * to a server the operator runs; our parsers only see what it built.
 * Inputs with such headers go to the text checks only.
 */
static int huge_header(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long v = 0;
		size_t k = i + 1;

		if ((i > 0 && p[i - 1] != '\n') || (p[i] != '*' && p[i] != '$'))
			continue;
		if (k < n && p[k] == '-')
			continue;
		for (; k < n && p[k] >= '0' && p[k] <= '9' && v <= 1u << 20; k++)
			v = v * 10 + (p[k] - '0');
		if (v > 1u << 20)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	redisReader *rd;
	void *reply;

	check_redirect((const char *)data, size);
	if (aeth__q_key_slot((const char *)data, size) >= AETH__Q_NSLOTS)
		abort();
	if (huge_header(data, size) || !(rd = redisReaderCreate()))
		return 0;
	if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK)
		while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
			check_reply(reply);
			freeReplyObject(reply);
		}
	redisReaderFree(rd);
	return 0;
}
