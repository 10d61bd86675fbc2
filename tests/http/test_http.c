/*
 * lib/http against real sockets: libcurl and raw TCP/Unix clients talk to
 * a real server on 127.0.0.1 (port chosen by the kernel) or a Unix
 * socket. Routes, 404/405, the body limit, a slow client timed out, the
 * connection limit, listen rules, TLS, streamed responses arriving in
 * pieces (the producer waits for the client to have each piece before it
 * makes the next, so the test cannot pass on a buffered response), the
 * stream deadline, a client leaving mid-stream, a stop during a stream,
 * and answers made later (their status known only then) that leave the
 * polling thread free meanwhile. No services.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http/http.h"

/* --- handlers ----------------------------------------------------------- */

static void h_hello(const aeth__http_request *req, aeth__http_response *res,
		    void *ud)
{
	(void)req;
	aeth__http_respond(res, 200, "text/plain", ud, strlen(ud));
}

static void h_echo(const aeth__http_request *req, aeth__http_response *res,
		   void *ud)
{
	const char *h = aeth__http_header(req, "X-Test");
	const char *a = aeth__http_query_arg(req, "a");
	char *out;

	(void)ud;
	out = aeth__sprintf("%s %s q=%s a=%s h=%s peer=%s body=%.*s", req->method,
			    req->path, req->query, a ? a : "-", h ? h : "-",
			    strncmp(req->peer, "127.0.0.1:", 10) == 0 ? "lo"
								      : req->peer,
			    (int)req->body_len, req->body);
	aeth__http_respond_take(res, 201, "text/plain", out, strlen(out));
	aeth__http_respond_header(res, "X-Echo", "yes");
}

static void h_silent(const aeth__http_request *req, aeth__http_response *res,
		     void *ud)
{
	(void)req;
	(void)res;
	(void)ud;
}

/* A stream of `total` pieces; piece i+1 is made only once the client has
 * received piece i (or after `wait_client_ms`). */
typedef struct {
	int total;
	int made;
	int wait_client_ms;
	int64_t deadline_in_ms;
	atomic_int received;  /* pieces the curl client has seen */
	atomic_int done_calls;
	atomic_int next_calls;
} stream_ctx;

static int next_piece(aeth__buf *out, int64_t deadline_ms, void *ud)
{
	stream_ctx *s = ud;
	int64_t until = aeth__now_ms() + s->wait_client_ms;

	atomic_fetch_add(&s->next_calls, 1);
	if (s->total < 0) { /* never ends by itself: idle until the deadline */
		aeth__sleep_ms(deadline_ms - aeth__now_ms());
		return 1;
	}
	while (s->made > 0 && atomic_load(&s->received) < s->made &&
	       aeth__now_ms() < until && aeth__now_ms() < deadline_ms)
		aeth__sleep_ms(5);
	if (s->made > 0 && atomic_load(&s->received) < s->made)
		return 1; /* nothing new yet */
	aeth__buf_printf(out, "piece %d\n", s->made);
	s->made++;
	return s->made < s->total ? 1 : 0;
}

static void stream_done(void *ud)
{
	stream_ctx *s = ud;
	atomic_fetch_add(&s->done_calls, 1);
}

static void h_stream(const aeth__http_request *req, aeth__http_response *res,
		     void *ud)
{
	stream_ctx *s = ud;

	(void)req;
	aeth__http_respond_stream(res, 200, "application/x-ndjson", next_piece,
				  stream_done, s,
				  aeth__now_ms() + s->deadline_in_ms);
}

/* --- clients ------------------------------------------------------------ */

typedef struct {
	aeth__buf body;
	stream_ctx *stream;
	int writes;
	int abort_after; /* 0: never */
} reply;

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
	reply *r = ud;

	aeth__buf_append(&r->body, data, size * n);
	r->writes++;
	if (r->stream) {
		int lines = 0;
		for (size_t i = 0; i < r->body.len; i++)
			lines += r->body.data[i] == '\n';
		atomic_store(&r->stream->received, lines);
	}
	if (r->abort_after && r->writes >= r->abort_after)
		return 0;
	return size * n;
}

static long request_timeout_s;

