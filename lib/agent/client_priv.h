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

#include "agent/agent_client.h"
#include "internal.h"
#include "proto/proto.h"

/* How long a single frame may take to be written. */
#define AETH__AGENT_SEND_MS 30000
/* How long the agent may take to confirm a start or a file op. */
#define AETH__AGENT_REPLY_MS 60000
/* A file transfer must finish within the reply time plus 1 s for each
 * MiB it may carry (1 MiB/s; measured here under TCG: a 16 MiB get took
 * 0.4 s, a put 0.2 s). */
#define AETH__AGENT_RATE_MIN (1u << 20)
/* A file get's data waiting for its consumer (a slow fd): above this the
 * reader stops reading the connection until the consumer took half. */
#define AETH__AGENT_GET_QUEUE_MAX (2u << 20)

/*
 * Liveness. With requests in flight and no frame from the agent for
 * AETH__AGENT_IDLE_MS, the reader thread pings it; when nothing at all
 * arrives within AETH__AGENT_PING_MS after that ping, it declares the
 * connection dead and every waiting call fails (AETH_EUNAVAILABLE). A
 * guest that halted or hung is noticed after 30 s of silence, also by a
 * call that has no deadline of its own (aeth_exec_wait of a command
 * without a timeout). A busy guest is not: the agent is PID 1 and answers
 * pings from its poll loop while commands run, in ~1 ms under TCG here
 * (11 ms for a command's round trip); 30 s is thousands of times that, so
 * only a host overloaded beyond use would stall it so long. Armed once
 * the agent has sent a frame: before that (a boot) the hello's own
 * deadline applies.
 */
#define AETH__AGENT_IDLE_MS 10000
#define AETH__AGENT_PING_MS 20000

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
	uint64_t level;   /* hello: the agent's protocol level */
	uint64_t size;    /* ok */
	uint64_t mode;    /* ok of a stat */
	uint8_t *data;    /* ok of a list: its records (malloc'd) */
	size_t data_len;
	/* chunks of output (exec) or file data (get) not taken yet */
	struct aeth__chunk *head, *tail;
	size_t queued;
	/* get */
	bool get;
	uint64_t limit;   /* max_len */
	uint64_t got;     /* bytes of file data received */
	/* exec */
	bool started;
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
	/* Deadlines, AETH__AGENT_* unless a test lowers them before use. */
	unsigned int send_ms;  /* one frame's write */
	unsigned int reply_ms; /* a start or a file op confirmed */
	unsigned int idle_ms;  /* silence before the reader pings */
	unsigned int ping_ms;  /* then, silence before the connection dies */
	/* Liveness (under mu): see AETH__AGENT_IDLE_MS. */
	bool heard;            /* the agent has sent a frame */
	int64_t last_rx_ms;    /* when its last frame arrived */
	int64_t busy_since_ms; /* a request began with none in flight */
	int64_t ping_sent_ms;  /* our unanswered ping, 0 = none */
	bool paused;           /* the reader waits for a get's consumer */
	bool closing;          /* aeth__agent_free: the reader ends */
	/* The protocol level both sides speak (under mu): the lower of
	 * ours and the agent's hello-ok; 1 until a hello answered. */
	unsigned int level;
};

/* Send `m` (built for r) and wait for r's final reply, at most the
 * agent's reply_ms: 0, or the agent's error as ours. */
int aeth__agent_roundtrip(aeth__agent *a, struct aeth__req *r,
			  aeth__proto_msg *m, const char *what);
/* 0 when the agent speaks protocol `level` or later; else AETH_EINVALID
 * saying that `what` needs a newer guest image. */
int aeth__agent_need_level(aeth__agent *a, unsigned int level, const char *what);

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
/* Hand every whole frame in `rx` to its request, as the reader thread
 * does after each read (takes a->mu per frame): 0, or negative once the
 * stream cannot be trusted (a bad header). Also the client fuzz target's
 * entry (tests/agent/fuzz/fuzz_client.c). */
int aeth__agent_dispatch(aeth__agent *a, aeth__proto_rx *rx);
/* With a->mu held: the oldest chunk of r (the caller's to free), or NULL.
 * Lets a reader paused for this consumer go on. */
struct aeth__chunk *aeth__req_pop_locked(aeth__agent *a, struct aeth__req *r);

#endif
