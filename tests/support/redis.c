/*
 * tests/support/redis.c - private redis-server for tests; key namespaces.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "port.h"
#include "redis.h"

struct aeth_test_redis {
	char dir[64];
	char sock[128];
	char url[160];
	pid_t pid;
	pid_t owner; /* the process that started it (forked children don't stop it) */
	int watchdog_fd;
	int port;       /* TCP port on 127.0.0.1, 0: none */
	bool has_conf;  /* <dir>/extra.conf is read first */
};

static void rm_dir(const char *dir)
{
	char path[256];
	const char *names[] = {"redis.sock", "redis.log", "redis.pid", "dump.rdb",
			       "extra.conf"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* A child that waits for the test process to go away (its pipe reaches
 * EOF), then kills the server by its pid file and removes the dir. */
static int start_watchdog(aeth_test_redis *r)
{
	int p[2];
	pid_t w;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	w = fork();
	if (w < 0)
		return -1;
	if (w == 0) {
		char c, path[256];
		FILE *f;
		int pid = 0;

		close(p[1]);
		setsid();
		while (read(p[0], &c, 1) != 0 && errno == EINTR)
			;
		snprintf(path, sizeof(path), "%s/redis.pid", r->dir);
		if ((f = fopen(path, "r"))) {
			if (fscanf(f, "%d", &pid) == 1 && pid > 1)
				kill(pid, SIGKILL);
			fclose(f);
		}
		usleep(100000);
		rm_dir(r->dir);
		_exit(0);
	}
	close(p[0]);
	r->watchdog_fd = p[1];
	return 0;
}

/* Up when PING gets an answer: PONG, or NOAUTH from a server whose
 * default user needs a password or is off. */
static int ping(const char *sock)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);
	redisReply *rep;
	int ok = 0;

	if (c && !c->err && (rep = redisCommand(c, "PING"))) {
		ok = rep->type == REDIS_REPLY_STATUS ||
		     (rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOAUTH", 6));
		freeReplyObject(rep);
	}
	if (c)
		redisFree(c);
	return ok;
}

static int spawn(aeth_test_redis *r)
{
	char pidfile[128], logfile[128], conf[128], port[16];
	const char *argv[32];
	int n = 0;
	pid_t pid;

	snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", r->dir);
	snprintf(logfile, sizeof(logfile), "%s/redis.log", r->dir);
	snprintf(conf, sizeof(conf), "%s/extra.conf", r->dir);
	snprintf(port, sizeof(port), "%d", r->port);
	argv[n++] = "redis-server";
	if (r->has_conf)
		argv[n++] = conf; /* a config file must come first */
	argv[n++] = "--port";
	argv[n++] = port;
	if (r->port) {
		argv[n++] = "--bind";
		argv[n++] = "127.0.0.1";
	}
	{
		const char *rest[] = {"--unixsocket", r->sock, "--unixsocketperm", "700",
				      "--save", "", "--appendonly", "no", "--dir", r->dir,
				      "--pidfile", pidfile, "--logfile", logfile,
				      "--daemonize", "no", NULL};

		for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
			argv[n++] = rest[i];
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp("redis-server", (char *const *)argv);
		fprintf(stderr, "cannot run redis-server: %s (apt-get install redis-server)\n",
			strerror(errno));
		_exit(127);
	}
	r->pid = pid;
	for (int i = 0; i < 500; i++) { /* up to 5 s */
		int st;

		if (ping(r->sock))
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "redis-server exited at start; see %s\n", logfile);
			r->pid = 0;
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "redis-server did not answer on %s within 5 s\n", r->sock);
	return -1;
}

static int start(aeth_test_redis **out, const char *conf);

int aeth_test_redis_start(aeth_test_redis **out)
{
	return start(out, NULL);
}

int aeth_test_redis_start_tcp(aeth_test_redis **out, const char *conf)
{
	return start(out, conf ? conf : "");
}

int aeth_test_redis_port(const aeth_test_redis *r)
{
	return r->port;
}

static int start(aeth_test_redis **out, const char *conf)
{
	aeth_test_redis *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -1;
	snprintf(r->dir, sizeof(r->dir), "/tmp/aeth-redis-XXXXXX");
	if (!mkdtemp(r->dir)) {
		perror("mkdtemp");
		free(r);
		return -1;
	}
	snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
	snprintf(r->url, sizeof(r->url), "unix://%s", r->sock);
	r->owner = getpid();
	r->watchdog_fd = -1;
	if (conf) {
		char path[128];
		FILE *f;

		snprintf(path, sizeof(path), "%s/extra.conf", r->dir);
		bool ok = (f = fopen(path, "w")) != NULL;

		if (f) {
			ok = fputs(conf, f) >= 0;
			ok = fclose(f) == 0 && ok;
		}
		if (!ok) {
			fprintf(stderr, "cannot write %s\n", path);
			aeth_test_redis_free(r);
			return -1;
		}
		r->has_conf = true;
	}
	if (start_watchdog(r)) {
		aeth_test_redis_free(r);
		return -1;
	}
	/* another process may take the free port first: try a few */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (conf && (r->port = aeth_test_free_port()) <= 0)
			break;
		if (spawn(r) == 0) {
			*out = r;
			return 0;
		}
	}
	aeth_test_redis_free(r);
	return -1;
}

