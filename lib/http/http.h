/*
 * lib/http/http.h - a small HTTP server for the library's own endpoints
 * (the worker's /metrics, the gateway's API). Internal: not installed,
 * names use the aeth__http_ prefix.
 *
 * It is a thin layer over libmicrohttpd (Debian's libmicrohttpd-dev), a
 * well-kept HTTP/1.1 server library: parsing, keep-alive, chunked
 * encoding, timeouts and TLS (GnuTLS) are its job; this file adds what
 * every caller here wants the same way: listen specs with a loopback
 * rule, a route table, body limits, JSON errors, streamed responses.
 *
 * Threads: a server runs `threads` internal polling threads (epoll or
 * poll, libmicrohttpd's own pool); handlers run on those threads, so a
 * handler must return quickly (each blocking wait in it bounded by a
 * deadline of at most a second or two) - the connections that thread
 * serves wait meanwhile. Long responses (live output) use a stream: its
 * chunk callback runs on a thread of its own per response, and may block
 * up to the deadline it is given. Handlers and chunk callbacks may run
 * concurrently with each other; their userdata must be thread-safe. An
 * answer that must wait for something before its status is known (a task's
 * end) is given later from a thread of its own: aeth__http_respond_later().
 * aeth__http_server_free() may be called from any thread but not from a
 * handler or a chunk callback.
 *
 * Built only with the meson option `http` enabled (AETH_HAVE_HTTP); the
 * library without it has none of these symbols.
 */
#ifndef AETH_HTTP_H
#define AETH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct aeth__http_server aeth__http_server;
typedef struct aeth__http_response aeth__http_response;

/* One request, valid only during the handler's call. */
typedef struct {
	const char *method; /* "GET" */
	const char *path;   /* decoded path, without the query: "/v1/vms/x" */
	const char *query;  /* the raw query after '?', "" when none */
	const char *body;   /* NUL-terminated, body_len bytes ("" for none) */
	size_t body_len;
	const char *peer;   /* "127.0.0.1:51234", "unix" */
	void *conn_;        /* libmicrohttpd's connection: use the calls below */
} aeth__http_request;

/* A request header (case-insensitive name), or NULL. */
const char *aeth__http_header(const aeth__http_request *req, const char *name);
/* A decoded query argument ("?limit=5" -> "5"), or NULL. */
const char *aeth__http_query_arg(const aeth__http_request *req,
				 const char *name);

/*
 * A handler answers through `res` with one of the respond calls below
 * (the last one wins). A handler that answers nothing gives a 500.
 */
typedef void (*aeth__http_handler)(const aeth__http_request *req,
				   aeth__http_response *res, void *userdata);

/* Copy `len` bytes of `body` as the answer. */
int aeth__http_respond(aeth__http_response *res, int status,
		       const char *content_type, const void *body, size_t len);
/* Take a malloc'd `body` (freed by the server, also on failure). */
int aeth__http_respond_take(aeth__http_response *res, int status,
			    const char *content_type, char *body, size_t len);
/* A JSON error {"error":{"code":CODE,"message":MESSAGE}} (escaped). */
int aeth__http_respond_error(aeth__http_response *res, int status,
			     const char *code, const char *fmt, ...)
	AETH__PRINTF(4, 5);
/* The status answered so far (0: none yet). For the caller's metrics. */
int aeth__http_response_status(const aeth__http_response *res);
/* true when the handler chose aeth__http_respond_later(): the status it
 * has now (202) is never sent */
bool aeth__http_response_is_later(const aeth__http_response *res);
/* An extra response header (copied; up to 8 per response). */
int aeth__http_respond_header(aeth__http_response *res, const char *name,
			      const char *value);

/*
 * A streamed (chunked) answer, for live output (SSE, NDJSON). After the
 * handler returns, a thread of the stream's own calls `next` over and
 * over; each call appends the next chunk to `out` (may be empty) and may
 * block, but should return by the `deadline_ms` it is given (aeth__now_ms()
 * clock; at most a second away, so that a client gone or a server stop
 * is seen within about a second: return 1 with nothing when idle). It
 * returns 1 for more, 0 when done (what it appended is still sent), or a
 * negative value to cut the response short. The stream ends at
 * `deadline_ms` (the total time the response may take, e.g. now + 1 h)
 * whatever `next` says, and when the client goes away (seen at the next
 * write). `done` (may be NULL) is called once with `userdata` when the
 * stream thread is finished with it, whether or not `next` ever ran.
 * At most `max_streams` (config) run at once; beyond that the answer is
 * 503 and `done` is still called.
 */
