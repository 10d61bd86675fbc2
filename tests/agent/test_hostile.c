/*
 * A hostile agent: a test thread that speaks docs/protocol.md to the
 * library's client over a socketpair and sends what a guest running
 * untrusted code as root could send: output past the cap, frames after a
 * request's final reply, window overflow, a huge frame length, floods of
 * frames for unknown ids and of malformed payloads, control characters in
 * error messages, random frames; or it never reads; or it stops talking:
 * no exit report after a command's timeout, silence with no timeout set,
 * requests never answered, file data past the cap. The client must stay
 * bounded (memory, time, log lines) and return clear errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/client_priv.h"
#include "internal.h"
#include "proto/proto.h"

struct peer;
typedef void (*script_fn)(struct peer *p);

struct peer {
	int fd;
	script_fn script;
	pthread_t th;
	uint32_t exec_id; /* id of the last EXEC seen */
	uint64_t max_len; /* of the last GET seen */
	int pings;        /* PINGs seen */
};

struct fx {
	aeth__agent *a;
	struct peer p;
};

/* ---- the peer's wire helpers (blocking fd) ---- */

static int read_full(int fd, uint8_t *b, size_t n)
{
	while (n > 0) {
		struct pollfd pf = {fd, POLLIN, 0};
		ssize_t r;

		if (poll(&pf, 1, 10000) <= 0)
			return -1;
		r = read(fd, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One frame: 1 (h, *payload malloc'd), 0 on EOF/timeout. */
static int peer_recv(struct peer *p, aeth__proto_header *h, uint8_t **payload)
{
	uint8_t hd[AETH__PROTO_HEADER_LEN];

	*payload = NULL;
	if (read_full(p->fd, hd, sizeof(hd)) != 0 ||
	    aeth__proto_header_decode(h, hd) != 0)
		return 0;
	*payload = malloc(h->len + 1);
	if (!*payload || read_full(p->fd, *payload, h->len) != 0) {
		free(*payload);
		*payload = NULL;
		return 0;
	}
	if (h->type == AETH__MSG_EXEC)
		p->exec_id = h->id;
	if (h->type == AETH__MSG_PING)
		p->pings++;
	if (h->type == AETH__MSG_GET) {
		aeth__proto_fields f = {0};

		if (aeth__proto_parse(&f, *payload, h->len, NULL) == 0)
			p->max_len = f.max_len;
		aeth__proto_fields_free(&f);
	}
	return 1;
}

/* Wait for a frame of `type`, skipping others; its id, or 0. */
static uint32_t peer_expect(struct peer *p, uint8_t type)
{
	aeth__proto_header h;
	uint8_t *pl;

	while (peer_recv(p, &h, &pl)) {
		free(pl);
		if (h.type == type)
			return h.id;
	}
	return 0;
}

static void send_bytes(int fd, const void *b, size_t n)
{
	const uint8_t *q = b;

	while (n > 0) {
		ssize_t w = send(fd, q, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the client went away: fine for these tests */
		q += w;
		n -= (size_t)w;
	}
}

static void peer_send(struct peer *p, aeth__proto_msg *m)
{
	assert_int_equal(aeth__proto_msg_finish(m), 0);
	send_bytes(p->fd, m->data, m->len);
	aeth__proto_msg_free(m);
}

static void send_u64(struct peer *p, uint8_t type, uint32_t id, uint8_t tag,
		     uint64_t v)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, type, id);
	if (tag)
		aeth__proto_add_u64(&m, tag, v);
	peer_send(p, &m);
}

static void send_exit(struct peer *p, uint32_t id, int64_t code)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, AETH__MSG_EXIT, id);
	aeth__proto_add_i64(&m, AETH__F_EXIT_CODE, code);
	peer_send(p, &m);
}

static void send_data(struct peer *p, uint8_t type, uint32_t id, int stream,
		      const void *d, size_t n)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, type, id);
	if (stream)
		aeth__proto_add_u64(&m, AETH__F_STREAM, (uint64_t)stream);
	aeth__proto_add_bytes(&m, AETH__F_DATA, d, n);
	peer_send(p, &m);
}

static void send_error(struct peer *p, uint32_t id, int64_t code,
		       const char *msg)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, AETH__MSG_ERROR, id);
	aeth__proto_add_i64(&m, AETH__F_CODE, code);
	aeth__proto_add_str(&m, AETH__F_MESSAGE, msg);
	peer_send(p, &m);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	aeth__proto_header h;
	uint8_t *pl;

	p->script(p);
	/* Then read (and drop) whatever comes until the client closes. */
	while (peer_recv(p, &h, &pl))
		free(pl);
	return NULL;
}

static struct fx *start(script_fn script)
{
	struct fx *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(aeth__agent_open(&f->a, sv[0], "hostile peer"), 0);
	f->p.fd = sv[1];
	f->p.script = script;
	assert_int_equal(pthread_create(&f->p.th, NULL, peer_main, &f->p), 0);
	return f;
}

