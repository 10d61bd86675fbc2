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

struct aeth__http_response {
	int status;               /* 0: the handler answered nothing */
	char *content_type;
	char *body;
	size_t body_len;
	char *hdr_name[AETH__HTTP_MAX_HEADERS];
	char *hdr_value[AETH__HTTP_MAX_HEADERS];
	size_t n_hdr;
	/* a stream instead of a body */
	aeth__http_chunk_cb next;
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

	pthread_mutex_t mu;     /* guards the fields below */
	pthread_cond_t cv;      /* a stream thread ended */
	bool stopping;
	unsigned int n_streams; /* stream threads alive */
	aeth__http_stream *streams; /* their list, to end them at stop */
};

int aeth__http_listen(const char *spec, bool allow_remote, const char *what,
		      int *fd, int *port, char **unix_path);

/* A libmicrohttpd response for a stream (NULL: answered 503/500 and
 * `done` called). */
struct MHD_Response *aeth__http_stream_start(aeth__http_server *srv,
					     struct MHD_Connection *conn,
					     aeth__http_response *res);
/* At stop: tell every stream to end and wait for their threads. */
void aeth__http_streams_stop(aeth__http_server *srv);

void aeth__http_response_clear(aeth__http_response *res);

#endif