/* One request; returns the status (or -curl code), the body in r. */
static long do_request(const char *url, const char *unix_path,
		       const char *method, const char *body, size_t body_len,
		       reply *r, char *allow, size_t allow_size)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	long status = 0;
	CURLcode cc;

	h = curl_slist_append(h, "X-Test: hdr-value");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT,
			 request_timeout_s ? request_timeout_s : 60L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	if (unix_path)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_path);
	if (method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (allow) {
			struct curl_header *ah;
			allow[0] = '\0';
			if (curl_easy_header(c, "Allow", 0, CURLH_HEADER, -1,
					     &ah) == CURLHE_OK)
				snprintf(allow, allow_size, "%s", ah->value);
		}
	} else {
		status = -(long)cc;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

static long get(const char *url, reply *r)
{
	return do_request(url, NULL, NULL, NULL, 0, r, NULL, 0);
}

static long get_within(const char *url, reply *r, long seconds)
{
	long st;

	request_timeout_s = seconds;
	st = get(url, r);
	request_timeout_s = 0;
	return st;
}

static aeth__http_server *start(aeth__http_config *cfg, char url[128])
{
	aeth__http_server *srv = NULL;
	int rc = aeth__http_server_start(&srv, cfg);

	if (rc != 0)
		fail_msg("server start: %s", aeth_error_last());
	if (url)
		snprintf(url, 128, "%s://127.0.0.1:%d",
			 cfg->tls_cert_file ? "https" : "http",
			 aeth__http_server_port(srv));
	return srv;
}

static int raw_connect(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* True when the server closes fd within ms (reads and drops data). */
static bool closed_within(int fd, int ms)
{
	int64_t until = aeth__now_ms() + ms;
	char buf[512];

	while (aeth__now_ms() < until) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				return true;
		}
	}
	return false;
}

static const aeth__http_route base_routes[] = {
	{"GET", "/hello", h_hello, (void *)"hello"},
	{"GET", "/hello/deeper", h_hello, (void *)"deeper"},
	{"GET", "/echo", h_echo, NULL},
	{"POST", "/echo", h_echo, NULL},
	{"DELETE", "/only-delete", h_hello, (void *)"deleted"},
	{"GET", "/files/", h_hello, (void *)"files"},
	{"GET", "/silent", h_silent, NULL},
};

#define BASE_CONFIG(c)                                                         \
	do {                                                                   \
		memset(&(c), 0, sizeof(c));                                    \
		(c).listen = "127.0.0.1:0";                                    \
		(c).routes = base_routes;                                      \
		(c).n_routes = sizeof(base_routes) / sizeof(base_routes[0]);   \
		(c).what = "test server";                                      \
	} while (0)

/* --- tests -------------------------------------------------------------- */

