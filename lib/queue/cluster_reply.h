/*
 * lib/queue/cluster_reply.h - what Redis Cluster and Sentinel say, read
 * with no trust: the hash slot of a key, MOVED / ASK redirections, the
 * reply of CLUSTER SLOTS, SENTINEL get-master-addr-by-name and ROLE.
 * Pure functions over strings and hiredis replies (no handle, no I/O, no
 * error state), so that tests/queue/fuzz can feed them anything.
 */
#ifndef AETH_QUEUE_CLUSTER_REPLY_H
#define AETH_QUEUE_CLUSTER_REPLY_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#define AETH__Q_NSLOTS 16384
#define AETH__Q_HOST_MAX 255 /* longest host name we accept from a server */

/* The hash slot of a key: CRC16 (XMODEM) of the key, or of the part
 * between the first '{' and the next '}' when that is not empty. */
unsigned int aeth__q_key_slot(const char *key, size_t len);

/* A host and port a server named. host is "" when the server left it
 * out (Redis 7 "MOVED 3999 :6381": the host of the node that said it). */
typedef struct {
	char host[AETH__Q_HOST_MAX + 1];
	int port;
} aeth__q_hostport;

enum { AETH__Q_REDIR_NONE = 0, AETH__Q_REDIR_MOVED = 1, AETH__Q_REDIR_ASK = 2 };

typedef struct {
	int kind; /* AETH__Q_REDIR_* */
	unsigned int slot;
	aeth__q_hostport to;
} aeth__q_redirect;

/*
 * An error reply's text: "MOVED <slot> <host>:<port>" or "ASK ...".
 * Returns 1 (a redirection, *out filled), 0 (another error: out->kind
 * NONE) or -1 (it starts with MOVED or ASK but is malformed: a slot over
 * 16383, a port out of 1..65535, a host with spaces or control bytes).
 */
int aeth__q_redirect_parse(const char *err, size_t len, aeth__q_redirect *out);

/* One range of CLUSTER SLOTS: slots first..last are served by the
 * primary at `at`. */
typedef struct {
	unsigned int first, last;
	aeth__q_hostport at;
} aeth__q_slot_range;

/*
 * The reply of CLUSTER SLOTS: an array of {first, last, {host, port,
 * id, ...}, replicas...}. Fills out[0..*n) (at most `max`) with the
 * primaries. Returns 0, or -1 when the reply is not of that shape (a
 * range out of 0..16383 or reversed, a port out of range, a bad host,
 * more than `max` ranges); then *n is 0.
 */
int aeth__q_slots_parse(const redisReply *r, aeth__q_slot_range *out, size_t max,
			size_t *n);

/* The reply of SENTINEL get-master-addr-by-name: {host, port}. Returns
 * 1 (filled), 0 (nil: the sentinel does not know the name) or -1. */
int aeth__q_sentinel_addr_parse(const redisReply *r, aeth__q_hostport *out);

/* The reply of ROLE: 1 "master", 0 another role, -1 not a ROLE reply. */
int aeth__q_role_parse(const redisReply *r);

#endif
