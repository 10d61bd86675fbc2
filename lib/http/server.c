/*
 * lib/http/server.c - the libmicrohttpd daemon, the route table, request
 * bodies with their limit, and plain responses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "http_internal.h"

/* Per-request state, from the URI callback to the completion callback. */
typedef struct {
	char *raw_uri;
	aeth__buf body;
	bool started;
	bool too_big;
	aeth__http_later *later; /* an answer being made (later.c) */
} req_state;

/* --- responses ---------------------------------------------------------- */

void aeth__http_response_clear(aeth__http_response *res)
{
	free(res->content_type);
	free(res->body);
	for (size_t i = 0; i < res->n_hdr; i++) {
		free(res->hdr_name[i]);
		free(res->hdr_value[i]);
	}
	if (res->done)
		res->done(res->userdata);
	memset(res, 0, sizeof(*res));
}

static void response_reset_body(aeth__http_response *res)
{
	free(res->content_type);
	free(res->body);
	res->content_type = NULL;
	res->body = NULL;
	res->body_len = 0;
	if (res->done)
		res->done(res->userdata);
	res->next = NULL;
	res->later = NULL;
	res->done = NULL;
	res->userdata = NULL;
}

int aeth__http_respond_take(aeth__http_response *res, int status,
			    const char *content_type, char *body, size_t len)
{
	response_reset_body(res);
	res->status = status;
	res->content_type = aeth__strdup(content_type ? content_type
						      : "text/plain; charset=utf-8");
	res->body = body;
	res->body_len = body ? len : 0;
	if (!res->content_type) {
		res->status = 500;
		return AETH_ENOMEM;
	}
	return 0;
}

int aeth__http_respond(aeth__http_response *res, int status,
		       const char *content_type, const void *body, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy) {
		res->status = 500;
		return aeth__error_oom();
	}
	if (len)
		memcpy(copy, body, len);
	copy[len] = '\0';
	return aeth__http_respond_take(res, status, content_type, copy, len);
}

/* The length of the UTF-8 sequence at `s` (1 to 4), 0 when it is none:
 * a stray continuation byte, an overlong form, a surrogate, a cut one. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned int cp, n, min;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 1, min = 0x80, cp = s[0] & 0x1fu;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 2, min = 0x800, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 3, min = 0x10000, cp = s[0] & 0x07u;
	else
		return 0;
	for (unsigned int i = 1; i <= n; i++) { /* a NUL stops it too */
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

/*
 * `in` into out[size] with each byte that is not UTF-8 as \xNN. A message
 * quotes the request (an id, a path, a method, percent-decoded) and JSON
 * text is UTF-8: one such byte and the client cannot parse the answer.
 */
static void utf8_escape(char *out, size_t size, const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0, k;

	while (*p) {
		if ((k = utf8_seq(p)) == 0) {
			if (n + 5 >= size)
				break;
			snprintf(out + n, size - n, "\\x%02x", *p++);
			n += 4;
			continue;
		}
		if (n + k >= size)
			break;
		memcpy(out + n, p, k);
		n += k;
		p += k;
	}
	out[n] = '\0';
}

int aeth__http_respond_error(aeth__http_response *res, int status,
			     const char *code, const char *fmt, ...)
{
	char raw[1024], msg[1024];
	cJSON *root, *err;
	char *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	utf8_escape(msg, sizeof(msg), raw);
	root = cJSON_CreateObject();
	err = cJSON_AddObjectToObject(root, "error");
	cJSON_AddStringToObject(err, "code", code);
	cJSON_AddStringToObject(err, "message", msg);
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!text) {
		res->status = 500;
		return aeth__error_oom();
	}
	return aeth__http_respond_take(res, status, "application/json", text,
				       strlen(text));
}

int aeth__http_response_status(const aeth__http_response *res)
{
	return res->status;
}

bool aeth__http_response_is_later(const aeth__http_response *res)
{
	return res->later != NULL;
}

int aeth__http_respond_header(aeth__http_response *res, const char *name,
			      const char *value)
{
	if (res->n_hdr >= AETH__HTTP_MAX_HEADERS)
		return aeth__error_set(AETH_ETOOBIG,
				       "more than %d extra response headers",
				       AETH__HTTP_MAX_HEADERS);
	res->hdr_name[res->n_hdr] = aeth__strdup(name);
	res->hdr_value[res->n_hdr] = aeth__strdup(value);
	res->n_hdr++;
	return res->hdr_name[res->n_hdr - 1] && res->hdr_value[res->n_hdr - 1]
		       ? 0 : AETH_ENOMEM;
}