static void test_routes(void **state)
{
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128], u[512], allow[128];
	reply r = {0};

	(void)state;
	BASE_CONFIG(cfg);
	srv = start(&cfg, url);

	snprintf(u, sizeof(u), "%s/hello", url);
	assert_int_equal(get(u, &r), 200);
	assert_string_equal(r.body.data, "hello");
	aeth__buf_free(&r.body);

	/* longest prefix; a prefix matches at a '/' boundary only */
	snprintf(u, sizeof(u), "%s/hello/deeper/x", url);
	assert_int_equal(get(u, &r), 200);
	assert_string_equal(r.body.data, "deeper");
	aeth__buf_free(&r.body);
	snprintf(u, sizeof(u), "%s/hello/other", url);
	assert_int_equal(get(u, &r), 200);
	assert_string_equal(r.body.data, "hello");
	aeth__buf_free(&r.body);
	snprintf(u, sizeof(u), "%s/hellothere", url);
	assert_int_equal(get(u, &r), 404);
	assert_non_null(strstr(r.body.data, "\"code\":\"not_found\""));
	aeth__buf_free(&r.body);
	snprintf(u, sizeof(u), "%s/files/a/b", url);
	assert_int_equal(get(u, &r), 200);
	aeth__buf_free(&r.body);

	/* method, path, query, header, body and peer reach the handler */
	snprintf(u, sizeof(u), "%s/echo/x?a=1%%202&b", url);
	assert_int_equal(do_request(u, NULL, "POST", "the body", 8, &r, NULL, 0),
			 201);
	assert_string_equal(r.body.data,
			    "POST /echo/x q=a=1%202&b a=1 2 h=hdr-value peer=lo "
			    "body=the body");
	aeth__buf_free(&r.body);

	/* 405 names the allowed methods; 404 for no prefix at all */
	snprintf(u, sizeof(u), "%s/only-delete", url);
	assert_int_equal(do_request(u, NULL, "GET", NULL, 0, &r, allow,
				    sizeof(allow)), 405);
	assert_string_equal(allow, "DELETE");
	assert_non_null(strstr(r.body.data, "method_not_allowed"));
	aeth__buf_free(&r.body);
	snprintf(u, sizeof(u), "%s/echo", url);
	assert_int_equal(do_request(u, NULL, "PUT", "x", 1, &r, allow,
				    sizeof(allow)), 405);
	assert_string_equal(allow, "GET, POST");
	aeth__buf_free(&r.body);
	snprintf(u, sizeof(u), "%s/nothing", url);
	assert_int_equal(get(u, &r), 404);
	aeth__buf_free(&r.body);

	/* a handler that answers nothing gives 500, not a hang */
	snprintf(u, sizeof(u), "%s/silent", url);
	assert_int_equal(get(u, &r), 500);
	aeth__buf_free(&r.body);
	aeth__http_server_free(srv);
}

static void test_body_limit(void **state)
{
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128], u[512], *big;
	reply r = {0};

	(void)state;
	BASE_CONFIG(cfg);
	cfg.max_body_bytes = 1000;
	srv = start(&cfg, url);
	snprintf(u, sizeof(u), "%s/echo", url);
	big = malloc(5000);
	memset(big, 'x', 5000);
	assert_int_equal(do_request(u, NULL, "POST", big, 1000, &r, NULL, 0), 201);
	aeth__buf_free(&r.body);
	assert_int_equal(do_request(u, NULL, "POST", big, 1001, &r, NULL, 0), 413);
	assert_non_null(strstr(r.body.data, "larger than 1000 bytes"));
	aeth__buf_free(&r.body);
	assert_int_equal(do_request(u, NULL, "POST", big, 5000, &r, NULL, 0), 413);
	aeth__buf_free(&r.body);
	free(big);

	/* a chunked body (no Content-Length) is cut at the limit too */
	{
		int fd = raw_connect(aeth__http_server_port(srv));
		const char *head = "POST /echo HTTP/1.1\r\nHost: t\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
		char chunk[700], resp[256] = "";
		int64_t until = aeth__now_ms() + 20000;
		size_t got = 0;

		assert_true(write(fd, head, strlen(head)) > 0);
		for (int i = 0; i < 3; i++) {
			int n = snprintf(chunk, sizeof(chunk), "200\r\n");
			memset(chunk + n, 'y', 512);
			memcpy(chunk + n + 512, "\r\n", 2);
			assert_true(write(fd, chunk, (size_t)n + 514) > 0);
		}
		assert_true(write(fd, "0\r\n\r\n", 5) == 5);
		while (got < sizeof(resp) - 1 && aeth__now_ms() < until) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			ssize_t n;
			if (poll(&p, 1, 200) <= 0)
				continue;
			n = read(fd, resp + got, sizeof(resp) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			resp[got] = '\0';
			if (strstr(resp, "\r\n"))
				break;
		}
		assert_non_null(strstr(resp, "HTTP/1.1 413"));
		close(fd);
	}
	aeth__http_server_free(srv);
}

static void test_slow_client_timed_out(void **state)
{
	aeth__http_config cfg;
	aeth__http_server *srv;
	int fd;

	(void)state;
	BASE_CONFIG(cfg);
	cfg.timeout_s = 1;
	srv = start(&cfg, NULL);
	/* half a request line, then nothing: slowloris */
	fd = raw_connect(aeth__http_server_port(srv));
	assert_true(write(fd, "GET /hello HT", 13) == 13);
	assert_true(closed_within(fd, 20000));
	close(fd);
	/* a silent connection too */
	fd = raw_connect(aeth__http_server_port(srv));
	assert_true(closed_within(fd, 20000));
	close(fd);
	aeth__http_server_free(srv);
}