const char *aeth_test_redis_server_url(const aeth_test_redis *r)
{
	return r->url;
}

int aeth_test_redis_stop(aeth_test_redis *r)
{
	int st;

	if (!r->pid || getpid() != r->owner)
		return 0;
	kill(r->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
			r->pid = 0;
			return 0;
		}
		usleep(10000);
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, &st, 0);
	r->pid = 0;
	return 0;
}

int aeth_test_redis_restart(aeth_test_redis *r)
{
	aeth_test_redis_stop(r);
	return spawn(r);
}

void aeth_test_redis_free(aeth_test_redis *r)
{
	if (!r)
		return;
	if (getpid() == r->owner) {
		aeth_test_redis_stop(r);
		rm_dir(r->dir);
		if (r->watchdog_fd >= 0)
			close(r->watchdog_fd);
	}
	free(r);
}

static aeth_test_redis *shared;

static void stop_shared(void)
{
	aeth_test_redis_free(shared);
	shared = NULL;
}

const char *aeth_test_redis_url(void)
{
	const char *env = getenv("AETH_TEST_REDIS_URL");

	if (env && *env)
		return env;
	if (!shared) {
		if (aeth_test_redis_start(&shared))
			return NULL;
		atexit(stop_shared);
	}
	return shared->url;
}

char *aeth_test_redis_prefix(void)
{
	unsigned int rnd = 0;
	char *p = malloc(48);

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (unsigned int)time(NULL);
	if (p)
		snprintf(p, 48, "aetht%ldx%08x", (long)getpid(), rnd);
	return p;
}

/* Connect to unix:///path[?db=N] or redis://host:port[/db]. */
static redisContext *connect_plain(const char *url)
{
	struct timeval tv = {2, 0};
	redisContext *c = NULL;
	char host[256];
	int port = 6379, db = 0;
	const char *q;

	if (strncmp(url, "unix://", 7) == 0) {
		char path[256];
		size_t n = strcspn(url + 7, "?");

		snprintf(path, sizeof(path), "%.*s", (int)n, url + 7);
		if ((q = strstr(url, "db=")))
			db = atoi(q + 3);
		c = redisConnectUnixWithTimeout(path, tv);
	} else if (sscanf(url, "redis://%255[^:/]:%d/%d", host, &port, &db) >= 1) {
		c = redisConnectWithTimeout(host, port, tv);
	}
	if (c && !c->err && db) {
		redisReply *r = redisCommand(c, "SELECT %d", db);
		if (r)
			freeReplyObject(r);
	}
	if (c && c->err) {
		redisFree(c);
		c = NULL;
	}
	return c;
}

/* The first seed of redis-cluster://h:p,... or the primary that the
 * first sentinel of redis-sentinel://h:p,.../NAME names, as redis://h:p
 * (test URLs carry no password in these forms). */
static bool seed_url(const char *url, char *out, size_t n)
{
	char host[256], name[128];
	int port;

	if (sscanf(url, "redis-cluster://%255[^:]:%d", host, &port) == 2) {
		snprintf(out, n, "redis://%s:%d", host, port);
		return true;
	}
	if (sscanf(url, "redis-sentinel://%255[^:]:%d%*[^/]/%127[A-Za-z0-9_.-]",
		   host, &port, name) == 3) {
		struct timeval tv = {2, 0};
		redisContext *c = redisConnectWithTimeout(host, port, tv);
		redisReply *r = c && !c->err ?
			redisCommand(c, "SENTINEL get-master-addr-by-name %s", name) : NULL;
		bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2;

		if (ok)
			snprintf(out, n, "redis://%s:%s", r->element[0]->str,
				 r->element[1]->str);
		if (r)
			freeReplyObject(r);
		if (c)
			redisFree(c);
		return ok;
	}
	return false;
}

/* Connect to a test URL: those of connect_plain(), or
 * redis://[user]:password@host:port[/db] (no %-escapes: test passwords
 * are plain), or a seed / the primary of the seed forms. */