/* End the client and the peer; f->p stays readable until free(f). */
static void stop(struct fx *f)
{
	aeth__agent_free(f->a); /* EOF for the peer */
	f->a = NULL;
	pthread_join(f->p.th, NULL);
	close(f->p.fd);
}

static void finish(struct fx *f)
{
	stop(f);
	free(f);
}

static void assert_clean_text(const char *s)
{
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			fail_msg("control byte 0x%02x in message: %s",
				 (unsigned char)*c, s);
}

/* ---- output past output_limit ---- */

#define FLOOD_TOTAL (2u << 20)

static void script_ignore_output_limit(struct peer *p)
{
	aeth__proto_header h;
	uint8_t *pl;
	uint64_t window = 0;
	static uint8_t chunk[AETH__PROTO_CHUNK];
	uint32_t id;
	size_t sent = 0;

	memset(chunk, 'o', sizeof(chunk));
	while (peer_recv(p, &h, &pl)) {
		aeth__proto_fields f = {0};

		if (h.type == AETH__MSG_EXEC &&
		    aeth__proto_parse(&f, pl, h.len, NULL) == 0)
			window = f.window;
		aeth__proto_fields_free(&f);
		free(pl);
		if (h.type == AETH__MSG_EXEC)
			break;
	}
	id = p->exec_id;
	send_u64(p, AETH__MSG_STARTED, id, AETH__F_WINDOW, 0);
	/* Within the granted window, but far past output_limit. */
	while (sent < FLOOD_TOTAL) {
		if (window >= sizeof(chunk)) {
			send_data(p, AETH__MSG_OUTPUT, id, 1, chunk, sizeof(chunk));
			window -= sizeof(chunk);
			sent += sizeof(chunk);
			continue;
		}
		if (!peer_recv(p, &h, &pl))
			return;
		if (h.type == AETH__MSG_WINDOW) {
			aeth__proto_fields f;

			if (aeth__proto_parse(&f, pl, h.len, NULL) == 0)
				window += f.window;
			aeth__proto_fields_free(&f);
		}
		free(pl);
	}
	send_exit(p, id, 0);
}

static void test_output_capped_by_host(void **state)
{
	struct fx *f = start(script_ignore_output_limit);
	const char *argv[] = {"yes", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;

	(void)state;
	o.argv = argv;
	o.output_limit = 4096;
	assert_int_equal(aeth__agent_exec(&r, f->a, &o), 0);
	assert_non_null(r);
	if (r->stdout_len > o.output_limit)
		fail_msg("kept %zu bytes of stdout, output_limit %zu",
			 r->stdout_len, o.output_limit);
	assert_int_equal(r->stdout_len, 4096);
	assert_int_equal(r->stdout_truncated, 1);
	assert_int_equal(r->stderr_truncated, 0);
	aeth__exec_result_free(r);
	finish(f);
}

/* ---- frames after the final reply ---- */

static void script_after_final(struct peer *p)
{
	uint32_t id, ping;
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	peer_expect(p, AETH__MSG_EXEC);
	id = p->exec_id;
	send_u64(p, AETH__MSG_STARTED, id, AETH__F_WINDOW, 0);
	ping = peer_expect(p, AETH__MSG_PING);
	send_exit(p, id, 3);
	send_exit(p, id, 4);  /* a second final reply */
	send_data(p, AETH__MSG_OUTPUT, id, 1, "late", 4);
	send_u64(p, AETH__MSG_STARTED, id, AETH__F_WINDOW, 7);
	send_u64(p, AETH__MSG_PONG, ping, 0, 0);

	id = peer_expect(p, AETH__MSG_GET);
	send_data(p, AETH__MSG_GET_DATA, id, 0, "abc", 3);
	send_u64(p, AETH__MSG_OK, id, AETH__F_SIZE, 3);
	send_data(p, AETH__MSG_GET_DATA, id, 0, "defgh", 5);
	send_u64(p, AETH__MSG_OK, id, AETH__F_SIZE, 8);

	id = peer_expect(p, AETH__MSG_HELLO);
	aeth__proto_msg_begin(&m, AETH__MSG_HELLO_OK, id);
	aeth__proto_add_str(&m, AETH__F_INFO, "{\"first\":1}");
	peer_send(p, &m);
	aeth__proto_msg_begin(&m, AETH__MSG_HELLO_OK, id);
	aeth__proto_add_str(&m, AETH__F_INFO, "{\"second\":1}");
	peer_send(p, &m);
	ping = peer_expect(p, AETH__MSG_PING);
	send_u64(p, AETH__MSG_PONG, ping, 0, 0);
}

static void test_frames_after_final_reply(void **state)
{
	struct fx *f = start(script_after_final);
	const char *argv[] = {"true", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	aeth_exec *e = NULL;
	void *data = NULL;
	size_t len = 0;
	char *info = NULL;

	(void)state;
	o.argv = argv;
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), 0);
	/* The ping's answer comes after both exits: all were dispatched. */
	assert_int_equal(aeth__agent_ping(f->a, 5000), 0);
	assert_int_equal(aeth__exec_wait(&r, e), 0);
	assert_int_equal(r->exit_code, 3);
	assert_int_equal(r->stdout_len, 0);
	aeth__exec_result_free(r);
	aeth__exec_free(e);

	if (aeth__agent_file_get(&data, &len, f->a, "/x", 0) != 0)
		fail_msg("file get: %s", aeth_error_last());
	assert_int_equal(len, 3);
	assert_memory_equal(data, "abc", 3);
	free(data);

	assert_int_equal(aeth__agent_hello(f->a, 5000, &info), 0);
	assert_int_equal(aeth__agent_ping(f->a, 5000), 0);
	assert_string_equal(info, "{\"first\":1}");
	free(info);
	finish(f);
}