static void test_connection_limit(void **state)
{
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128], u[512];
	int fds[2];
	bool refused = false, served = false;
	int64_t until;

	(void)state;
	BASE_CONFIG(cfg);
	cfg.max_conns = 2;
	cfg.threads = 1; /* libmicrohttpd splits the limit over its threads */
	srv = start(&cfg, url);
	snprintf(u, sizeof(u), "%s/hello", url);
	for (int i = 0; i < 2; i++) {
		fds[i] = raw_connect(aeth__http_server_port(srv));
		assert_true(write(fds[i], "GET /hel", 8) == 8);
	}
	/* the server may not have accepted both yet: ask until a request
	 * is not served (libmicrohttpd leaves it in the listen backlog) */
	until = aeth__now_ms() + 30000;
	while (!refused && aeth__now_ms() < until) {
		reply r = {0};
		refused = get_within(u, &r, 2) < 0;
		aeth__buf_free(&r.body);
		if (!refused)
			aeth__sleep_ms(100);
	}
	assert_true(refused);
	/* one idle connection gone: a request gets through again */
	close(fds[0]);
	until = aeth__now_ms() + 20000;
	while (!served && aeth__now_ms() < until) {
		reply r = {0};
		served = get(u, &r) == 200;
		aeth__buf_free(&r.body);
		if (!served)
			aeth__sleep_ms(100);
	}
	assert_true(served);
	close(fds[1]);
	aeth__http_server_free(srv);
}

static void test_unix_socket(void **state)
{
	aeth__http_config cfg;
	aeth__http_server *srv;
	char dir[] = "/tmp/aeth-http-XXXXXX", spec[160], path[100];
	struct stat st;
	reply r = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/http.sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	BASE_CONFIG(cfg);
	cfg.listen = spec;
	srv = start(&cfg, NULL);
	assert_int_equal(aeth__http_server_port(srv), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(do_request("http://localhost/echo", path, NULL, NULL, 0,
				    &r, NULL, 0), 201);
	assert_non_null(strstr(r.body.data, "peer=unix"));
	aeth__buf_free(&r.body);
	aeth__http_server_free(srv);
	/* the socket file goes with the server */
	assert_int_not_equal(stat(path, &st), 0);
	/* a regular file at the path is the operator's: refused, kept */
	close(creat(path, 0600));
	assert_int_equal(aeth__http_server_start(&srv, &cfg), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "not a socket"));
	assert_int_equal(stat(path, &st), 0);
	unlink(path);
	rmdir(dir);
}

static void test_listen_rules(void **state)
{
	aeth__http_config cfg;
	aeth__http_server *srv = NULL;
	const char *bad[] = {"", "9464", "127.0.0.1", "127.0.0.1:x",
			     "127.0.0.1:70000", "::1:80", "[::1]80", "unix:rel"};
	char *host, *up;
	int port;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(aeth__http_parse_listen(bad[i], &host, &port, &up),
				 AETH_EINVALID);
	assert_int_equal(aeth__http_parse_listen("[::1]:9464", &host, &port, &up),
			 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 9464);
	assert_null(up);
	free(host);

	BASE_CONFIG(cfg);
	cfg.listen = "0.0.0.0:0";
	assert_int_equal(aeth__http_server_start(&srv, &cfg), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "not a loopback address"));
	assert_null(srv);
	cfg.allow_remote = true;
	assert_int_equal(aeth__http_server_start(&srv, &cfg), 0);
	aeth__http_server_free(srv);

	/* IPv6 loopback where the host has it */
	cfg.allow_remote = false;
	cfg.listen = "[::1]:0";
	if (aeth__http_server_start(&srv, &cfg) == 0) {
		char u[128];
		reply r = {0};
		snprintf(u, sizeof(u), "http://[::1]:%d/hello",
			 aeth__http_server_port(srv));
		assert_int_equal(get(u, &r), 200);
		aeth__buf_free(&r.body);
		aeth__http_server_free(srv);
	}

	/* a port in use is named */
	cfg.listen = "127.0.0.1:0";
	srv = start(&cfg, NULL);
	{
		char spec[64];
		aeth__http_server *other = NULL;
		snprintf(spec, sizeof(spec), "127.0.0.1:%d",
			 aeth__http_server_port(srv));
		cfg.listen = spec;
		assert_int_equal(aeth__http_server_start(&other, &cfg), AETH_EBUSY);
		assert_non_null(strstr(aeth_error_last(), "cannot listen"));
	}
	aeth__http_server_free(srv);
}

