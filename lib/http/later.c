/*
 * lib/http/later.c - answers made later (aeth__http_respond_later()).
 *
 * The handler returns without an answer; the access handler suspends the
 * connection (libmicrohttpd's way to leave a request pending without
 * holding its polling thread) and a thread of the answer's own calls the
 * caller's `fn` in slices of at most a second until it has the answer.
 * Then it resumes the connection, and libmicrohttpd calls the access
 * handler again, which takes the answer and sends it (server.c). A client
 * that leaves meanwhile is seen between slices (aeth__http_client_gone()):
 * the answer ends there, and with it the place among max_streams (and
 * whatever `done` gives back) it held.
 *
 * Two holders share an answer: its thread and the request's state; the
 * last to let go frees it. libmicrohttpd must not be stopped with a
 * connection suspended, so a thread resumes before it counts itself out
 * of srv->n_streams, which aeth__http_streams_stop() waits for.
 */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

#define LATER_CALL_MAX_MS 1000 /* one `fn` call's longest deadline */

struct aeth__http_later {
	aeth__http_server *srv;
	struct MHD_Connection *conn;
	int fd;                  /* its socket, to see a client leave */
	aeth__http_later_cb fn;
	void (*done)(void *userdata);
	void *userdata;
	int64_t deadline_ms;

	pthread_mutex_t mu;
	aeth__http_response out; /* the answer, once ready */
	bool ready, taken;
	int refs;
};

void aeth__http_later_unref(aeth__http_later *l)
{
	bool last;

	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	last = --l->refs == 0;
	pthread_mutex_unlock(&l->mu);
	if (!last)
		return;
	aeth__http_response_clear(&l->out);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

bool aeth__http_later_take(aeth__http_later *l, aeth__http_response *res)
{
	bool ok;

	pthread_mutex_lock(&l->mu);
	ok = l->ready && !l->taken;
	if (ok) {
		*res = l->out;
		memset(&l->out, 0, sizeof(l->out));
		l->taken = true;
	}
	pthread_mutex_unlock(&l->mu);
	return ok;
}

/* The answer into l->out: fn's, or why there is none. */
static void make_answer(aeth__http_later *l)
{
	aeth__http_server *srv = l->srv;
	aeth__http_response *out = &l->out;

	for (;;) {
		int64_t now = aeth__now_ms(), slice = now + LATER_CALL_MAX_MS;
		bool stopping;
		int r;

		pthread_mutex_lock(&srv->mu);
		stopping = srv->stopping;
		pthread_mutex_unlock(&srv->mu);
		if (stopping) {
			aeth__http_respond_error(out, 503, "unavailable", "%s is "
						 "stopping; try again", srv->what);
			return;
		}
		if (aeth__http_client_gone(l->fd)) {
			/* never sent: its slot goes back now, not at the deadline */
			aeth__http_respond_error(out, 499, "client_gone", "the "
						 "client closed the connection");
			return;
		}
		if (now >= l->deadline_ms) {
			aeth__http_respond_error(out, 504, "timeout", "%s: no answer "
						 "in time", srv->what);
			return;
		}
		if (slice > l->deadline_ms)
			slice = l->deadline_ms;
		out->status = 0;
		r = l->fn(out, slice, l->userdata);
		if (r > 0 && out->status == 0)
			continue;
		if (r < 0 || out->status == 0 || out->next || out->later)
			aeth__http_respond_error(out, 500, "internal", "%s: the "
						 "handler gave no answer", srv->what);
		return;
	}
}

static void *later_thread(void *arg)
{
	aeth__http_later *l = arg;
	aeth__http_server *srv = l->srv;

	make_answer(l);
	if (l->done)
		l->done(l->userdata);
	pthread_mutex_lock(&l->mu);
	l->ready = true;
	MHD_resume_connection(l->conn);
	pthread_mutex_unlock(&l->mu);

	aeth__http_slot_put(srv);
	aeth__http_later_unref(l);
	return NULL;
}

int aeth__http_later_start(aeth__http_server *srv, struct MHD_Connection *conn,
			   aeth__http_response *res, aeth__http_later **out)
{
	aeth__http_later *l = NULL;
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	*out = NULL;
	if (aeth__http_slot_take(srv, res) != 0)
		return -1;
	if (!(l = calloc(1, sizeof(*l))))
		goto fail;
	l->srv = srv;
	l->conn = conn;
	l->fd = aeth__http_conn_fd(conn);
	l->fn = res->later;
	l->done = res->done;
	l->userdata = res->userdata;
	l->deadline_ms = res->deadline_ms;
	l->refs = 2;
	pthread_mutex_init(&l->mu, NULL);
	/* the handler's headers go with the answer */
	memcpy(l->out.hdr_name, res->hdr_name, sizeof(res->hdr_name));
	memcpy(l->out.hdr_value, res->hdr_value, sizeof(res->hdr_value));
	l->out.n_hdr = res->n_hdr;
	res->n_hdr = 0;
	/* before the thread can resume it */
	MHD_suspend_connection(conn);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &attr, later_thread, l);
	pthread_attr_destroy(&attr);
	if (rc == 0) {
		/* the thread owns `done` from here */
		res->done = NULL;
		aeth__http_response_clear(res);
		*out = l;
		return 0;
	}
	MHD_resume_connection(conn);
	res->n_hdr = l->out.n_hdr;
	l->out.n_hdr = 0;
	pthread_mutex_destroy(&l->mu);
	free(l);
fail:
	aeth__http_slot_put(srv);
	aeth__http_respond_error(res, 500, "internal", "%s: cannot start a "
				 "pending response", srv->what);
	return -1;
}