static redisContext *connect_url(const char *url)
{
	char plain[320], user[128] = "", pass[128] = "";
	const char *at = strchr(url, '@');
	redisContext *c;
	redisReply *r;
	bool ok;

	if (seed_url(url, plain, sizeof(plain)))
		return connect_plain(plain);
	if (strncmp(url, "redis://", 8) != 0 || !at)
		return connect_plain(url);
	if (sscanf(url + 8, "%127[^:]:%127[^@]@", user, pass) != 2 &&
	    sscanf(url + 8, ":%127[^@]@", pass) != 1)
		return NULL;
	snprintf(plain, sizeof(plain), "redis://%s", at + 1);
	if (!(c = connect_plain(plain)))
		return NULL;
	r = user[0] ? redisCommand(c, "AUTH %s %s", user, pass)
		    : redisCommand(c, "AUTH %s", pass);
	ok = r && r->type == REDIS_REPLY_STATUS;
	if (r)
		freeReplyObject(r);
	if (!ok) {
		redisFree(c);
		c = NULL;
	}
	return c;
}

static void delete_matching(redisContext *c, const char *pattern)
{
	char cursor[32] = "0";

	do {
		redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);

		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			if (r)
				freeReplyObject(r);
			return;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements; i++) {
			redisReply *d = redisCommand(c, "DEL %s", r->element[1]->element[i]->str);
			if (d)
				freeReplyObject(d);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
}

/* A cluster's primaries as redis://host:port URLs (CLUSTER SLOTS on the
 * first seed); 0 of them for a URL that is not a cluster's. */
static int cluster_primaries(const char *url, char (*out)[64], int max)
{
	redisContext *c;
	redisReply *r;
	int n = 0;

	if (strncmp(url, "redis-cluster://", 16) != 0 || !(c = connect_url(url)))
		return 0;
	r = redisCommand(c, "CLUSTER SLOTS");
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *m = r->element[i]->element[2];
		char u[64];
		bool dup = false;

		snprintf(u, sizeof(u), "redis://%s:%lld", m->element[0]->str,
			 m->element[1]->integer);
		for (int k = 0; k < n; k++)
			dup |= !strcmp(out[k], u);
		if (!dup && n < max)
			snprintf(out[n++], 64, "%s", u);
	}
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return n;
}

void aeth_test_redis_cleanup(const char *url, const char *prefix)
{
	char nodes[64][64];
	int n = url ? cluster_primaries(url, nodes, 64) : 0;

	if (!url || !prefix)
		return;
	for (int i = 0; i < (n ? n : 1); i++) {
		redisContext *c = connect_url(n ? nodes[i] : url);
		char pat[128];

		if (!c)
			continue;
		snprintf(pat, sizeof(pat), "{%s:*", prefix);
		delete_matching(c, pat);
		snprintf(pat, sizeof(pat), "%s:*", prefix);
		delete_matching(c, pat);
		redisFree(c);
	}
}

static char *reply_text(redisReply *r)
{
	char *out = NULL;

	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		out = strndup(r->str, r->len);
	else if (r->type == REDIS_REPLY_INTEGER && (out = malloc(24)))
		snprintf(out, 24, "%lld", r->integer);
	return out;
}

/* A command on `url`; on a cluster it follows MOVED, and a command that
 * names no key of ours (SCRIPT, CONFIG, FLUSHALL) goes to every primary
 * (the first primary's reply is returned). */
char *aeth_test_redis_cmd(const char *url, const char *fmt, ...)
{
	char nodes[64][64], moved[128];
	int n = 0;
	char *out = NULL;
	va_list ap;

	if (!strncmp(fmt, "SCRIPT", 6) || !strncmp(fmt, "CONFIG", 6) ||
	    !strncmp(fmt, "FLUSHALL", 8))
		n = cluster_primaries(url, nodes, 64);
	for (int i = 0; i < (n ? n : 1); i++) {
		redisContext *c = connect_url(n ? nodes[i] : url);
		redisReply *r = NULL;
		char host[64];
		int port, hops = 0;

		while (c) {
			va_start(ap, fmt);
			r = redisvCommand(c, fmt, ap);
			va_end(ap);
			if (!r || r->type != REDIS_REPLY_ERROR || hops++ > 4 ||
			    sscanf(r->str, "MOVED %*d %63[^:]:%d", host, &port) != 2)
				break;
			freeReplyObject(r);
			r = NULL;
			redisFree(c);
			snprintf(moved, sizeof(moved), "redis://%s:%d", host, port);
			c = connect_plain(moved);
		}
		if (r) {
			if (!out && r->type != REDIS_REPLY_ERROR)
				out = reply_text(r);
			freeReplyObject(r);
		}
		if (c)
			redisFree(c);
	}
	return out;
}