int aeth__http_respond_stream(aeth__http_response *res, int status,
			      const char *content_type,
			      aeth__http_chunk_cb next,
			      void (*done)(void *userdata), void *userdata,
			      int64_t deadline_ms)
{
	response_reset_body(res);
	res->status = status;
	res->content_type = aeth__strdup(content_type);
	res->next = next;
	res->done = done;
	res->userdata = userdata;
	res->deadline_ms = deadline_ms;
	return res->content_type ? 0 : AETH_ENOMEM;
}

int aeth__http_respond_later(aeth__http_response *res, aeth__http_later_cb fn,
			     void (*done)(void *userdata), void *userdata,
			     int64_t deadline_ms)
{
	response_reset_body(res);
	res->status = 202; /* never sent: the later answer replaces it */
	res->later = fn;
	res->done = done;
	res->userdata = userdata;
	res->deadline_ms = deadline_ms;
	return 0;
}

/* --- requests ----------------------------------------------------------- */

const char *aeth__http_header(const aeth__http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn_, MHD_HEADER_KIND, name);
}

const char *aeth__http_query_arg(const aeth__http_request *req,
				 const char *name)
{
	return MHD_lookup_connection_value(req->conn_, MHD_GET_ARGUMENT_KIND,
					   name);
}

static bool prefix_matches(const char *prefix, const char *path)
{
	size_t n = strlen(prefix);

	if (strncmp(path, prefix, n) != 0)
		return false;
	return n > 0 && (prefix[n - 1] == '/' || path[n] == '\0' ||
			 path[n] == '/');
}

/* The route for method+path; *allow lists the methods of the longest
 * matching prefix when no route has this method (405). */
static const aeth__http_route *route_find(const aeth__http_server *srv,
					  const char *method, const char *path,
					  char *allow, size_t allow_size)
{
	const aeth__http_route *best = NULL;
	size_t best_len = 0, any_len = 0;

	allow[0] = '\0';
	for (size_t i = 0; i < srv->n_routes; i++) {
		const aeth__http_route *r = &srv->routes[i];
		size_t n = strlen(r->prefix);
		if (!prefix_matches(r->prefix, path))
			continue;
		if (n > any_len)
			any_len = n;
		if (strcmp(r->method, method) == 0 && (!best || n > best_len)) {
			best = r;
			best_len = n;
		}
	}
	if (best && best_len == any_len)
		return best;
	for (size_t i = 0; i < srv->n_routes; i++) {
		const aeth__http_route *r = &srv->routes[i];
		if (strlen(r->prefix) != any_len || !prefix_matches(r->prefix, path))
			continue;
		if (strstr(allow, r->method))
			continue;
		if (allow[0])
			strncat(allow, ", ", allow_size - strlen(allow) - 1);
		strncat(allow, r->method, allow_size - strlen(allow) - 1);
	}
	return allow[0] ? NULL : best;
}

static void peer_text(struct MHD_Connection *c, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char host[INET6_ADDRSTRLEN] = "?";

	if (!sa || sa->sa_family == AF_UNIX) {
		snprintf(out, size, "unix");
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, size, "?");
	}
}