typedef int (*aeth__http_chunk_cb)(aeth__buf *out, int64_t deadline_ms,
				   void *userdata);
int aeth__http_respond_stream(aeth__http_response *res, int status,
			      const char *content_type,
			      aeth__http_chunk_cb next,
			      void (*done)(void *userdata), void *userdata,
			      int64_t deadline_ms);
/* (the stream's total deadline is `deadline_ms` above; each `next` call
 * gets the sooner of it and now + 1 s) */

/*
 * An answer whose status is known only later (when a task ends): after
 * the handler returns, its connection is suspended - the polling thread
 * serves the others meanwhile - and a thread of its own calls `fn` over
 * and over, each call with a deadline at most a second away, until `fn`
 * answers through the response it is given (aeth__http_respond(),
 * _take(), _error(), _header(); not a stream) and returns 0. It returns
 * 1 for "not yet" (answering nothing); a negative value, or 0 without an
 * answer, gives a 500. At `deadline_ms` the answer is 504 "timeout", when
 * the server stops 503 "unavailable", and `fn` is not called again.
 * Headers the handler set are kept. `done` (may be NULL) is called once
 * with `userdata` when the thread is finished with it, whether or not
 * `fn` ever ran. These count among `max_streams` (beyond: 503, and `done`
 * is still called).
 */
typedef int (*aeth__http_later_cb)(aeth__http_response *res,
				   int64_t deadline_ms, void *userdata);
int aeth__http_respond_later(aeth__http_response *res, aeth__http_later_cb fn,
			     void (*done)(void *userdata), void *userdata,
			     int64_t deadline_ms);

/*
 * A route: requests whose method is `method` and whose path is `prefix`
 * or starts with `prefix` followed by '/' (or any continuation when
 * `prefix` ends in '/') go to `fn`. The longest matching prefix wins; a
 * path that matches a prefix only under other methods gets 405 with an
 * Allow header, one that matches none 404.
 */
typedef struct {
	const char *method;
	const char *prefix;
	aeth__http_handler fn;
	void *userdata;
} aeth__http_route;

typedef struct {
	/* "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464", "unix:/path/sock";
	 * port 0 picks a free one (aeth__http_server_port) */
	const char *listen;
	/* a TCP address that is not loopback is refused unless this is set:
	 * plain HTTP to the network is the operator's explicit choice */
	bool allow_remote;
	/* both or neither: PEM files; with them the server speaks only TLS */
	const char *tls_cert_file;
	const char *tls_key_file;
	size_t max_body_bytes;   /* 0: 1 MiB; larger bodies get 413 */
	unsigned int timeout_s;  /* 0: 30; idle/slow connections closed */
	unsigned int max_conns;  /* 0: 256; split evenly over the threads;
				  * more wait in the listen backlog */
	unsigned int max_streams; /* 0: 64 streamed responses at once */
	unsigned int threads;    /* 0: 2 polling threads */
	const aeth__http_route *routes; /* copied */
	size_t n_routes;
	const char *what;        /* for messages: "metrics (metrics.listen)" */
	/* called (may be NULL) with each answer the server gives itself,
	 * before any route's handler: 413 (body too large), 404, 405; with
	 * the request's method, on a polling thread: for the caller's
	 * metrics, which only see what reaches a handler */
	void (*unrouted)(const char *method, int status, void *userdata);
	void *unrouted_userdata;
} aeth__http_config;

/*
 * Start serving. Errors: AETH_EINVALID (a bad spec, a refused address,
 * unreadable TLS files), AETH_EUNAVAILABLE (the address is in use, or
 * libmicrohttpd lacks TLS), with a message naming the setting.
 */
int aeth__http_server_start(aeth__http_server **out,
			    const aeth__http_config *cfg);
/* The TCP port listened on (0 for a Unix socket). */
int aeth__http_server_port(const aeth__http_server *srv);
/* Connections open now and streamed responses running now (metrics). */
void aeth__http_server_load(aeth__http_server *srv, unsigned int *conns,
			    unsigned int *streams);
/*
 * Stop: no new connections, streams told to end (their `next` calls
 * finish by their deadline or sooner), wait for them, close all, remove
 * a Unix socket file the server made. NULL-safe.
 */
void aeth__http_server_free(aeth__http_server *srv);

/* Parse a listen spec; unix_path (NULL for TCP) and host are malloc'd. */
int aeth__http_parse_listen(const char *spec, char **host, int *port,
			    char **unix_path);

#endif
