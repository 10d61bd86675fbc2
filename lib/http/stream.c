/*
 * lib/http/stream.c - streamed (chunked) responses.
 *
 * A thread per stream calls the caller's `next` and queues what it gives;
 * libmicrohttpd's content reader takes from that queue on its polling
 * thread. When the queue is empty the reader suspends the connection
 * (so the polling thread neither blocks nor spins) and the stream thread
 * resumes it when it has more. Both sides take the stream's mutex around
 * suspend and resume, so a resume can never come before its suspend.
 * The queue is bounded: a client that reads slower than `next` produces
 * holds the stream thread back, up to the stream's deadline.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"

#define STREAM_QUEUE_MAX (1u << 20) /* bytes waiting for a slow client */
#define STREAM_CALL_MAX_MS 1000     /* one `next` call's longest deadline */

struct aeth__http_stream {
	aeth__http_server *srv;
	struct MHD_Connection *conn;
	int fd;             /* the connection's socket, to see a client leave */
	aeth__http_chunk_cb next;
	void (*done)(void *userdata);
	void *userdata;
	int64_t deadline_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;  /* the queue was drained, or the stream closed */
	aeth__buf queue;    /* bytes not yet handed to the reader */
	size_t queue_off;
	bool finished;      /* `next` is done: end after the queue */
	bool failed;        /* end with an error (cut the response) */
	bool closed;        /* the client or the server went away */
	bool suspended;
	int refs;           /* the thread and the libmicrohttpd response */

	aeth__http_stream *link; /* srv->streams */
};

static void stream_unref(aeth__http_stream *st)
{
	bool last;

	pthread_mutex_lock(&st->mu);
	last = --st->refs == 0;
	pthread_mutex_unlock(&st->mu);
	if (!last)
		return;
	aeth__buf_free(&st->queue);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	free(st);
}

