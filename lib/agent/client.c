/*
 * lib/agent/client.c - connection to a guest agent: the reader thread
 * that demultiplexes frames to requests, sending, hello, ping, shutdown
 * and file transfers. Commands are in client_exec.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_priv.h"

/* ---- requests ---- */

static struct aeth__req *find_req(aeth__agent *a, uint32_t id)
{
	for (struct aeth__req *r = a->reqs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/* With a->mu held: an id no request in flight uses (never 0). */
static uint32_t fresh_id_locked(aeth__agent *a)
{
	uint32_t id;

	do
		id = ++a->next_id;
	while (id == 0 || find_req(a, id));
	return id;
}

/* With a->mu held: does a request still wait for its final reply? */
static bool in_flight_locked(aeth__agent *a)
{
	for (struct aeth__req *r = a->reqs; r; r = r->next)
		if (!r->done)
			return true;
	return false;
}

/* Make the reader look at its state again (liveness, pause, close). The
 * pipe is non-blocking: when full, a wake-up is pending anyway. */
static void wake_reader(aeth__agent *a)
{
	if (write(a->wake[1], "w", 1) < 0) {
		/* EAGAIN: already woken */
	}
}

struct aeth__req *aeth__req_new(aeth__agent *a)
{
	struct aeth__req *r = calloc(1, sizeof(*r));
	bool was_idle;

	if (!r) {
		aeth__error_oom();
		return NULL;
	}
	pthread_mutex_lock(&a->mu);
	r->id = fresh_id_locked(a);
	/* The silence the liveness check measures starts now at the latest. */
	was_idle = !in_flight_locked(a);
	if (was_idle)
		a->busy_since_ms = aeth__now_ms();
	r->next = a->reqs;
	a->reqs = r;
	pthread_mutex_unlock(&a->mu);
	if (was_idle)
		wake_reader(a);
	return r;
}

void aeth__req_free(aeth__agent *a, struct aeth__req *r)
{
	struct aeth__req **p;
	bool paused;

	if (!r)
		return;
	pthread_mutex_lock(&a->mu);
	for (p = &a->reqs; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	paused = a->paused;
	pthread_mutex_unlock(&a->mu);
	if (paused) /* perhaps for this request's data */
		wake_reader(a);
	while (r->head) {
		struct aeth__chunk *c = r->head;

		r->head = c->next;
		free(c);
	}
	free(r->msg);
	free(r->info);
	free(r->data);
	free(r);
}

struct aeth__chunk *aeth__req_pop_locked(aeth__agent *a, struct aeth__req *r)
{
	struct aeth__chunk *c = r->head;

	if (!c)
		return NULL;
	r->head = c->next;
	if (!r->head)
		r->tail = NULL;
	r->queued -= c->len;
	if (a->paused && r->queued <= AETH__AGENT_GET_QUEUE_MAX / 2)
		wake_reader(a);
	return c;
}

/* ---- connection state ---- */

static void set_dead_locked(aeth__agent *a, const char *why)
{
	if (!a->dead) {
		a->dead = true;
		a->why = strdup(why);
		aeth__debug("agent of %s: connection lost: %s", a->peer, why);
	}
	pthread_cond_broadcast(&a->cond);
}

static void set_dead(aeth__agent *a, const char *why)
{
	pthread_mutex_lock(&a->mu);
	set_dead_locked(a, why);
	pthread_mutex_unlock(&a->mu);
}

int aeth__agent_dead_error(aeth__agent *a)
{
	return aeth__error_set(AETH_EUNAVAILABLE,
			       "connection to the agent of %s lost: %s "
			       "(the VM may have stopped; the next call "
			       "reconnects)", a->peer,
			       a->why ? a->why : "closed");
}

int aeth__req_error(aeth__agent *a, struct aeth__req *r, const char *what)
{
	return aeth__error_set(r->rc, "%s in %s: %s", what, a->peer,
			       r->msg ? r->msg : aeth_strerror(r->rc));
}

bool aeth__agent_alive(aeth__agent *a)
{
	bool alive;

	pthread_mutex_lock(&a->mu);
	alive = !a->dead;
	pthread_mutex_unlock(&a->mu);
	return alive;
}

int aeth__agent_wait_locked(aeth__agent *a, int64_t deadline_ms)
{
	struct timespec ts;
	int64_t left;

	if (deadline_ms <= 0) {
		pthread_cond_wait(&a->cond, &a->mu);
		return 0;
	}
	left = deadline_ms - aeth__now_ms();
	if (left <= 0)
		return AETH_ETIMEOUT;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&a->cond, &a->mu, &ts);
	return 0;
}

/* ---- sending ---- */

static int write_all(aeth__agent *a, const uint8_t *p, size_t n,
		     int64_t deadline)
{
	while (n > 0) {
		struct pollfd pfd = {a->fd, POLLOUT, 0};
		ssize_t w = send(a->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == ENOTSOCK)
			w = write(a->fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (aeth__now_ms() >= deadline)
			return -ETIMEDOUT;
		poll(&pfd, 1, 100);
	}
	return 0;
}

int aeth__agent_send(aeth__agent *a, aeth__proto_msg *m)
{
	int rc = aeth__proto_msg_finish(m);
	char why[128];

	if (rc)
		return aeth__error_set(rc, "a request for the agent of %s is "
				       "too large (frames carry at most 1 MiB)",
				       a->peer);
	pthread_mutex_lock(&a->wmu);
	if (!aeth__agent_alive(a)) {
		pthread_mutex_unlock(&a->wmu);
		pthread_mutex_lock(&a->mu);
		rc = aeth__agent_dead_error(a);
		pthread_mutex_unlock(&a->mu);
		return rc;
	}
	rc = write_all(a, m->data, m->len, aeth__now_ms() + a->send_ms);
	pthread_mutex_unlock(&a->wmu);
	if (rc == 0)
		return 0;
	/* A frame half written leaves the stream unusable. */
	snprintf(why, sizeof(why), "writing: %s", strerror(-rc));
	set_dead(a, why);
	shutdown(a->fd, SHUT_RDWR);
	pthread_mutex_lock(&a->mu);
	rc = aeth__agent_dead_error(a);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- the reader thread ---- */

static int agent_code(int64_t code)
{
	return code < 0 && code >= AETH_ESTATE ? (int)code : AETH_EPROTO;
}

/* Longest guest-sent message we keep (error, stream error). */
#define GUEST_TEXT_MAX 512

/*
 * A copy of text the guest sent, fit for messages, logs and database
 * rows: at most GUEST_TEXT_MAX bytes, control bytes (escape sequences,
 * newlines, bells) turned into spaces. NULL if out of memory.
 */
static char *guest_text(const char *s)
{
	size_t n = strnlen(s, GUEST_TEXT_MAX);
	char *t = malloc(n + 1);

	if (!t)
		return NULL;
	for (size_t i = 0; i < n; i++)
		t[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
	t[n] = '\0';
	return t;
}

static void finish_req(struct aeth__req *r, int rc, const char *msg)
{
	r->done = true;
	r->rc = rc;
	if (msg && !r->msg)
		r->msg = guest_text(msg);
}

/* Queue a copy of `len` bytes for r's consumer; false if out of memory. */
static bool queue_chunk(struct aeth__req *r, int stream, const uint8_t *data,
			size_t len)
{
	struct aeth__chunk *c = malloc(sizeof(*c) + len);

	if (!c)
		return false;
	c->next = NULL;
	c->stream = stream;
	c->len = len;
	if (len) /* an empty OUTPUT frame may carry no data pointer */
		memcpy(c->data, data, len);
	if (r->tail)
		r->tail->next = c;
	else
		r->head = c;
	r->tail = c;
	r->queued += len;
	return true;
}

static void on_output(aeth__agent *a, struct aeth__req *r,
		      const aeth__proto_fields *f)
{
	if (f->stream < 1 || f->stream > 2 || !r->started)
		return;
	/* The agent may send at most its window; more is a broken peer. */
	if (r->queued + f->data_len > 4 * AETH__PROTO_OUTPUT_WINDOW) {
		set_dead_locked(a, "the agent sent output beyond its window");
		return;
	}
	if (!queue_chunk(r, (int)f->stream, f->data, f->data_len))
		finish_req(r, AETH_ENOMEM, "out of memory for command output");
}

/* File data: at most max_len in all (the agent checks the size before it
 * sends; a guest that lies is cut off here, not buffered). */
static void on_get_data(struct aeth__req *r, const aeth__proto_fields *f)
{
	if (!r->get)
		finish_req(r, AETH_EPROTO, "the agent sent file data for a "
			   "request that is not a file get");
	else if (f->data_len > r->limit - r->got)
		finish_req(r, AETH_ETOOBIG, "the agent sent more file data "
			   "than max_len");
	else if (!queue_chunk(r, 0, f->data, f->data_len))
		finish_req(r, AETH_ENOMEM, "out of memory for file data");
	else
		r->got += f->data_len;
}

static void on_frame(aeth__agent *a, const aeth__proto_header *h,
		     const aeth__proto_fields *f)
{
	struct aeth__req *r = find_req(a, h->id);

	if (!r) {
		if (h->id == 0 && h->type == AETH__MSG_ERROR) {
			char *why = f->message ? guest_text(f->message) : NULL;

			set_dead_locked(a, why ? why : "agent error");
			free(why);
		}
		return; /* late frame of a request already freed */
	}
	/* After the final reply the waiting thread owns the request's data
	 * without the lock (file get detaches it, wait reads the exit):
	 * anything more the guest sends for it is dropped, not applied. */
	if (r->done)
		return;
	switch (h->type) {
	case AETH__MSG_HELLO_OK:
		r->info = f->info ? strdup(f->info) : NULL;
		r->level = AETH__PROTO_HAS(f, AETH__F_VERSION) ? f->version : 1;
		finish_req(r, 0, NULL);
		break;
	case AETH__MSG_PONG:
		finish_req(r, 0, NULL);
		break;
	case AETH__MSG_OK:
		r->size = f->size;
		r->mode = f->mode;
		if (f->data_len && !r->data) { /* a list's records */
			r->data = malloc(f->data_len);
			if (r->data) {
				memcpy(r->data, f->data, f->data_len);
				r->data_len = f->data_len;
			}
		}
		finish_req(r, r->data_len == f->data_len ? 0 : AETH_ENOMEM,
			   r->data_len == f->data_len ? NULL : "out of memory");
		break;
	case AETH__MSG_ERROR:
		finish_req(r, agent_code(f->code), f->message);
		break;
	case AETH__MSG_STARTED:
		r->started = true;
		r->stdin_credit = f->window;
		break;
	case AETH__MSG_OUTPUT:
		on_output(a, r, f);
		break;
	case AETH__MSG_STDIN_ACK:
		/* Saturate: a guest's huge grant must not wrap to a small
		 * credit (which would stall our stdin writes). */
		r->stdin_credit = f->window > UINT64_MAX - r->stdin_credit
					  ? UINT64_MAX
					  : r->stdin_credit + f->window;
		break;
	case AETH__MSG_EXIT:
		r->exit = *f;
		r->exit.args = r->exit.envs = NULL;
		finish_req(r, 0, NULL);
		break;
	case AETH__MSG_GET_DATA:
		on_get_data(r, f);
		break;
	default:
		break; /* a newer agent's frame we do not know: ignore */
	}
}

/* The guest decides how many bad frames it sends: log a few, not all. */
#define BAD_FRAMES_LOGGED 5

static void bad_frame(aeth__agent *a, const aeth__proto_header *h,
		      const char *why)
{
	unsigned int n = ++a->bad_frames;

	if (n <= BAD_FRAMES_LOGGED)
		aeth__warn("agent of %s: bad %s frame (id %u): %s%s", a->peer,
			   aeth__proto_type_name(h->type), (unsigned int)h->id,
			   why, n == BAD_FRAMES_LOGGED ?
			   "; further bad frames on this connection are "
			   "not logged" : "");
}

int aeth__agent_dispatch(aeth__agent *a, aeth__proto_rx *rx)
{
	aeth__proto_header h;
	const uint8_t *payload;
	int rc;

	while ((rc = aeth__proto_rx_next(rx, &h, &payload)) == 1) {
		aeth__proto_fields f;
		const char *why = "malformed payload";

		pthread_mutex_lock(&a->mu);
		/* Any frame, even a bad one, shows the agent is alive. */
		a->heard = true;
		a->last_rx_ms = aeth__now_ms();
		a->ping_sent_ms = 0;
		if (aeth__proto_parse(&f, payload, h.len, &why) == 0)
			on_frame(a, &h, &f);
		else
			bad_frame(a, &h, why);
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->mu);
		aeth__proto_fields_free(&f);
	}
	return rc;
}

/* ---- liveness (see AETH__AGENT_IDLE_MS) ---- */

/*
 * With a->mu held: should the reader stop reading until a file get's
 * consumer catches up? Above AETH__AGENT_GET_QUEUE_MAX queued, until it
 * is back to half. The agent's own queue then fills and it waits too:
 * memory stays bounded whatever the consumer's fd does.
 */
static bool backlog_locked(aeth__agent *a)
{
	size_t most = 0;

	for (struct aeth__req *r = a->reqs; r; r = r->next)
		if (r->get && r->queued > most)
			most = r->queued;
	return most > (a->paused ? AETH__AGENT_GET_QUEUE_MAX / 2
				  : AETH__AGENT_GET_QUEUE_MAX);
}

/*
 * The reader's ping. It must not wait behind another writer (the reader
 * has to go on reading for it, see client_priv.h): false when a frame is
 * being written, to try again shortly. A guest that does not read is not
 * waited for either: the ping counts as sent and its deadline runs. A
 * 12-byte frame on a writable socket goes out whole; write_all() only
 * covers the odd partial write.
 */
static bool send_ping(aeth__agent *a, uint32_t id)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	struct pollfd p = {a->fd, POLLOUT, 0};

	if (pthread_mutex_trylock(&a->wmu) != 0)
		return false;
	aeth__proto_msg_begin(&m, AETH__MSG_PING, id);
	if (aeth__proto_msg_finish(&m) == 0 && poll(&p, 1, 0) == 1 &&
	    (p.revents & POLLOUT))
		write_all(a, m.data, m.len, aeth__now_ms() + a->send_ms);
	pthread_mutex_unlock(&a->wmu);
	aeth__proto_msg_free(&m);
	return true;
}

#define READER_DEAD (-2)

/*
 * What the reader does before it polls: returns how long it may wait
 * (-1: until a frame or a wake-up), or READER_DEAD with the reason in
 * `why`; *paused: do not read the connection now (backlog_locked).
 */
static int reader_tick(aeth__agent *a, bool *paused, char *why, size_t n)
{
	int64_t now = aeth__now_ms(), quiet_since, due;
	uint32_t ping_id = 0;
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	*paused = a->paused = backlog_locked(a);
	if (*paused || !a->heard || !in_flight_locked(a)) {
		if (*paused) /* that silence is ours, not the guest's */
			a->last_rx_ms = now;
		a->ping_sent_ms = 0;
		pthread_mutex_unlock(&a->mu);
		return -1;
	}
	quiet_since = a->last_rx_ms > a->busy_since_ms ? a->last_rx_ms
						       : a->busy_since_ms;
	if (a->ping_sent_ms) {
		due = a->ping_sent_ms + a->ping_ms;
		if (now >= due) {
			snprintf(why, n, "nothing heard from the agent for %lld "
				 "ms, not even the answer to a ping (the guest "
				 "hung, halted or is starved of CPU)",
				 (long long)(now - quiet_since));
			rc = READER_DEAD;
		}
	} else {
		due = quiet_since + a->idle_ms;
		if (now >= due) {
			ping_id = fresh_id_locked(a);
			a->ping_sent_ms = now;
			due = now + a->ping_ms;
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (rc)
		return rc;
	if (ping_id && !send_ping(a, ping_id)) {
		pthread_mutex_lock(&a->mu);
		a->ping_sent_ms = 0;
		pthread_mutex_unlock(&a->mu);
		return 20;
	}
	return due - now > INT32_MAX ? INT32_MAX : (int)(due - now);
}

/* ---- the reader thread ---- */

/* Empty the wake-up pipe; true when aeth__agent_free() asks to end. */
static bool woken_to_close(aeth__agent *a)
{
	char buf[64];
	bool closing;

	while (read(a->wake[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&a->mu);
	closing = a->closing;
	pthread_mutex_unlock(&a->mu);
	return closing;
}

static void *reader_main(void *arg)
{
	aeth__agent *a = arg;
	aeth__proto_rx rx = AETH__PROTO_RX_INIT;
	const char *why = "closed by the guest";
	char err[256];

	for (;;) {
		struct pollfd p[2] = {{a->fd, POLLIN, 0}, {a->wake[0], POLLIN, 0}};
		uint8_t *buf;
		ssize_t n;
		bool paused;
		int ms = reader_tick(a, &paused, err, sizeof(err));

		if (ms == READER_DEAD) {
			why = err;
			/* writers blocked on a guest that reads nothing fail now */
			shutdown(a->fd, SHUT_RDWR);
			break;
		}
		if (paused)
			p[0].events = 0;
		if (poll(p, 2, ms) < 0 && errno != EINTR) {
			why = "poll failed";
			break;
		}
		if (p[1].revents && woken_to_close(a)) {
			why = "closed by the library";
			break;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (aeth__proto_rx_space(&rx, AETH__PROTO_CHUNK, &buf)) {
			why = "out of memory";
			break;
		}
		n = read(a->fd, buf, AETH__PROTO_CHUNK);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (n < 0)
				snprintf(err, sizeof(err), "reading: %s",
					 strerror(errno));
			why = n < 0 ? err : "closed by the guest";
			break;
		}
		aeth__proto_rx_commit(&rx, (size_t)n);
		if (aeth__agent_dispatch(a, &rx) < 0) {
			why = "the agent sent a bad frame header";
			break;
		}
	}
	aeth__proto_rx_free(&rx);
	set_dead(a, why);
	return NULL;
}

/* ---- open / free ---- */

int aeth__agent_open(aeth__agent **out, int fd, const char *peer_name)
{
	aeth__agent *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;
	int fl = fcntl(fd, F_GETFL);

	*out = NULL;
	if (!a) {
		close(fd);
		return aeth__error_oom();
	}
	a->fd = fd;
	a->send_ms = AETH__AGENT_SEND_MS;
	a->reply_ms = AETH__AGENT_REPLY_MS;
	a->idle_ms = AETH__AGENT_IDLE_MS;
	a->ping_ms = AETH__AGENT_PING_MS;
	a->level = 1; /* until a hello says more */
	a->peer = strdup(peer_name ? peer_name : "guest");
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->wmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!a->peer || pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		a->wake[0] = a->wake[1] = -1;
		aeth__agent_free(a);
		return aeth__error_errno(AETH_EIO, "agent client for %s",
					 peer_name ? peer_name : "guest");
	}
	if (pthread_create(&a->reader, NULL, reader_main, a) != 0) {
		aeth__agent_free(a);
		return aeth__error_set(AETH_EIO, "cannot start the agent "
				       "reader thread");
	}
	a->reader_running = true;
	*out = a;
	return 0;
}

void aeth__agent_free(aeth__agent *a)
{
	if (!a)
		return;
	if (a->reader_running) {
		pthread_mutex_lock(&a->mu);
		a->closing = true;
		pthread_mutex_unlock(&a->mu);
		wake_reader(a); /* the reader also ends on EOF below */
		shutdown(a->fd, SHUT_RDWR);
		pthread_join(a->reader, NULL);
	}
	while (a->reqs)
		aeth__req_free(a, a->reqs);
	close(a->fd);
	if (a->wake[0] >= 0) {
		close(a->wake[0]);
		close(a->wake[1]);
	}
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->wmu);
	pthread_cond_destroy(&a->cond);
	free(a->peer);
	free(a->why);
	free(a);
}

/* ---- simple requests ---- */

/*
 * Send `m` for `r` and wait for its final reply until `deadline` (given
 * as `budget_ms` in messages). On success the reply's data stays in `r`.
 * `what` names the request in messages.
 */
static int roundtrip_until(aeth__agent *a, struct aeth__req *r,
			   aeth__proto_msg *m, int64_t deadline,
			   unsigned int budget_ms, const char *what)
{
	int rc = aeth__agent_send(a, m);

	if (rc)
		return rc;
	pthread_mutex_lock(&a->mu);
	while (!r->done && !a->dead && rc == 0)
		rc = aeth__agent_wait_locked(a, deadline);
	if (r->done)
		rc = r->rc ? aeth__req_error(a, r, what) : 0;
	else if (a->dead)
		rc = aeth__agent_dead_error(a);
	else
		rc = aeth__error_set(AETH_ETIMEOUT, "%s: no reply from the "
				     "agent of %s within %u ms", what, a->peer,
				     budget_ms);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static int roundtrip(aeth__agent *a, struct aeth__req *r, aeth__proto_msg *m,
		     unsigned int timeout_ms, const char *what)
{
	return roundtrip_until(a, r, m, aeth__now_ms() +
			       (timeout_ms ? timeout_ms : 1), timeout_ms, what);
}
int aeth__agent_roundtrip(aeth__agent *a, struct aeth__req *r,
			  aeth__proto_msg *m, const char *what)
{
	return roundtrip(a, r, m, a->reply_ms, what);
}

int aeth__agent_need_level(aeth__agent *a, unsigned int level, const char *what)
{
	unsigned int have;

	pthread_mutex_lock(&a->mu);
	have = a->level;
	pthread_mutex_unlock(&a->mu);
	if (have >= level)
		return 0;
	return aeth__error_set(AETH_EINVALID, "the agent of %s speaks protocol "
			       "level %u; %s needs level %u: rebuild the guest "
			       "image (scripts/build-image.sh) with this "
			       "version's agent", a->peer, have, what, level);
}

int aeth__agent_hello(aeth__agent *a, unsigned int timeout_ms,
		      char **info_json)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	struct aeth__req *r = aeth__req_new(a);
	int rc;

	if (!r)
		return AETH_ENOMEM;
	aeth__proto_msg_begin(&m, AETH__MSG_HELLO, r->id);
	aeth__proto_add_u64(&m, AETH__F_VERSION, AETH__PROTO_LEVEL);
	rc = roundtrip(a, r, &m, timeout_ms, "hello");
	if (rc == 0) {
		pthread_mutex_lock(&a->mu);
		a->level = r->level < AETH__PROTO_LEVEL ? (unsigned int)r->level
							: AETH__PROTO_LEVEL;
		pthread_mutex_unlock(&a->mu);
	}
	if (rc == 0 && info_json) {
		*info_json = r->info;
		r->info = NULL;
	}
	aeth__proto_msg_free(&m);
	aeth__req_free(a, r);
	return rc;
}

unsigned int aeth__agent_version(aeth__agent *a)
{
	unsigned int v;

	pthread_mutex_lock(&a->mu);
	v = a->level;
	pthread_mutex_unlock(&a->mu);
	return v;
}

int aeth__agent_setup(aeth__agent *a, const aeth__agent_identity *id,
		      unsigned int timeout_ms)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	struct aeth__req *r;
	int rc;

	if (id->entropy_len < AETH__PROTO_ENTROPY_MIN ||
	    id->entropy_len > AETH__PROTO_ENTROPY_MAX)
		return aeth__error_set(AETH_EINVALID, "setup: %zu bytes of entropy "
				       "(%d to %d)", id->entropy_len,
				       AETH__PROTO_ENTROPY_MIN,
				       AETH__PROTO_ENTROPY_MAX);
	if (aeth__agent_version(a) < 2)
		return aeth__error_set(AETH_EPROTO, "the agent of %s speaks protocol "
				       "%u, which has no setup request (2): rebuild "
				       "the image with scripts/build-image.sh",
				       a->peer, aeth__agent_version(a));
	if (!(r = aeth__req_new(a)))
		return AETH_ENOMEM;
	aeth__proto_msg_begin(&m, AETH__MSG_SETUP, r->id);
	aeth__proto_add_str(&m, AETH__F_HOSTNAME, id->hostname);
	aeth__proto_add_str(&m, AETH__F_VM_ID, id->vm_id);
	aeth__proto_add_i64(&m, AETH__F_TIME_MS, id->time_ms);
	aeth__proto_add_bytes(&m, AETH__F_DATA, id->entropy, id->entropy_len);
	rc = roundtrip(a, r, &m, timeout_ms, "setup");
	aeth__proto_msg_free(&m);
	aeth__req_free(a, r);
	return rc;
}

/* A request with no fields whose reply carries nothing we keep. */
static int bare_request(aeth__agent *a, uint8_t type, unsigned int timeout_ms,
			const char *what)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	struct aeth__req *r = aeth__req_new(a);
	int rc;

	if (!r)
		return AETH_ENOMEM;
	aeth__proto_msg_begin(&m, type, r->id);
	rc = roundtrip(a, r, &m, timeout_ms, what);
	aeth__proto_msg_free(&m);
	aeth__req_free(a, r);
	return rc;
}

int aeth__agent_ping(aeth__agent *a, unsigned int timeout_ms)
{
	return bare_request(a, AETH__MSG_PING, timeout_ms, "ping");
}

int aeth__agent_shutdown(aeth__agent *a, unsigned int timeout_ms)
{
	int rc = bare_request(a, AETH__MSG_SHUTDOWN, timeout_ms, "shutdown");

	/* Powering off may close the channel before the reply. */
	if (rc == AETH_EUNAVAILABLE) {
		aeth_error_clear();
		rc = 0;
	}
	return rc;
}

/* ---- files ---- */

/* The deadline of a transfer of up to `bytes` (AETH__AGENT_RATE_MIN),
 * and its length for messages. */
static int64_t transfer_deadline(const aeth__agent *a, uint64_t bytes,
				 unsigned int *budget_ms)
{
	uint64_t ms = a->reply_ms + bytes * 1000 / AETH__AGENT_RATE_MIN;

	*budget_ms = ms > UINT32_MAX ? UINT32_MAX : (unsigned int)ms;
	return aeth__now_ms() + (int64_t)ms;
}

static bool req_done(aeth__agent *a, struct aeth__req *r)
{
	bool done;

	pthread_mutex_lock(&a->mu);
	done = r->done || a->dead;
	pthread_mutex_unlock(&a->mu);
	return done;
}

int aeth__agent_file_put(aeth__agent *a, const char *guest_path,
			 const void *data, size_t len, unsigned int mode)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	struct aeth__req *r;
	unsigned int budget;
	int64_t deadline;
	int rc;

	if (!guest_path || !*guest_path || (!data && len))
		return aeth__error_set(AETH_EINVALID, "file put needs a guest "
				       "path and data");
	if ((uint64_t)len > AETH__PROTO_FILE_MAX)
		return aeth__error_set(AETH_ETOOBIG, "file put of %zu bytes to "
				       "%s: over the limit of %llu bytes", len,
				       guest_path,
				       (unsigned long long)AETH__PROTO_FILE_MAX);
	r = aeth__req_new(a);
	if (!r)
		return AETH_ENOMEM;
	deadline = transfer_deadline(a, len, &budget);
	aeth__proto_msg_begin(&m, AETH__MSG_PUT_OPEN, r->id);
	aeth__proto_add_str(&m, AETH__F_PATH, guest_path);
	aeth__proto_add_u64(&m, AETH__F_MODE, mode);
	aeth__proto_add_u64(&m, AETH__F_SIZE, len);
	rc = aeth__agent_send(a, &m);
	for (size_t off = 0; rc == 0 && off < len && !req_done(a, r);) {
		size_t n = len - off < AETH__PROTO_CHUNK ? len - off
							 : AETH__PROTO_CHUNK;

		if (aeth__now_ms() >= deadline) {
			rc = aeth__error_set(AETH_ETIMEOUT, "file put: the agent "
					     "of %s took in %zu of %zu bytes "
					     "within %u ms", a->peer, off, len,
					     budget);
			break;
		}
		aeth__proto_msg_begin(&m, AETH__MSG_PUT_DATA, r->id);
		aeth__proto_add_bytes(&m, AETH__F_DATA, (const char *)data + off,
				      n);
		rc = aeth__agent_send(a, &m);
		off += n;
	}
	if (rc == 0) {
		aeth__proto_msg_begin(&m, AETH__MSG_PUT_CLOSE, r->id);
		rc = roundtrip_until(a, r, &m, deadline, budget, "file put");
	}
	if (rc)
		aeth__error_wrap(rc, "writing %s", guest_path);
	aeth__proto_msg_free(&m);
	aeth__req_free(a, r);
	return rc;
}

/* Where a file get's data goes, chunk by chunk: 0 or an error (set). */
typedef int (*get_sink)(void *ctx, const void *data, size_t len);

/* Hand r's data to `sink` as it arrives, until the agent's final reply. */
static int get_drain(aeth__agent *a, struct aeth__req *r, int64_t deadline,
		     unsigned int budget_ms, get_sink sink, void *ctx)
{
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		struct aeth__chunk *c;

		if (r->done && r->rc) {
			rc = aeth__req_error(a, r, "file get");
			break;
		}
		if ((c = aeth__req_pop_locked(a, r)) != NULL) {
			pthread_mutex_unlock(&a->mu);
			rc = sink(ctx, c->data, c->len);
			free(c);
			pthread_mutex_lock(&a->mu);
			if (rc)
				break;
		} else if (r->done) {
			break;
		} else if (a->dead) {
			rc = aeth__agent_dead_error(a);
			break;
		} else if (aeth__agent_wait_locked(a, deadline) != 0) {
			rc = aeth__error_set(AETH_ETIMEOUT, "file get: the agent "
					     "of %s did not send the file within "
					     "%u ms", a->peer, budget_ms);
			break;
		}
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static int file_get(aeth__agent *a, const char *guest_path, uint64_t max_len,
		    get_sink sink, void *ctx, size_t *len_out)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	struct aeth__req *r;
	unsigned int budget;
	int64_t deadline;
	int rc;

	if (len_out)
		*len_out = 0;
	if (!guest_path || !*guest_path)
		return aeth__error_set(AETH_EINVALID, "file get needs a path");
	if (max_len > AETH__PROTO_FILE_MAX)
		max_len = AETH__PROTO_FILE_MAX;
	r = aeth__req_new(a);
	if (!r)
		return AETH_ENOMEM;
	pthread_mutex_lock(&a->mu); /* a guest may send data for any id */
	r->get = true;
	r->limit = max_len;
	pthread_mutex_unlock(&a->mu);
	deadline = transfer_deadline(a, max_len, &budget);
	aeth__proto_msg_begin(&m, AETH__MSG_GET, r->id);
	aeth__proto_add_str(&m, AETH__F_PATH, guest_path);
	aeth__proto_add_u64(&m, AETH__F_MAX_LEN, max_len);
	rc = aeth__agent_send(a, &m);
	if (rc == 0)
		rc = get_drain(a, r, deadline, budget, sink, ctx);
	/* done: the reader no longer writes r */
	if (rc == 0 && r->size != r->got)
		rc = aeth__error_set(AETH_EPROTO, "file get: the agent of %s "
				     "announced %llu bytes and sent %llu",
				     a->peer, (unsigned long long)r->size,
				     (unsigned long long)r->got);
	if (rc == 0 && len_out)
		*len_out = (size_t)r->got;
	if (rc)
		aeth__error_wrap(rc, "reading %s", guest_path);
	aeth__proto_msg_free(&m);
	aeth__req_free(a, r);
	return rc;
}

static int buf_sink(void *ctx, const void *data, size_t len)
{
	return aeth__buf_append(ctx, data, len) ? aeth__error_oom() : 0;
}

int aeth__agent_file_get(void **data, size_t *len, aeth__agent *a,
			 const char *guest_path, size_t max_len)
{
	aeth__buf b = AETH__BUF_INIT;
	int rc;

	*data = NULL;
	*len = 0;
	rc = file_get(a, guest_path, max_len ? max_len : AETH_FILE_GET_MAX_DEFAULT,
		      buf_sink, &b, NULL);
	if (rc == 0 && !(*data = aeth__buf_detach(&b, len))) /* "" if empty */
		rc = aeth__error_oom();
	aeth__buf_free(&b);
	return rc;
}

struct fd_sink_ctx {
	int fd;
	int64_t deadline;
};

/* Write it all; a non-blocking fd is waited for until the deadline. */
static int fd_sink(void *ctx, const void *data, size_t len)
{
	struct fd_sink_ctx *s = ctx;
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(s->fd, p, len);
		struct pollfd pf = {s->fd, POLLOUT, 0};

		if (w > 0) {
			p += w;
			len -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN &&
			   aeth__now_ms() < s->deadline) {
			poll(&pf, 1, 100);
		} else {
			return aeth__error_errno(AETH_EIO, "writing the file's "
						 "data to fd %d", s->fd);
		}
	}
	return 0;
}

int aeth__agent_file_get_fd(aeth__agent *a, const char *guest_path, int fd,
			    size_t max_len, size_t *len_out)
{
	struct fd_sink_ctx s = {fd, 0};
	unsigned int budget;

	if (len_out)
		*len_out = 0;
	if (fd < 0)
		return aeth__error_set(AETH_EINVALID, "file get: fd %d is not "
				       "a file descriptor", fd);
	if (!max_len)
		max_len = (size_t)AETH__PROTO_FILE_MAX;
	s.deadline = transfer_deadline(a, max_len, &budget);
	return file_get(a, guest_path, max_len, fd_sink, &s, len_out);
}
