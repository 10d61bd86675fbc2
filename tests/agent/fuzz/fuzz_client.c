/*
 * libFuzzer target for the client's reply handling (lib/agent/client.c:
 * aeth__agent_dispatch -> on_frame and its helpers), not only the codec:
 * the input is a byte stream from a hostile agent, fed in pieces while a
 * request of each kind is in flight (ids in the order made: 1 hello,
 * 2 ping, 3 exec, 4 file get with max_len GET_LIMIT, 5 file put). After
 * the stream, what the client promises must hold, else abort():
 * - a get never holds more than max_len;
 * - a command's queued output stays within 4 windows (the stream error);
 * - the queue counters match the chunks queued;
 * - a guest's error text kept for messages has no control bytes and at
 *   most 512 bytes.
 * Built with -Dfuzz=true (clang); fuzz_replay.c runs the committed corpus
 * (client_corpus/, made by make_client_corpus.py), mutations and random
 * garbage through the same function in every build.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/client_priv.h"
#include "aetherium/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NREQ 5
#define GET_LIMIT 4096

static void check_req(const struct aeth__req *r)
{
	size_t queued = 0;

	for (const struct aeth__chunk *c = r->head; c; c = c->next)
		queued += c->len;
	if (queued != r->queued)
		abort();
	if (r->get && r->got > r->limit)
		abort();
	if (!r->get && r->queued > 4 * AETH__PROTO_OUTPUT_WINDOW)
		abort();
	if (r->msg) {
		if (strlen(r->msg) > 512)
			abort();
		for (const char *p = r->msg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	aeth__proto_rx rx = AETH__PROTO_RX_INIT;
	struct aeth__req *r[NREQ];
	size_t step = size ? (size_t)data[0] % 17 + 1 : 1;
	aeth__agent *a;
	int sv[2];

	if (!quiet) { /* bad frames are logged: not thousands of lines here */
		aeth_log_set(NULL, AETH_LOG_OFF, NULL);
		quiet = true;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	/* The reader thread waits on sv[0], which stays silent: the bytes
	 * come through aeth__agent_dispatch below instead, on this thread. */
	if (aeth__agent_open(&a, sv[0], "fuzz") != 0)
		abort();
	for (int i = 0; i < NREQ; i++)
		if (!(r[i] = aeth__req_new(a)))
			abort();
	pthread_mutex_lock(&a->mu);
	r[3]->get = true;
	r[3]->limit = GET_LIMIT;
	pthread_mutex_unlock(&a->mu);
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;

		if (aeth__proto_rx_feed(&rx, data + off, n) ||
		    aeth__agent_dispatch(a, &rx) < 0)
			break; /* the reader drops the stream here */
	}
	pthread_mutex_lock(&a->mu);
	for (int i = 0; i < NREQ; i++) {
		struct aeth__chunk *c;

		check_req(r[i]);
		while ((c = aeth__req_pop_locked(a, r[i])) != NULL)
			free(c);
	}
	pthread_mutex_unlock(&a->mu);
	for (int i = 0; i < NREQ; i++)
		aeth__req_free(a, r[i]);
	aeth__agent_free(a);
	close(sv[1]);
	aeth__proto_rx_free(&rx);
	return 0;
}