/* Under st->mu: let the reader run again if it waits. */
static void wake_reader(aeth__http_stream *st)
{
	if (st->suspended) {
		st->suspended = false;
		MHD_resume_connection(st->conn);
	}
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	aeth__http_stream *st = cls;
	ssize_t ret;

	(void)pos;
	pthread_mutex_lock(&st->mu);
	if (st->closed || st->failed) {
		ret = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (st->queue.len > st->queue_off) {
		size_t n = st->queue.len - st->queue_off;
		if (n > max)
			n = max;
		memcpy(buf, st->queue.data + st->queue_off, n);
		st->queue_off += n;
		if (st->queue_off == st->queue.len) {
			st->queue.len = 0;
			st->queue_off = 0;
		}
		pthread_cond_broadcast(&st->cv);
		ret = (ssize_t)n;
	} else if (st->finished) {
		ret = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		st->suspended = true;
		MHD_suspend_connection(st->conn);
		ret = 0;
	}
	pthread_mutex_unlock(&st->mu);
	return ret;
}

/* libmicrohttpd is done with the response: the client got it all, went
 * away, or the server stopped. */
static void reader_free(void *cls)
{
	aeth__http_stream *st = cls;

	pthread_mutex_lock(&st->mu);
	st->closed = true;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	stream_unref(st);
}

static void timespec_at(struct timespec *ts, int64_t mono_ms)
{
	int64_t wait = mono_ms - aeth__now_ms();

	clock_gettime(CLOCK_MONOTONIC, ts);
	if (wait < 0)
		wait = 0;
	ts->tv_sec += (time_t)(wait / 1000);
	ts->tv_nsec += (long)(wait % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Under st->mu: wait while the queue is full; false when the stream
 * should end (closed, or its deadline passed). */
static bool wait_room(aeth__http_stream *st)
{
	struct timespec ts;

	timespec_at(&ts, st->deadline_ms);
	while (!st->closed && st->queue.len - st->queue_off >= STREAM_QUEUE_MAX)
		if (pthread_cond_timedwait(&st->cv, &st->mu, &ts) != 0)
			return false;
	return !st->closed;
}

bool aeth__http_client_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

	if (fd < 0)
		return false;
	return poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

int aeth__http_conn_fd(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		c, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

/* Under st->mu: true when the client has gone (a quiet stream stays
 * suspended: aeth__http_client_gone()). */
static bool client_gone(aeth__http_stream *st)
{
	return st->suspended && aeth__http_client_gone(st->fd);
}

static void *stream_thread(void *arg)
{
	aeth__http_stream *st = arg;
	aeth__http_server *srv = st->srv;
	aeth__buf chunk = AETH__BUF_INIT;

	for (;;) {
		int64_t now = aeth__now_ms(), call_deadline;
		int r;

		pthread_mutex_lock(&st->mu);
		if (client_gone(st))
			st->closed = true;
		if (st->closed || now >= st->deadline_ms) {
			st->finished = true;
			wake_reader(st);
			pthread_mutex_unlock(&st->mu);
			break;
		}
		pthread_mutex_unlock(&st->mu);
		call_deadline = now + STREAM_CALL_MAX_MS;
		if (call_deadline > st->deadline_ms)
			call_deadline = st->deadline_ms;
		chunk.len = 0;
		r = st->next(&chunk, call_deadline, st->userdata);
		pthread_mutex_lock(&st->mu);
		if (chunk.len && wait_room(st) &&
		    aeth__buf_append(&st->queue, chunk.data, chunk.len) < 0)
			r = -1;
		if (r < 0)
			st->failed = true;
		if (r <= 0)
			st->finished = true;
		/* an idle stream stays suspended: client_gone() watches it */
		if (st->queue.len > st->queue_off || st->finished)
			wake_reader(st);
		pthread_mutex_unlock(&st->mu);
		if (r <= 0)
			break;
	}
	aeth__buf_free(&chunk);
	if (st->done)
		st->done(st->userdata);

	pthread_mutex_lock(&srv->mu);
	for (aeth__http_stream **p = &srv->streams; *p; p = &(*p)->link)
		if (*p == st) {
			*p = st->link;
			break;
		}
	srv->n_streams--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	stream_unref(st);
	return NULL;
}

int aeth__http_slot_take(aeth__http_server *srv, aeth__http_response *res)
{
	bool full;

	pthread_mutex_lock(&srv->mu);
	full = srv->stopping || srv->n_streams >= srv->max_streams;
	if (!full)
		srv->n_streams++;
	pthread_mutex_unlock(&srv->mu);
	if (!full)
		return 0;
	aeth__http_respond_error(res, 503, "busy", "%s: already %u streamed or "
				 "pending responses at once; try again later",
				 srv->what, srv->max_streams);
	return -1;
}

void aeth__http_slot_put(aeth__http_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	srv->n_streams--;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
}

struct MHD_Response *aeth__http_stream_start(aeth__http_server *srv,
					     struct MHD_Connection *conn,
					     aeth__http_response *res)
{
	aeth__http_stream *st;
	struct MHD_Response *r = NULL;
	pthread_attr_t attr;
	pthread_t th;

	if (aeth__http_slot_take(srv, res) != 0)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (st) {
		st->srv = srv;
		st->conn = conn;
		st->fd = aeth__http_conn_fd(conn);
		st->next = res->next;
		st->done = res->done;
		st->userdata = res->userdata;
		st->deadline_ms = res->deadline_ms;
		st->refs = 2;
		pthread_mutex_init(&st->mu, NULL);
		pthread_cond_init(&st->cv, NULL);
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
						      16 * 1024, reader, st,
						      reader_free);
	}
	if (r) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_mutex_lock(&srv->mu);
		st->link = srv->streams;
		srv->streams = st;
		pthread_mutex_unlock(&srv->mu);
		/* the stream owns `done` from here: the response must not
		 * call it again */
		res->done = NULL;
		res->next = NULL;
		if (pthread_create(&th, &attr, stream_thread, st) != 0) {
			pthread_mutex_lock(&srv->mu);
			srv->streams = st->link; /* still first: we hold no one else */
			pthread_mutex_unlock(&srv->mu);
			res->done = st->done;
			st->done = NULL;
			MHD_destroy_response(r); /* reader_free: one ref */
			stream_unref(st);        /* the thread's */
			r = NULL;
			st = NULL;
		}
		pthread_attr_destroy(&attr);
		if (r)
			return r;
	} else if (st) {
		pthread_mutex_destroy(&st->mu);
		pthread_cond_destroy(&st->cv);
		free(st);
	}
	aeth__http_slot_put(srv);
	aeth__http_respond_error(res, 500, "internal",
				 "%s: cannot start a streamed response", srv->what);
	return NULL;
}

void aeth__http_streams_stop(aeth__http_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	for (aeth__http_stream *st = srv->streams; st; st = st->link) {
		pthread_mutex_lock(&st->mu);
		st->closed = true;
		pthread_cond_broadcast(&st->cv);
		wake_reader(st);
		pthread_mutex_unlock(&st->mu);
	}
	/* each `next` call returns within STREAM_CALL_MAX_MS */
	while (srv->n_streams > 0)
		pthread_cond_wait(&srv->cv, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
}