/* Hand `res` to libmicrohttpd; consumes res. */
static enum MHD_Result send_response(aeth__http_server *srv,
				     struct MHD_Connection *c,
				     aeth__http_response *res)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	int status;

	if (res->status == 0)
		aeth__http_respond_error(res, 500, "internal",
					 "the handler gave no answer");
	if (res->next) {
		r = aeth__http_stream_start(srv, c, res);
		if (!r) /* answered with an error body instead */
			r = MHD_create_response_from_buffer(
				res->body_len, res->body, MHD_RESPMEM_MUST_COPY);
	} else {
		r = MHD_create_response_from_buffer(res->body_len, res->body,
						    MHD_RESPMEM_MUST_COPY);
	}
	if (!r) {
		aeth__http_response_clear(res);
		return MHD_NO;
	}
	if (res->content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
					res->content_type);
	for (size_t i = 0; i < res->n_hdr; i++)
		if (res->hdr_name[i] && res->hdr_value[i])
			MHD_add_response_header(r, res->hdr_name[i],
						res->hdr_value[i]);
	status = res->status;
	aeth__http_response_clear(res);
	ret = MHD_queue_response(c, (unsigned int)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result dispatch(aeth__http_server *srv,
				struct MHD_Connection *c, const char *url,
				const char *method, req_state *rs)
{
	aeth__http_response res;
	aeth__http_request req;
	const aeth__http_route *route;
	char allow[128], peer[64];
	const char *q;

	memset(&res, 0, sizeof(res));
	aeth__http_deadline_mark(srv, c, true);
	route = rs->too_big ? NULL
			    : route_find(srv, method, url, allow, sizeof(allow));
	if (rs->too_big) {
		aeth__http_respond_error(&res, 413, "too_large",
					 "the request body is larger than %zu bytes",
					 srv->max_body);
	} else if (!route && allow[0]) {
		aeth__http_respond_error(&res, 405, "method_not_allowed",
					 "%s is not allowed on %s (allowed: %s)",
					 method, url, allow);
		aeth__http_respond_header(&res, MHD_HTTP_HEADER_ALLOW, allow);
	} else if (!route) {
		aeth__http_respond_error(&res, 404, "not_found",
					 "nothing at %s", url);
	}
	if (!route) {
		if (srv->unrouted)
			srv->unrouted(method, res.status, srv->unrouted_userdata);
		return send_response(srv, c, &res);
	}
	peer_text(c, peer, sizeof(peer));
	q = rs->raw_uri ? strchr(rs->raw_uri, '?') : NULL;
	req.method = method;
	req.path = url;
	req.query = q ? q + 1 : "";
	req.body = rs->body.data ? rs->body.data : "";
	req.body_len = rs->body.len;
	req.peer = peer;
	req.conn_ = c;
	route->fn(&req, &res, route->userdata);
	if (res.later && aeth__http_later_start(srv, c, &res, &rs->later) == 0)
		return MHD_YES; /* suspended: the answer comes later */
	return send_response(srv, c, &res);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	aeth__http_server *srv = cls;
	req_state *rs = *con_cls;

	(void)version;
	if (!rs) {
		rs = calloc(1, sizeof(*rs));
		if (!rs)
			return MHD_NO;
		*con_cls = rs;
	}
	if (!rs->started) {
		const char *cl = MHD_lookup_connection_value(
			c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		rs->started = true;
		/* refuse a declared oversized body before reading it */
		if (cl && strtoull(cl, NULL, 10) > srv->max_body) {
			rs->too_big = true;
			return dispatch(srv, c, url, method, rs);
		}
		return MHD_YES;
	}
	if (rs->later) {
		/* resumed: the later answer is made */
		aeth__http_response res;

		if (!aeth__http_later_take(rs->later, &res))
			return MHD_YES;
		return send_response(srv, c, &res);
	}
	if (*upload_data_size) {
		if (!rs->too_big) {
			if (rs->body.len + *upload_data_size > srv->max_body) {
				rs->too_big = true;
				aeth__buf_free(&rs->body);
			} else if (aeth__buf_append(&rs->body, upload_data,
						    *upload_data_size) < 0) {
				return MHD_NO;
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(srv, c, url, method, rs);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	req_state *rs = calloc(1, sizeof(*rs));

	(void)cls;
	(void)c;
	if (rs)
		rs->raw_uri = strdup(uri);
	return rs;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	req_state *rs = *con_cls;

	(void)toe;
	aeth__http_deadline_mark(cls, c, false);
	if (!rs)
		return;
	free(rs->raw_uri);
	aeth__buf_free(&rs->body);
	aeth__http_later_unref(rs->later);
	free(rs);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	aeth__http_server *srv = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	aeth__debug("%s: %s", srv->what, msg);
}

/* --- the server --------------------------------------------------------- */

static char *read_pem(const char *path, const char *what)
{
	FILE *f = fopen(path, "rb");
	aeth__buf b = AETH__BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f) {
		aeth__error_errno(AETH_EINVALID, "%s: cannot read TLS file %s",
				  what, path);
		return NULL;
	}
	b.limit = 1 << 20;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		aeth__buf_append(&b, chunk, n);
	fclose(f);
	if (!b.data || b.truncated) {
		aeth__buf_free(&b);
		aeth__error_set(AETH_EINVALID, "%s: TLS file %s is empty or "
			"larger than 1 MiB", what, path);
		return NULL;
	}
	return aeth__buf_detach(&b, NULL);
}

static int copy_config(aeth__http_server *srv, const aeth__http_config *cfg)
{
	srv->what = aeth__strdup(cfg->what ? cfg->what : "http server");
	srv->max_body = cfg->max_body_bytes ? cfg->max_body_bytes : 1u << 20;
	srv->max_streams = cfg->max_streams ? cfg->max_streams : 64;
	srv->unrouted = cfg->unrouted;
	srv->unrouted_userdata = cfg->unrouted_userdata;
	srv->n_routes = cfg->n_routes;
	srv->routes = calloc(cfg->n_routes ? cfg->n_routes : 1,
			     sizeof(*srv->routes));
	if (!srv->what || !srv->routes)
		return aeth__error_oom();
	for (size_t i = 0; i < cfg->n_routes; i++) {
		if (!cfg->routes[i].method || !cfg->routes[i].prefix ||
		    !cfg->routes[i].fn || cfg->routes[i].prefix[0] != '/')
			return aeth__error_set(AETH_EINVALID,
					       "%s: route %zu needs a method, a "
					       "prefix starting with '/' and a handler",
					       srv->what, i);
		srv->routes[i] = cfg->routes[i];
	}
	if (!cfg->tls_cert_file != !cfg->tls_key_file)
		return aeth__error_set(AETH_EINVALID,
				       "%s: TLS needs both a certificate and a key "
				       "file (gateway.tls_cert and gateway.tls_key, "
				       "PEM): give the other one, or neither for "
				       "plain HTTP", srv->what);
	if (cfg->tls_cert_file) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
			return aeth__error_set(AETH_EUNAVAILABLE,
					       "%s: this libmicrohttpd has no TLS "
					       "support", srv->what);
		srv->tls_cert = read_pem(cfg->tls_cert_file, srv->what);
		if (!srv->tls_cert)
			return AETH_EINVALID;
		srv->tls_key = read_pem(cfg->tls_key_file, srv->what);
		if (!srv->tls_key)
			return AETH_EINVALID;
	}
	return 0;
}

int aeth__http_server_start(aeth__http_server **out,
			    const aeth__http_config *cfg)
{
	aeth__http_server *srv;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[16];
	size_t n = 0;
	int rc;

	*out = NULL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return aeth__error_oom();
	srv->listen_fd = -1;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	pthread_mutex_init(&srv->dl_mu, NULL);
	pthread_cond_init(&srv->dl_cv, NULL);
	if ((rc = copy_config(srv, cfg)) < 0)
		goto fail;
	/* the loopback rule is about plain HTTP: with TLS any address will do */
	rc = aeth__http_listen(cfg->listen, cfg->allow_remote || srv->tls_cert,
			       srv->what,
			       &srv->listen_fd, &srv->port, &srv->unix_path);
	if (rc < 0)
		goto fail;

#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (p)}
	/* first: the options after it log through it */
	OPT(MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv);
	OPT(MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, NULL);
	OPT(MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 30,
	    NULL);
	OPT(MHD_OPTION_CONNECTION_LIMIT, cfg->max_conns ? cfg->max_conns : 256,
	    NULL);
	/* one thread: the daemon's own polling thread, no pool */
	if (cfg->threads != 1)
		OPT(MHD_OPTION_THREAD_POOL_SIZE, cfg->threads ? cfg->threads : 2,
		    NULL);
	OPT(MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv);
	OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv);
	OPT(MHD_OPTION_NOTIFY_CONNECTION, aeth__http_deadline_notify, srv);
	if (srv->tls_cert) {
		flags |= MHD_USE_TLS;
		OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert);
		OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key);
	}
	OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
				       MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!srv->daemon) {
		rc = aeth__error_set(AETH_EUNAVAILABLE,
				     "%s: the HTTP server did not start on %s "
				     "(a bad TLS certificate or key?)",
				     srv->what, cfg->listen);
		goto fail;
	}
	srv->listen_fd = -1; /* the daemon's now; MHD_quiesce_daemon gives it back */
	if ((rc = aeth__http_deadline_start(srv, cfg->timeout_s ? cfg->timeout_s
					    : 30)) < 0)
		goto fail;
	aeth__info("%s: listening on %s%s", srv->what,
		   srv->unix_path ? "unix:" : "",
		   srv->unix_path ? srv->unix_path : cfg->listen);
	*out = srv;
	return 0;