/* ---- stdin window overflow ---- */

static void script_credit_overflow(struct peer *p)
{
	uint32_t id, ping;

	peer_expect(p, AETH__MSG_EXEC);
	id = p->exec_id;
	send_u64(p, AETH__MSG_STARTED, id, AETH__F_WINDOW, UINT64_MAX - 10);
	send_u64(p, AETH__MSG_STDIN_ACK, id, AETH__F_WINDOW, 100);
	ping = peer_expect(p, AETH__MSG_PING);
	send_u64(p, AETH__MSG_PONG, ping, 0, 0);
}

static void test_stdin_credit_overflow(void **state)
{
	struct fx *f = start(script_credit_overflow);
	const char *argv[] = {"cat", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec *e = NULL;
	static char buf[1000];

	(void)state;
	o.argv = argv;
	o.keep_stdin_open = 1;
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), 0);
	assert_int_equal(aeth__agent_ping(f->a, 5000), 0);
	/* A window that wrapped around to 89 bytes would block here. */
	if (aeth__exec_write_stdin(e, buf, sizeof(buf), 300) != 0)
		fail_msg("write_stdin: %s", aeth_error_last());
	aeth__exec_free(e);
	finish(f);
}

/* ---- a huge frame length ---- */

static void script_huge_length(struct peer *p)
{
	uint8_t h[AETH__PROTO_HEADER_LEN];

	peer_expect(p, AETH__MSG_PING);
	aeth__proto_header_encode(h, AETH__MSG_PONG, 1, 0xffffffffu);
	send_bytes(p->fd, h, sizeof(h));
}

static void test_huge_length(void **state)
{
	struct fx *f = start(script_huge_length);

	(void)state;
	assert_int_equal(aeth__agent_ping(f->a, 5000), AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "bad frame header"));
	assert_false(aeth__agent_alive(f->a));
	finish(f);
}

/* ---- floods: unknown ids, malformed payloads ---- */

static int warnings;

static void count_log(aeth_log_level level, const char *msg, void *ud)
{
	(void)msg;
	(void)ud;
	if (level >= AETH_LOG_WARN)
		__atomic_add_fetch(&warnings, 1, __ATOMIC_SEQ_CST);
}

static void script_flood(struct peer *p)
{
	static uint8_t junk[1024];
	uint32_t ping = peer_expect(p, AETH__MSG_PING);
	/* A field header claiming more than the payload holds. */
	static const uint8_t bad[] = {AETH__F_DATA, 0, 0, 1, 0, 'x'};

	for (uint32_t i = 0; i < 4000; i++) {
		uint32_t id = ping + 1000 + i * 7919u;

		send_data(p, AETH__MSG_OUTPUT, id ? id : 1, 1, junk, sizeof(junk));
		send_u64(p, AETH__MSG_STARTED, id ? id : 1, AETH__F_WINDOW, ~0ull);
		send_data(p, AETH__MSG_GET_DATA, id ? id : 1, 0, junk, sizeof(junk));
	}
	for (int i = 0; i < 4000; i++) {
		uint8_t hd[AETH__PROTO_HEADER_LEN];

		aeth__proto_header_encode(hd, AETH__MSG_OUTPUT, ping, sizeof(bad));
		send_bytes(p->fd, hd, sizeof(hd));
		send_bytes(p->fd, bad, sizeof(bad));
	}
	send_u64(p, AETH__MSG_PONG, ping, 0, 0);
}

