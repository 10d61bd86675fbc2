/*
 * lib/http/deadline.c - a deadline for reading a whole request.
 *
 * libmicrohttpd's connection timeout is an idle timeout: a client that
 * sends one header byte a second (slowloris) keeps a connection for good
 * and many such clients fill gateway.max_conns. Here every connection
 * has a clock that starts when it opens and again after each answer; a
 * request not read in full (headers and body) within the timeout gets
 * its socket shut down by a sweeper thread, which libmicrohttpd then sees
 * as a closed connection. Answers in progress (streams) are not cut.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http_internal.h"

struct aeth__http_conn {
	struct aeth__http_conn *prev, *next;
	int fd;
	int64_t since_ms;   /* the request being read began (about) here */
	bool answering;     /* the handler has it: no deadline */
	bool cut;
};

void aeth__http_deadline_notify(void *cls, struct MHD_Connection *c,
				void **socket_context,
				enum MHD_ConnectionNotificationCode code)
{
	aeth__http_server *srv = cls;
	aeth__http_conn *e = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			c, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (!ci || !(e = calloc(1, sizeof(*e))))
			return; /* no deadline for it; the idle timeout stays */
		e->fd = ci->connect_fd;
		e->since_ms = aeth__now_ms();
		pthread_mutex_lock(&srv->dl_mu);
		e->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = e;
		srv->conns = e;
		pthread_mutex_unlock(&srv->dl_mu);
		*socket_context = e;
		return;
	}
	if (code == MHD_CONNECTION_NOTIFY_CLOSED && e) {
		pthread_mutex_lock(&srv->dl_mu);
		if (e->prev)
			e->prev->next = e->next;
		else
			srv->conns = e->next;
		if (e->next)
			e->next->prev = e->prev;
		pthread_mutex_unlock(&srv->dl_mu);
		free(e);
		*socket_context = NULL;
	}
}

void aeth__http_deadline_mark(aeth__http_server *srv, struct MHD_Connection *c,
			      bool answering)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	aeth__http_conn *e = ci ? ci->socket_context : NULL;

	if (!e)
		return;
	pthread_mutex_lock(&srv->dl_mu);
	e->answering = answering;
	e->since_ms = aeth__now_ms();
	pthread_mutex_unlock(&srv->dl_mu);
}

static void *sweeper(void *arg)
{
	aeth__http_server *srv = arg;

	pthread_mutex_lock(&srv->dl_mu);
	while (!srv->dl_stop) {
		struct timespec ts;
		int64_t now = aeth__now_ms();

		for (aeth__http_conn *e = srv->conns; e; e = e->next)
			if (!e->answering && !e->cut &&
			    now - e->since_ms > srv->dl_timeout_ms) {
				/* the daemon still owns the fd: only shut it down */
				shutdown(e->fd, SHUT_RDWR);
				e->cut = true;
			}
		aeth__timespec_in(&ts, 250);
		pthread_cond_timedwait(&srv->dl_cv, &srv->dl_mu, &ts);
	}
	pthread_mutex_unlock(&srv->dl_mu);
	return NULL;
}

int aeth__http_deadline_start(aeth__http_server *srv, unsigned int timeout_s)
{
	srv->dl_timeout_ms = (int64_t)timeout_s * 1000;
	if (pthread_create(&srv->dl_thread, NULL, sweeper, srv) != 0)
		return aeth__error_set(AETH_ERROR, "%s: cannot start a thread",
				       srv->what);
	srv->dl_running = true;
	return 0;
}

void aeth__http_deadline_stop(aeth__http_server *srv)
{
	if (!srv->dl_running)
		return;
	pthread_mutex_lock(&srv->dl_mu);
	srv->dl_stop = true;
	pthread_cond_signal(&srv->dl_cv);
	pthread_mutex_unlock(&srv->dl_mu);
	pthread_join(srv->dl_thread, NULL);
	srv->dl_running = false;
}