fail:
	aeth__http_server_free(srv);
	return rc;
}

int aeth__http_server_port(const aeth__http_server *srv)
{
	return srv ? srv->port : 0;
}

void aeth__http_server_load(aeth__http_server *srv, unsigned int *conns,
			    unsigned int *streams)
{
	const union MHD_DaemonInfo *di = srv && srv->daemon
		? MHD_get_daemon_info(srv->daemon,
				      MHD_DAEMON_INFO_CURRENT_CONNECTIONS)
		: NULL;

	*conns = di ? di->num_connections : 0;
	*streams = 0;
	if (!srv)
		return;
	pthread_mutex_lock(&srv->mu);
	*streams = srv->n_streams;
	pthread_mutex_unlock(&srv->mu);
}

void aeth__http_server_free(aeth__http_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon) /* no new connections from here on */
		srv->listen_fd = MHD_quiesce_daemon(srv->daemon);
	aeth__http_streams_stop(srv);
	aeth__http_deadline_stop(srv);
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->unix_path)
		unlink(srv->unix_path);
	free(srv->unix_path);
	free(srv->what);
	free(srv->routes);
	free(srv->tls_cert);
	free(srv->tls_key);
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->dl_mu);
	pthread_cond_destroy(&srv->dl_cv);
	free(srv);
}