static void test_flood(void **state)
{
	struct fx *f;

	(void)state;
	warnings = 0;
	aeth_log_set(count_log, AETH_LOG_DEBUG, NULL);
	f = start(script_flood);
	if (aeth__agent_ping(f->a, 30000) != 0)
		fail_msg("ping through a flood: %s", aeth_error_last());
	assert_true(aeth__agent_alive(f->a));
	finish(f);
	aeth_log_set(NULL, AETH_LOG_OFF, NULL);
	/* 4000 bad frames must not make 4000 log lines. */
	if (warnings > 20)
		fail_msg("%d warnings for one flood of bad frames", warnings);
	assert_true(warnings >= 1);
}

/* ---- output beyond the window ---- */

static void script_window_abuse(struct peer *p)
{
	static uint8_t chunk[AETH__PROTO_CHUNK];
	uint32_t id;

	peer_expect(p, AETH__MSG_EXEC);
	id = p->exec_id;
	send_u64(p, AETH__MSG_STARTED, id, AETH__F_WINDOW, 0);
	for (int i = 0; i < 64; i++) /* 4 MiB, no window asked for */
		send_data(p, AETH__MSG_OUTPUT, id, 1, chunk, sizeof(chunk));
}

static void test_window_abuse(void **state)
{
	struct fx *f = start(script_window_abuse);
	const char *argv[] = {"yes", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec *e = NULL;
	int64_t t0 = aeth__now_ms();

	(void)state;
	o.argv = argv;
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), 0);
	/* Do not consume: the client must cut the peer off, not buffer. */
	while (aeth__agent_alive(f->a) && aeth__now_ms() - t0 < 10000)
		usleep(10000);
	assert_false(aeth__agent_alive(f->a));
	assert_int_equal(aeth__agent_ping(f->a, 1000), AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "beyond its window"));
	aeth__exec_free(e);
	finish(f);
}

/* ---- a peer that never reads ---- */

static void script_never_read(struct peer *p)
{
	(void)p;
	usleep(1500 * 1000);
}

static void test_never_reads(void **state)
{
	struct fx *f = start(script_never_read);
	size_t n = 16u << 20;
	char *big = calloc(1, n);
	int64_t t0 = aeth__now_ms();
	int rc;

	(void)state;
	assert_non_null(big);
	f->a->send_ms = 300;
	rc = aeth__agent_file_put(f->a, "/big", big, n, 0644);
	assert_int_equal(rc, AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "writing"));
	if (aeth__now_ms() - t0 > 1200)
		fail_msg("a stuck write took %lld ms (send deadline 300 ms)",
			 (long long)(aeth__now_ms() - t0));
	free(big);
	finish(f);
}

/* ---- control bytes in the guest's messages ---- */

static void script_evil_messages(struct peer *p)
{
	char msg[4096];
	uint32_t ping;

	memset(msg, 'x', sizeof(msg));
	memcpy(msg, "evil\x1b[2J\r\nline2\a", 16);
	msg[sizeof(msg) - 1] = '\0';
	ping = peer_expect(p, AETH__MSG_PING);
	send_error(p, ping, AETH_EIO, msg);
	ping = peer_expect(p, AETH__MSG_PING);
	send_error(p, ping, 42, "a positive code");
	peer_expect(p, AETH__MSG_PING);
	send_error(p, 0, AETH_EPROTO, "\x1b]0;pwned\x07 stream error");
}

static void test_evil_messages(void **state)
{
	struct fx *f = start(script_evil_messages);

	(void)state;
	assert_int_equal(aeth__agent_ping(f->a, 5000), AETH_EIO);
	assert_non_null(strstr(aeth_error_last(), "evil"));
	assert_clean_text(aeth_error_last());
	/* Not a code of ours: a protocol error, not success or garbage. */
	assert_int_equal(aeth__agent_ping(f->a, 5000), AETH_EPROTO);
	assert_int_equal(aeth__agent_ping(f->a, 5000), AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "pwned"));
	assert_clean_text(aeth_error_last());
	finish(f);
}

/* ---- random frames while an exec, a get and pings are in flight ---- */

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static void random_frame(struct peer *p, uint32_t id)
{
	static uint8_t pay[4096];
	static const uint8_t types[] = {
		AETH__MSG_HELLO_OK, AETH__MSG_PONG, AETH__MSG_ERROR,
		AETH__MSG_OK, AETH__MSG_STARTED, AETH__MSG_OUTPUT,
		AETH__MSG_EXIT, AETH__MSG_STDIN_ACK, AETH__MSG_GET_DATA, 99};
	uint8_t hd[AETH__PROTO_HEADER_LEN];
	size_t len = 0;
	int nf = (int)(rnd() % 6);

	for (int i = 0; i < nf && len + 5 + 600 < sizeof(pay); i++) {
		uint8_t tag = (uint8_t)(rnd() % 30);
		uint32_t n = rnd() % 4 == 0 ? rnd() % 600 : 8;

		pay[len] = tag;
		pay[len + 1] = 0;
		pay[len + 2] = 0;
		pay[len + 3] = (uint8_t)(n >> 8);
		pay[len + 4] = (uint8_t)n;
		for (uint32_t k = 0; k < n; k++)
			pay[len + 5 + k] = (uint8_t)(rnd() % 3 ? 'a' + rnd() % 26
							       : rnd());
		if (n && rnd() % 2)
			pay[len + 5 + n - 1] = 0; /* often a valid string */
		len += 5 + n;
	}
	if (rnd() % 50 == 0 && len > 0)
		len -= 1 + rnd() % len; /* truncated field */
	aeth__proto_header_encode(hd, types[rnd() % sizeof(types)], id,
				  (uint32_t)len);
	send_bytes(p->fd, hd, sizeof(hd));
	send_bytes(p->fd, pay, len);
}

