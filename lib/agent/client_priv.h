/*
 * lib/agent/client_priv.h - the client's internals shared by client.c
 * (connection, reader thread, simple requests, files) and
 * client_exec.c (commands).
 *
 * Locking: `mu` guards the request list and every field of a request
 * that the reader thread writes; `cond` is broadcast after each frame
 * and when the connection dies. `wmu` serialises whole frames on the
 * socket. Never write to the socket while holding `mu`: the reader needs
 * `mu` to drain the socket, and the agent stops reading while its own
 * output queue is full.
 */
#ifndef AETH_AGENT_CLIENT_PRIV_H
#define AETH_AGENT_CLIENT_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include "client.h"
#include "internal.h"
#include "proto/proto.h"

/* How long a single frame may take to be written. */
#define AETH__AGENT_SEND_MS 30000
/* How long the agent may take to confirm a start or a file op. */
#define AETH__AGENT_REPLY_MS 60000

struct aeth__chunk {
	struct aeth__chunk *next;
	int stream;
	size_t len;
	uint8_t data[];
};

struct aeth__req {
	struct aeth__req *next;
	uint32_t id;
	bool done;        /* final reply (EXIT, OK, ERROR, ...) arrived */
	int rc;           /* 0 or the agent's error code */
	char *msg;        /* the agent's error message */
	char *info;       /* hello */
	uint64_t size;    /* ok */
	aeth__buf data;   /* get; limit = max_len */
	/* exec */
	bool started;
	struct aeth__chunk *head, *tail;
	size_t queued;
	uint64_t stdin_credit;
	aeth__proto_fields exit; /* only integer fields kept */
};

struct aeth__agent {
	int fd;
	char *peer;
	pthread_t reader;
	bool reader_running;
	int wake[2];
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_mutex_t wmu;
	bool dead;
	char *why;        /* why the connection died */
	uint32_t next_id;
	struct aeth__req *reqs;
	unsigned int bad_frames; /* malformed payloads seen (reader only) */
	unsigned int send_ms; /* deadline of one frame's write (tests lower it) */
};

/* Requests: new (registered, with a fresh id) and done with. */
struct aeth__req *aeth__req_new(aeth__agent *a);
void aeth__req_free(aeth__agent *a, struct aeth__req *r);
/* Send a built frame (not finished yet); marks the agent dead on error. */
int aeth__agent_send(aeth__agent *a, aeth__proto_msg *m);
/* With a->mu held: wait for a broadcast until `deadline_ms` (0 = none).
 * 0, or AETH_ETIMEOUT once the deadline passed. */
int aeth__agent_wait_locked(aeth__agent *a, int64_t deadline_ms);
/* With a->mu held: the error for a dead connection (sets the message). */
int aeth__agent_dead_error(aeth__agent *a);
/* With a->mu held: the agent's error reply as ours. */
int aeth__req_error(aeth__agent *a, struct aeth__req *r, const char *what);

#endif