static void test_tls(void **state)
{
	aeth__http_config cfg;
	aeth__http_server *srv;
	char dir[] = "/tmp/aeth-http-XXXXXX", cert[128], key[128], cmd[512];
	char url[128], u[512];
	reply r = {0};

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -keyout %s -out %s -days 1 -subj /CN=localhost "
		 ">/dev/null 2>&1", key, cert);
	assert_int_equal(system(cmd), 0);
	BASE_CONFIG(cfg);
	cfg.tls_cert_file = cert;
	cfg.tls_key_file = key;
	srv = start(&cfg, url);
	snprintf(u, sizeof(u), "%s/hello", url);
	assert_int_equal(get(u, &r), 200);
	assert_string_equal(r.body.data, "hello");
	aeth__buf_free(&r.body);
	/* plain HTTP to a TLS server gets nothing useful */
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/hello",
		 aeth__http_server_port(srv));
	assert_true(get(u, &r) != 200);
	aeth__buf_free(&r.body);
	aeth__http_server_free(srv);
	/* one file without the other is refused */
	cfg.tls_key_file = NULL;
	assert_int_equal(aeth__http_server_start(&srv, &cfg), AETH_EINVALID);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

static void test_stream_in_pieces(void **state)
{
	stream_ctx s = {.total = 5, .wait_client_ms = 30000,
			.deadline_in_ms = 60000};
	aeth__http_route routes[] = {{"GET", "/stream", h_stream, &s}};
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128], u[512];
	reply r = {.stream = &s};

	(void)state;
	BASE_CONFIG(cfg);
	cfg.routes = routes;
	cfg.n_routes = 1;
	srv = start(&cfg, url);
	snprintf(u, sizeof(u), "%s/stream", url);
	assert_int_equal(get(u, &r), 200);
	/* each piece was made only after the client had the one before */
	assert_string_equal(r.body.data, "piece 0\npiece 1\npiece 2\npiece 3\n"
					 "piece 4\n");
	assert_true(r.writes >= 5);
	aeth__buf_free(&r.body);
	aeth__http_server_free(srv);
	assert_int_equal(atomic_load(&s.done_calls), 1);
}

static void test_stream_deadline_and_client_gone(void **state)
{
	stream_ctx idle = {.total = -1, .deadline_in_ms = 1500};
	stream_ctx gone = {.total = 1000000, .wait_client_ms = 50,
			   .deadline_in_ms = 600000};
	aeth__http_route routes[] = {{"GET", "/idle", h_stream, &idle},
				     {"GET", "/gone", h_stream, &gone}};
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128], u[512];
	reply r = {0};
	int64_t t0, until;

	(void)state;
	BASE_CONFIG(cfg);
	cfg.routes = routes;
	cfg.n_routes = 2;
	srv = start(&cfg, url);

	/* a stream that never ends by itself ends at its deadline */
	snprintf(u, sizeof(u), "%s/idle", url);
	t0 = aeth__now_ms();
	assert_int_equal(get(u, &r), 200);
	assert_true(aeth__now_ms() - t0 >= 1400);
	assert_int_equal(r.body.len, 0);
	aeth__buf_free(&r.body);
	until = aeth__now_ms() + 10000;
	while (atomic_load(&idle.done_calls) == 0 && aeth__now_ms() < until)
		aeth__sleep_ms(20);
	assert_int_equal(atomic_load(&idle.done_calls), 1);

	/* a client that leaves mid-stream ends it (long before its 10 min) */
	snprintf(u, sizeof(u), "%s/gone", url);
	r.abort_after = 2;
	r.stream = &gone;
	assert_true(get(u, &r) < 0);
	assert_int_equal(r.writes, 2);
	aeth__buf_free(&r.body);
	until = aeth__now_ms() + 20000;
	while (atomic_load(&gone.done_calls) == 0 && aeth__now_ms() < until)
		aeth__sleep_ms(20);
	assert_int_equal(atomic_load(&gone.done_calls), 1);

	/* and one that leaves while the stream is quiet (nothing to write,
	 * so only the socket tells) */
	memset(&idle, 0, sizeof(idle));
	idle.total = -1;
	idle.deadline_in_ms = 600000;
	snprintf(u, sizeof(u), "%s/idle", url);
	r = (reply){0};
	assert_true(get_within(u, &r, 2) < 0);
	aeth__buf_free(&r.body);
	until = aeth__now_ms() + 20000;
	while (atomic_load(&idle.done_calls) == 0 && aeth__now_ms() < until)
		aeth__sleep_ms(20);
	assert_int_equal(atomic_load(&idle.done_calls), 1);
	aeth__http_server_free(srv);
}