static void script_random(struct peer *p)
{
	uint32_t exec_id, get_id;

	peer_expect(p, AETH__MSG_EXEC);
	exec_id = p->exec_id;
	send_u64(p, AETH__MSG_STARTED, exec_id, AETH__F_WINDOW, 1000);
	get_id = peer_expect(p, AETH__MSG_GET);
	for (int i = 0; i < 5000; i++) {
		uint32_t pick = rnd() % 4;
		uint32_t id = pick == 0 ? exec_id : pick == 1 ? get_id
				: pick == 2 ? exec_id + 1 + rnd() % 4 : rnd() | 1;

		random_frame(p, id);
	}
	send_exit(p, exec_id, 0);
	send_u64(p, AETH__MSG_OK, get_id, AETH__F_SIZE, 0);
}

/* A file get beside the exec; its size, or 0 (checked by the main thread:
 * cmocka cannot fail a test from another thread). */
static size_t got_len;

static void *get_thread(void *arg)
{
	aeth__agent *a = arg;
	void *data = NULL;
	size_t len = 0;

	if (aeth__agent_file_get(&data, &len, a, "/r", 8192) == 0)
		got_len = len;
	free(data);
	return NULL;
}

static void test_random_frames(void **state)
{
	struct fx *f = start(script_random);
	const char *argv[] = {"x", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	aeth_exec *e = NULL;
	pthread_t g;
	int rc;

	(void)state;
	o.argv = argv;
	o.output_limit = 10000;
	o.timeout_ms = 1; /* wait() gives up 17 s later at most */
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), 0);
	assert_int_equal(pthread_create(&g, NULL, get_thread, f->a), 0);
	rc = aeth__exec_wait(&r, e);
	if (rc == 0) {
		assert_true(r->stdout_len <= 10000 && r->stderr_len <= 10000);
		aeth__exec_result_free(r);
	}
	pthread_join(g, NULL);
	assert_true(got_len <= 8192);
	aeth__exec_free(e);
	aeth__agent_ping(f->a, 200);
	finish(f);
}

/* ---- a command whose exit report never comes ---- */

/* Answer pings (the agent is alive) for `ms`, ignoring everything else. */
static void serve_pings(struct peer *p, int64_t ms)
{
	int64_t end = aeth__now_ms() + ms;
	aeth__proto_header h;
	uint8_t *pl;

	for (int64_t left; (left = end - aeth__now_ms()) > 0;) {
		struct pollfd pf = {p->fd, POLLIN, 0};

		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		if (!peer_recv(p, &h, &pl))
			return;
		free(pl);
		if (h.type == AETH__MSG_PING)
			send_u64(p, AETH__MSG_PONG, h.id, 0, 0);
	}
}

static void script_no_exit(struct peer *p)
{
	peer_expect(p, AETH__MSG_EXEC);
	send_u64(p, AETH__MSG_STARTED, p->exec_id, AETH__F_WINDOW, 0);
	/* then alive but mute about the command, as a guest that halted
	 * would be if something still answered */
	serve_pings(p, 30000);
}

static void test_no_exit_after_timeout(void **state)
{
	struct fx *f = start(script_no_exit);
	const char *argv[] = {"sh", "-c", "sleep 1; halt -f", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	aeth_exec *e = NULL;
	int64_t t0, took;

	(void)state;
	o.argv = argv;
	o.timeout_ms = 300;
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), 0);
	t0 = aeth__now_ms();
	assert_int_equal(aeth__exec_wait(&r, e), AETH_ETIMEOUT);
	took = aeth__now_ms() - t0;
	assert_null(r);
	assert_non_null(strstr(aeth_error_last(), "no exit report"));
	assert_non_null(strstr(aeth_error_last(), "hostile peer"));
	print_message("no exit report: wait gave up %lld ms after the start "
		      "(timeout 300 ms + grace %d ms)\n", (long long)took,
		      AETH_EXEC_WAIT_GRACE_MS);
	if (took < 300 + AETH_EXEC_WAIT_GRACE_MS - 50 ||
	    took > 300 + AETH_EXEC_WAIT_GRACE_MS + 1000)
		fail_msg("wait gave up after %lld ms; timeout 300 + grace %d",
			 (long long)took, AETH_EXEC_WAIT_GRACE_MS);
	aeth__exec_free(e);
	finish(f);
}

