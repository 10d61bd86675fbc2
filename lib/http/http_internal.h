/*
 * lib/http/http_internal.h - what the files of lib/http share.
 */
#ifndef AETH_HTTP_INTERNAL_H
#define AETH_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>

#include "http.h"

#define AETH__HTTP_MAX_HEADERS 8

typedef struct aeth__http_stream aeth__http_stream;
typedef struct aeth__http_conn aeth__http_conn;
typedef struct aeth__http_later aeth__http_later;

struct aeth__http_response {
	int status;               /* 0: the handler answered nothing */
	char *content_type;
	char *body;
	size_t body_len;
	char *hdr_name[AETH__HTTP_MAX_HEADERS];
	char *hdr_value[AETH__HTTP_MAX_HEADERS];
	size_t n_hdr;
	/* a stream instead of a body, or (later) an answer made later */
	aeth__http_chunk_cb next;
	aeth__http_later_cb later;
	void (*done)(void *userdata);
	void *userdata;
	int64_t deadline_ms;
};

struct aeth__http_server {
	struct MHD_Daemon *daemon;
	int listen_fd;
	int port;
	char *unix_path;
	char *what;
	aeth__http_route *routes;
	size_t n_routes;
	size_t max_body;
	unsigned int max_streams;
	char *tls_cert, *tls_key;
	void (*unrouted)(const char *method, int status, void *userdata);
	void *unrouted_userdata;

	pthread_mutex_t mu;     /* guards the fields below */
	pthread_cond_t cv;      /* a stream thread ended */
	bool stopping;
	unsigned int n_streams; /* stream threads alive */
	aeth__http_stream *streams; /* their list, to end them at stop */

	/* deadline.c: the request-read deadline of each connection */
	pthread_mutex_t dl_mu;  /* guards conns, dl_stop */
	pthread_cond_t dl_cv;
	aeth__http_conn *conns;
	int64_t dl_timeout_ms;
	pthread_t dl_thread;
	bool dl_running, dl_stop;
};

/* The deadline of reading a request (deadline.c): the daemon's
 * MHD_OPTION_NOTIFY_CONNECTION callback, the mark that a request was read
 * (answering true) or answered (false: the next one's clock starts), and
 * the sweeper thread. */
void aeth__http_deadline_notify(void *cls, struct MHD_Connection *c,
				void **socket_context,
				enum MHD_ConnectionNotificationCode code);
void aeth__http_deadline_mark(aeth__http_server *srv, struct MHD_Connection *c,
			      bool answering);
int aeth__http_deadline_start(aeth__http_server *srv, unsigned int timeout_s);
void aeth__http_deadline_stop(aeth__http_server *srv);

int aeth__http_listen(const char *spec, bool allow_remote, const char *what,
		      int *fd, int *port, char **unix_path);

/* A place among max_streams for a stream or a later answer (stream.c):
 * 0, or -1 and `res` answered 503 (full, or the server stops). */
int aeth__http_slot_take(aeth__http_server *srv, aeth__http_response *res);
void aeth__http_slot_put(aeth__http_server *srv);

/*
 * Has the client of a suspended connection gone (stream.c)? libmicrohttpd
 * does not watch a suspended connection, so a stream or a later answer
 * looks at its socket `fd` itself: a peer that closed (or shut down its
 * sending side: HTTP clients waiting for an answer do not) shows as
 * POLLRDHUP. Only while suspended, when libmicrohttpd cannot close or
 * reuse the socket. A negative fd: not known, false.
 */
bool aeth__http_client_gone(int fd);

/* The socket of connection `c`, or -1. */
int aeth__http_conn_fd(struct MHD_Connection *c);

/* A libmicrohttpd response for a stream (NULL: answered 503/500 and
 * `done` called). */
struct MHD_Response *aeth__http_stream_start(aeth__http_server *srv,
					     struct MHD_Connection *conn,
					     aeth__http_response *res);
/*
 * A later answer (later.c): suspend the connection and start the thread
 * that makes it: 0 and *out set (the request's state keeps it), else
 * answered in `res` (503 beyond max_streams, 500) to send now, `done`
 * called. When the thread has the answer it resumes the connection, and
 * the next call of the access handler sends it: aeth__http_later_take()
 * gives it (false: not ready yet). aeth__http_later_unref() when the
 * request ends.
 */
int aeth__http_later_start(aeth__http_server *srv, struct MHD_Connection *conn,
			   aeth__http_response *res, aeth__http_later **out);
bool aeth__http_later_take(aeth__http_later *l, aeth__http_response *res);
void aeth__http_later_unref(aeth__http_later *l);

/* At stop: tell every stream to end and wait for their threads (and
 * those of later answers). */
void aeth__http_streams_stop(aeth__http_server *srv);

void aeth__http_response_clear(aeth__http_response *res);

#endif