/* The server stops while a client waits on a stream. */
typedef struct {
	char url[256];
	long status;
} bg_req;

static void *bg_get(void *arg)
{
	bg_req *b = arg;
	reply r = {0};

	b->status = get(b->url, &r);
	aeth__buf_free(&r.body);
	return NULL;
}

static void test_stop_during_stream(void **state)
{
	stream_ctx idle = {.total = -1, .deadline_in_ms = 600000};
	aeth__http_route routes[] = {{"GET", "/idle", h_stream, &idle}};
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128];
	bg_req b;
	pthread_t th;
	int64_t t0, until;

	(void)state;
	BASE_CONFIG(cfg);
	cfg.routes = routes;
	cfg.n_routes = 1;
	srv = start(&cfg, url);
	snprintf(b.url, sizeof(b.url), "%s/idle", url);
	assert_int_equal(pthread_create(&th, NULL, bg_get, &b), 0);
	until = aeth__now_ms() + 20000;
	while (atomic_load(&idle.next_calls) == 0 && aeth__now_ms() < until)
		aeth__sleep_ms(20);
	assert_true(atomic_load(&idle.next_calls) > 0);
	t0 = aeth__now_ms();
	aeth__http_server_free(srv);
	/* each next call is bounded by a second: the stop is quick */
	assert_true(aeth__now_ms() - t0 < 10000);
	assert_int_equal(atomic_load(&idle.done_calls), 1);
	/* and the client is let go, not left waiting */
	pthread_join(th, NULL);
}

/* --- answers made later ----------------------------------------------- */

/* An answer whose status comes `after_ms` after the request (< 0: never),
 * from a later thread. */
typedef struct {
	int after_ms;
	int64_t deadline_in_ms;
	int64_t since;
	atomic_int calls;
	atomic_int done_calls;
} later_ctx;

static int later_fn(aeth__http_response *res, int64_t deadline_ms, void *ud)
{
	later_ctx *l = ud;

	atomic_fetch_add(&l->calls, 1);
	if (l->after_ms < 0 || aeth__now_ms() < l->since + l->after_ms) {
		int64_t until = l->after_ms < 0 ? deadline_ms
						: l->since + l->after_ms;

		/* blocks like a wait in Redis, within the slice's deadline */
		aeth__sleep_ms(until < deadline_ms ? until - aeth__now_ms()
						   : deadline_ms - aeth__now_ms());
		return 1;
	}
	aeth__http_respond_header(res, "X-Late", "yes");
	aeth__http_respond_error(res, 404, "not_found", "made later");
	return 0;
}

static void later_done(void *ud)
{
	later_ctx *l = ud;
	atomic_fetch_add(&l->done_calls, 1);
}

static void h_later(const aeth__http_request *req, aeth__http_response *res,
		    void *ud)
{
	later_ctx *l = ud;

	(void)req;
	l->since = aeth__now_ms();
	aeth__http_respond_header(res, "X-Early", "kept");
	aeth__http_respond_later(res, later_fn, later_done, l,
				 aeth__now_ms() + l->deadline_in_ms);
}