/* ---- an agent of protocol level 1 and a command with a uid ---- */

/* A level-1 agent (hello-ok says version 1, as agents before uid/gid
 * did): it would skip the uid field and run the command as root. */
static void script_level1(struct peer *p)
{
	uint32_t id = peer_expect(p, AETH__MSG_HELLO);

	send_u64(p, AETH__MSG_HELLO_OK, id, AETH__F_VERSION, 1);
	serve_pings(p, 1000);
}

static void test_uid_refused_by_old_agent(void **state)
{
	struct fx *f = start(script_level1);
	const char *argv[] = {"id", "-u", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec *e = NULL;

	(void)state;
	assert_int_equal(aeth__agent_hello(f->a, 5000, NULL), 0);
	o.argv = argv;
	o.uid = 65534;
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), AETH_EINVALID);
	assert_null(e);
	assert_non_null(strstr(aeth_error_last(), "protocol level 1"));
	assert_non_null(strstr(aeth_error_last(), "rebuild the guest image"));
	o.uid = -1;
	o.gid = 100;
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), AETH_EINVALID);
	/* the level-2 file requests too, before anything is sent */
	assert_int_equal(aeth__agent_file_remove(f->a, "/x", 1), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "rebuild the guest image"));
	stop(f);
	assert_int_equal(f->p.exec_id, 0); /* nothing was sent to run */
	free(f);
}

/* ---- list replies that lie ---- */

static void send_list(struct peer *p, uint32_t id, uint64_t count,
		      const void *data, size_t len)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, AETH__MSG_OK, id);
	aeth__proto_add_u64(&m, AETH__F_SIZE, count);
	aeth__proto_add_bytes(&m, AETH__F_DATA, data, len);
	peer_send(p, &m);
}

static void script_bad_lists(struct peer *p)
{
	/* mode 0x81a4, size 5, name "ok" */
	static const uint8_t good[] = {0, 0, 0x81, 0xa4, 0, 0, 0, 0, 0, 0, 0, 5,
				       0, 2, 'o', 'k'};
	uint8_t bad[sizeof(good)];
	uint32_t id = peer_expect(p, AETH__MSG_HELLO);

	send_u64(p, AETH__MSG_HELLO_OK, id, AETH__F_VERSION, 2);
	send_list(p, peer_expect(p, AETH__MSG_LIST), 1, good, sizeof(good));
	send_list(p, peer_expect(p, AETH__MSG_LIST), 1000000, good, sizeof(good));
	memcpy(bad, good, sizeof(bad));
	bad[13] = 200; /* a name longer than the data */
	send_list(p, peer_expect(p, AETH__MSG_LIST), 1, bad, sizeof(bad));
	memcpy(bad, good, sizeof(bad));
	bad[14] = '/'; /* a name with a slash: a path, not an entry */
	send_list(p, peer_expect(p, AETH__MSG_LIST), 1, bad, sizeof(bad));
	memcpy(bad, good, sizeof(bad));
	bad[14] = bad[15] = '.'; /* ".." */
	send_list(p, peer_expect(p, AETH__MSG_LIST), 1, bad, sizeof(bad));
	send_list(p, peer_expect(p, AETH__MSG_LIST), 0, good, sizeof(good));
	serve_pings(p, 1000);
}

static void test_list_replies_checked(void **state)
{
	struct fx *f = start(script_bad_lists);
	char **names = NULL;
	unsigned int *modes = NULL;
	uint64_t *sizes = NULL;
	size_t n = 99;

	(void)state;
	assert_int_equal(aeth__agent_hello(f->a, 5000, NULL), 0);
	assert_int_equal(aeth__agent_file_list(&names, &modes, &sizes, &n, f->a,
					       "/d"), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "ok");
	assert_int_equal(modes[0], 0x81a4);
	assert_int_equal(sizes[0], 5);
	aeth_strarray_free(names);
	free(modes);
	free(sizes);
	for (int i = 0; i < 5; i++) {
		names = (char **)1;
		assert_int_equal(aeth__agent_file_list(&names, &modes, &sizes, &n,
						       f->a, "/d"), AETH_EPROTO);
		assert_null(names);
		assert_int_equal(n, 0);
		assert_non_null(strstr(aeth_error_last(), "hostile peer"));
	}
	finish(f);
}

/* ---- an agent that goes silent, no timeout set ---- */

static void script_silent(struct peer *p)
{
	peer_expect(p, AETH__MSG_EXEC);
	send_u64(p, AETH__MSG_STARTED, p->exec_id, AETH__F_WINDOW, 0);
	/* then reads (the peer_main loop) and never answers */
}

static void test_silent_agent_declared_dead(void **state)
{
	struct fx *f = start(script_silent);
	const char *argv[] = {"sleep", "1000", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	aeth_exec *e = NULL;
	int64_t t0, took;

	(void)state;
	f->a->idle_ms = 200;
	f->a->ping_ms = 300;
	o.argv = argv; /* no timeout: only the liveness check ends the wait */
	assert_int_equal(aeth__agent_exec_start(&e, f->a, &o), 0);
	t0 = aeth__now_ms();
	assert_int_equal(aeth__exec_wait(&r, e), AETH_EUNAVAILABLE);
	took = aeth__now_ms() - t0;
	assert_non_null(strstr(aeth_error_last(), "not even the answer to a ping"));
	assert_non_null(strstr(aeth_error_last(), "hostile peer"));
	assert_false(aeth__agent_alive(f->a));
	print_message("silent agent: declared dead after %lld ms (idle 200 + "
		      "ping 300)\n", (long long)took);
	if (took < 400 || took > 2000)
		fail_msg("a silent agent declared dead after %lld ms (idle 200 + "
			 "ping 300)", (long long)took);
	aeth__exec_free(e);
	stop(f);
	assert_int_equal(f->p.pings, 1);
	free(f);
}

/* ---- a busy agent, silent about the command but answering pings ---- */

static void script_busy(struct peer *p)
{
	peer_expect(p, AETH__MSG_EXEC);
	send_u64(p, AETH__MSG_STARTED, p->exec_id, AETH__F_WINDOW, 0);
	serve_pings(p, 1500);
	send_exit(p, p->exec_id, 0);
}

static void test_busy_agent_kept(void **state)
{
	struct fx *f = start(script_busy);
	const char *argv[] = {"sleep", "1", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;

	(void)state;
	f->a->idle_ms = 100;
	f->a->ping_ms = 200;
	o.argv = argv;
	if (aeth__agent_exec(&r, f->a, &o) != 0)
		fail_msg("a busy agent answering pings: %s", aeth_error_last());
	assert_int_equal(r->exit_code, 0);
	aeth__exec_result_free(r);
	assert_true(aeth__agent_alive(f->a));
	stop(f);
	if (f->p.pings < 3)
		fail_msg("%d pings in 1.5 s of silence (idle 100 ms)", f->p.pings);
	free(f);
}

/* ---- requests never answered ---- */

static void script_mute(struct peer *p)
{
	(void)p; /* reads everything (peer_main), answers nothing */
}

static void expect_timeout(int rc, int64_t t0, int64_t budget, const char *what)
{
	int64_t took = aeth__now_ms() - t0;

	if (rc != AETH_ETIMEOUT)
		fail_msg("%s: %d (%s), wanted AETH_ETIMEOUT", what, rc,
			 aeth_error_last());
	if (took > budget + 1000)
		fail_msg("%s gave up after %lld ms, deadline %lld ms", what,
			 (long long)took, (long long)budget);
}

static void test_unanswered_requests(void **state)
{
	struct fx *f = start(script_mute);
	const char *argv[] = {"true", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec *e = NULL;
	void *data = NULL;
	size_t len = 0;
	int64_t t0;
	int fd = dup(2);

	(void)state;
	f->a->reply_ms = 300;
	t0 = aeth__now_ms();
	expect_timeout(aeth__agent_hello(f->a, 300, NULL), t0, 300, "hello");
	t0 = aeth__now_ms();
	expect_timeout(aeth__agent_ping(f->a, 300), t0, 300, "ping");
	o.argv = argv;
	t0 = aeth__now_ms();
	expect_timeout(aeth__agent_exec_start(&e, f->a, &o), t0, 300, "exec");
	assert_null(e);
	t0 = aeth__now_ms();
	expect_timeout(aeth__agent_file_get(&data, &len, f->a, "/x", 1000), t0,
		       300, "file get");
	assert_null(data);
	t0 = aeth__now_ms();
	expect_timeout(aeth__agent_file_get_fd(f->a, "/x", fd, 1000, &len), t0,
		       300, "file get to a fd");
	t0 = aeth__now_ms();
	expect_timeout(aeth__agent_file_put(f->a, "/x", "abc", 3, 0644), t0,
		       300, "file put");
	assert_non_null(strstr(aeth_error_last(), "hostile peer"));
	close(fd);
	finish(f);
}

/* ---- file data past the default cap ---- */

static void script_get_too_much(struct peer *p)
{
	static uint8_t chunk[AETH__PROTO_CHUNK];
	uint32_t id = peer_expect(p, AETH__MSG_GET);
	size_t n = AETH_FILE_GET_MAX_DEFAULT / sizeof(chunk) + 1;

	/* max_len says 16 MiB; send more, then linger before the final
	 * reply: the client must stop at the cap, not at the end. */
	for (size_t i = 0; i < n; i++)
		send_data(p, AETH__MSG_GET_DATA, id, 0, chunk, sizeof(chunk));
	usleep(3000 * 1000);
	send_u64(p, AETH__MSG_OK, id, AETH__F_SIZE, n * sizeof(chunk));
}

static void test_get_past_default_cap(void **state)
{
	struct fx *f = start(script_get_too_much);
	void *data = NULL;
	size_t len = 0;
	int64_t t0 = aeth__now_ms();

	(void)state;
	assert_int_equal(aeth__agent_file_get(&data, &len, f->a, "/big", 0),
			 AETH_ETOOBIG);
	if (aeth__now_ms() - t0 > 2500)
		fail_msg("file get went on past the cap for %lld ms",
			 (long long)(aeth__now_ms() - t0));
	assert_null(data);
	assert_int_equal(len, 0);
	assert_non_null(strstr(aeth_error_last(), "more file data than max_len"));
	assert_true(aeth__agent_alive(f->a));
	stop(f);
	assert_int_equal(f->p.max_len, AETH_FILE_GET_MAX_DEFAULT);
	free(f);
}

/* ---- file get streamed to a slow fd ---- */

#define STREAM_TOTAL (6u << 20)

static void script_get_stream(struct peer *p)
{
	static uint8_t chunk[AETH__PROTO_CHUNK];
	uint32_t id = peer_expect(p, AETH__MSG_GET);

	for (size_t off = 0; off < STREAM_TOTAL; off += sizeof(chunk)) {
		for (size_t k = 0; k < sizeof(chunk); k++)
			chunk[k] = (uint8_t)((off + k) % 251);
		send_data(p, AETH__MSG_GET_DATA, id, 0, chunk, sizeof(chunk));
	}
	send_u64(p, AETH__MSG_OK, id, AETH__F_SIZE, STREAM_TOTAL);
}

struct slow_reader {
	int fd;
	aeth__agent *a;
	size_t got;
	bool bad;
	bool saw_pause;
};

/* Reads the pipe late and slowly (the consumer's fd lags) and checks
 * the bytes. It starts once the client has paused its reader (or after
 * 10 s): the data came faster than the fd took it. */
static void *slow_read(void *arg)
{
	struct slow_reader *s = arg;
	static uint8_t buf[16384];
	ssize_t n;

	for (int i = 0; i < 1000 && !s->saw_pause; i++) {
		usleep(10000);
		pthread_mutex_lock(&s->a->mu);
		s->saw_pause = s->a->paused;
		pthread_mutex_unlock(&s->a->mu);
	}
	while ((n = read(s->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t k = 0; k < n; k++)
			if (buf[k] != (uint8_t)((s->got + (size_t)k) % 251))
				s->bad = true;
		s->got += (size_t)n;
		usleep(500);
	}
	return NULL;
}

static void test_get_fd_streams(void **state)
{
	struct fx *f = start(script_get_stream);
	struct slow_reader s = {0};
	pthread_t th;
	size_t len = 0;
	int pv[2];

	(void)state;
	assert_int_equal(pipe(pv), 0);
	s.fd = pv[0];
	s.a = f->a;
	assert_int_equal(pthread_create(&th, NULL, slow_read, &s), 0);
	if (aeth__agent_file_get_fd(f->a, "/stream", pv[1], 0, &len) != 0)
		fail_msg("file get to a fd: %s", aeth_error_last());
	close(pv[1]);
	pthread_join(th, NULL);
	close(pv[0]);
	assert_int_equal(len, STREAM_TOTAL);
	assert_int_equal(s.got, STREAM_TOTAL);
	assert_false(s.bad);
	/* The pipe took nothing until the client paused its reader (memory
	 * bounded by AETH__AGENT_GET_QUEUE_MAX); then it went on. */
	assert_true(s.saw_pause);
	assert_true(aeth__agent_alive(f->a));
	stop(f);
	assert_int_equal(f->p.max_len, AETH__PROTO_FILE_MAX);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_capped_by_host),
		cmocka_unit_test(test_frames_after_final_reply),
		cmocka_unit_test(test_stdin_credit_overflow),
		cmocka_unit_test(test_huge_length),
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_window_abuse),
		cmocka_unit_test(test_never_reads),
		cmocka_unit_test(test_evil_messages),
		cmocka_unit_test(test_random_frames),
		cmocka_unit_test(test_uid_refused_by_old_agent),
		cmocka_unit_test(test_list_replies_checked),
		cmocka_unit_test(test_no_exit_after_timeout),
		cmocka_unit_test(test_silent_agent_declared_dead),
		cmocka_unit_test(test_busy_agent_kept),
		cmocka_unit_test(test_unanswered_requests),
		cmocka_unit_test(test_get_past_default_cap),
		cmocka_unit_test(test_get_fd_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