/* GET `path` on a raw socket: the whole answer (headers and body) into
 * out (NUL-terminated). */
typedef struct {
	int port;
	const char *path;
	char out[2048];
} raw_req;

static void *raw_get(void *arg)
{
	raw_req *r = arg;
	int fd = raw_connect(r->port);
	char req[256];
	size_t got = 0;
	ssize_t n;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: "
		 "close\r\n\r\n", r->path);
	assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	while (got + 1 < sizeof(r->out) &&
	       (n = read(fd, r->out + got, sizeof(r->out) - 1 - got)) > 0)
		got += (size_t)n;
	r->out[got] = '\0';
	close(fd);
	return NULL;
}

static void test_later_answer(void **state)
{
	later_ctx slow = {.after_ms = 1500, .deadline_in_ms = 30000};
	later_ctx never = {.after_ms = -1, .deadline_in_ms = 1200};
	aeth__http_route routes[] = {{"GET", "/later", h_later, &slow},
				     {"GET", "/never", h_later, &never},
				     {"GET", "/hello", h_hello, (void *)"hello"}};
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128], u[256];
	raw_req a = {.path = "/later"}, b = {.path = "/never"};
	pthread_t th;
	reply r = {0};
	int64_t t0;

	(void)state;
	BASE_CONFIG(cfg);
	cfg.routes = routes;
	cfg.n_routes = 3;
	cfg.threads = 1; /* one polling thread: a blocked one would show */
	srv = start(&cfg, url);
	a.port = b.port = aeth__http_server_port(srv);
	t0 = aeth__now_ms();
	assert_int_equal(pthread_create(&th, NULL, raw_get, &a), 0);
	while (atomic_load(&slow.calls) == 0 && aeth__now_ms() - t0 < 10000)
		aeth__sleep_ms(5);
	/* while the answer is made, the only polling thread serves others */
	snprintf(u, sizeof(u), "%s/hello", url);
	assert_int_equal(get(u, &r), 200);
	assert_true(aeth__now_ms() - t0 < 1000);
	aeth__buf_free(&r.body);
	pthread_join(th, NULL);
	assert_true(aeth__now_ms() - t0 >= 1400);
	if (!strstr(a.out, "HTTP/1.1 404") || !strstr(a.out, "X-Early: kept") ||
	    !strstr(a.out, "X-Late: yes") || !strstr(a.out, "made later"))
		fail_msg("the later answer: %s", a.out);
	assert_true(atomic_load(&slow.calls) >= 2); /* slices of <= 1 s */
	assert_int_equal(atomic_load(&slow.done_calls), 1);

	/* no answer by the deadline: 504, done called */
	raw_get(&b);
	if (!strstr(b.out, "HTTP/1.1 504") || !strstr(b.out, "\"timeout\""))
		fail_msg("past the deadline: %s", b.out);
	assert_int_equal(atomic_load(&never.done_calls), 1);
	aeth__http_server_free(srv);
}

static void test_later_limit_and_stop(void **state)
{
	later_ctx never = {.after_ms = -1, .deadline_in_ms = 600000};
	aeth__http_route routes[] = {{"GET", "/never", h_later, &never}};
	aeth__http_config cfg;
	aeth__http_server *srv;
	raw_req a = {.path = "/never"}, b = {.path = "/never"};
	pthread_t th;
	int64_t t0;

	(void)state;
	BASE_CONFIG(cfg);
	cfg.routes = routes;
	cfg.n_routes = 1;
	cfg.max_streams = 1;
	srv = start(&cfg, NULL);
	a.port = b.port = aeth__http_server_port(srv);
	assert_int_equal(pthread_create(&th, NULL, raw_get, &a), 0);
	t0 = aeth__now_ms();
	while (atomic_load(&never.calls) == 0 && aeth__now_ms() - t0 < 10000)
		aeth__sleep_ms(5);
	/* one pending answer is the limit: the next is 503, done called */
	raw_get(&b);
	if (!strstr(b.out, "HTTP/1.1 503") || !strstr(b.out, "\"busy\""))
		fail_msg("over max_streams: %s", b.out);
	assert_int_equal(atomic_load(&never.done_calls), 1);
	/* a stop ends the pending one within its one-second slices, and
	 * its client gets an answer, not a hang */
	t0 = aeth__now_ms();
	aeth__http_server_free(srv);
	assert_true(aeth__now_ms() - t0 < 5000);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&never.done_calls), 2);
	if (a.out[0] && !strstr(a.out, "HTTP/1.1 503"))
		fail_msg("at the stop: %s", a.out);
}

/* A client that leaves a pending answer: its slice loop ends within a
 * second or so (not at the 10-minute deadline), `done` is called, and
 * its place among max_streams is free for the next request. */
static void test_later_client_gone(void **state)
{
	later_ctx never = {.after_ms = -1, .deadline_in_ms = 600000};
	aeth__http_route routes[] = {{"GET", "/never", h_later, &never}};
	const char req[] = "GET /never HTTP/1.1\r\nHost: x\r\n\r\n";
	aeth__http_config cfg;
	aeth__http_server *srv;
	int64_t t0;
	int fd, calls;

	(void)state;
	BASE_CONFIG(cfg);
	cfg.routes = routes;
	cfg.n_routes = 1;
	cfg.max_streams = 1;
	srv = start(&cfg, NULL);
	fd = raw_connect(aeth__http_server_port(srv));
	assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	t0 = aeth__now_ms();
	while (atomic_load(&never.calls) == 0 && aeth__now_ms() - t0 < 10000)
		aeth__sleep_ms(5);
	close(fd);
	t0 = aeth__now_ms();
	while (atomic_load(&never.done_calls) == 0 && aeth__now_ms() - t0 < 10000)
		aeth__sleep_ms(5);
	assert_int_equal(atomic_load(&never.done_calls), 1);
	assert_true(aeth__now_ms() - t0 < 3000);
	/* the place is free: the next request reaches the handler (over
	 * max_streams it would be answered 503 without a call) */
	calls = atomic_load(&never.calls);
	fd = raw_connect(aeth__http_server_port(srv));
	assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	t0 = aeth__now_ms();
	while (atomic_load(&never.calls) == calls && aeth__now_ms() - t0 < 10000)
		aeth__sleep_ms(5);
	assert_true(atomic_load(&never.calls) > calls);
	close(fd);
	aeth__http_server_free(srv);
}

/* An error message quoting bytes that are not UTF-8 (a percent-decoded
 * path): the JSON body shows them as \xNN and keeps valid UTF-8. */
static void h_bytes(const aeth__http_request *req, aeth__http_response *res,
		    void *ud)
{
	(void)req;
	(void)ud;
	aeth__http_respond_error(res, 404, "not_found", "vm %s \xc3\xa9 \xe2\x82 "
				 "not found", "\xff\xfe");
}

static void test_error_not_utf8(void **state)
{
	aeth__http_route routes[] = {{"GET", "/bytes", h_bytes, NULL}};
	aeth__http_config cfg;
	aeth__http_server *srv;
	char url[128], u[256];
	reply r = {0};

	(void)state;
	BASE_CONFIG(cfg);
	cfg.routes = routes;
	cfg.n_routes = 1;
	srv = start(&cfg, url);
	snprintf(u, sizeof(u), "%s/bytes", url);
	assert_int_equal(get(u, &r), 404);
	assert_non_null(r.body.data);
	assert_string_equal(r.body.data, "{\"error\":{\"code\":\"not_found\","
			    "\"message\":\"vm \\\\xff\\\\xfe \xc3\xa9 "
			    "\\\\xe2\\\\x82 not found\"}}");
	aeth__buf_free(&r.body);
	aeth__http_server_free(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_slow_client_timed_out),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_unix_socket),
		cmocka_unit_test(test_listen_rules),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_stream_in_pieces),
		cmocka_unit_test(test_stream_deadline_and_client_gone),
		cmocka_unit_test(test_stop_during_stream),
		cmocka_unit_test(test_later_answer),
		cmocka_unit_test(test_later_limit_and_stop),
		cmocka_unit_test(test_later_client_gone),
		cmocka_unit_test(test_error_not_utf8),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
