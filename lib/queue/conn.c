/*
 * lib/queue/conn.c - the handle's one Redis connection: connect with
 * AUTH/SELECT, run commands with one transparent reconnect when the
 * connection broke (Redis restarted), EVALSHA with a NOSCRIPT fallback.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "queue_internal.h"
#include "queue_lua.h"

static const char *const lua_src[AETH__LUA_COUNT] = {
	aeth__lua_enqueue, aeth__lua_dequeue, aeth__lua_heartbeat,
	aeth__lua_ack, aeth__lua_nack, aeth__lua_cancel, aeth__lua_watch,
	aeth__lua_restore, aeth__lua_settle,
};

static const char *const lua_name[AETH__LUA_COUNT] = {
	"enqueue", "dequeue", "heartbeat", "ack", "nack", "cancel", "watch",
	"restore", "settle",
};

/* The fixes for a refused or missing password. Messages never show it. */
#define AUTH_SET                                                             \
	"the server wants a password: set it in redis.url or AETH_REDIS_URL, "  \
	"redis://USER:PASSWORD@host:port/db for an ACL user, "                 \
	"redis://:PASSWORD@host:port/db for requirepass"
#define AUTH_CHECK                                                           \
	"check the user and password in redis.url or AETH_REDIS_URL "           \
	"(percent-encode '@', '/', ':' and '%' in them); the password is not shown"

static struct timeval tv_ms(unsigned int ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

void aeth__q_disconnect(aeth_queue *q)
{
	if (q->ctx)
		redisFree(q->ctx);
	q->ctx = NULL;
	q->cur_timeout_ms = 0;
}

/* "Connection refused" -> "connection refused" for the message. */
static void lower_first(char *s)
{
	if (s[0] && isupper((unsigned char)s[0]) && !isupper((unsigned char)s[1]))
		s[0] = (char)tolower((unsigned char)s[0]);
}

static int unavailable(aeth_queue *q, const char *detail)
{
	char d[256];

	snprintf(d, sizeof(d), "%s", detail && *detail ? detail : "connection lost");
	lower_first(d);
	return aeth__error_set(AETH_EUNAVAILABLE,
		"redis at %s: %s: is redis-server running? (scripts/services.sh start)",
		q->url.display, d);
}

/* Did the server's ACL refuse a command, key or channel? A command sent
 * alone gets NOPERM; one a script runs (Redis 7.0) an ERR in other words. */
static bool acl_denied(const char *err)
{
	return strncmp(err, "NOPERM", 6) == 0 ||
	       strstr(err, "The user executing the script can't") != NULL;
}

int aeth__q_bad_reply(aeth_queue *q, const char *what, const redisReply *r)
{
	if (r && r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0)
			return aeth__error_set(AETH_EINVALID,
				"redis at %s: %s: %s (%s)", q->url.display, what,
				r->str, q->url.password ? AUTH_CHECK : AUTH_SET);
		if (acl_denied(r->str))
			return aeth__error_set(AETH_EINVALID,
				"redis at %s: %s: %s (the ACL user %s lacks a command "
				"or key the queue uses: docs/redis-acl.conf has the ACL "
				"a worker and a submitter need)", q->url.display, what,
				r->str, q->url.user ? q->url.user : "default");
		if (strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "BUSY", 4) == 0)
			return aeth__error_set(AETH_EBUSY, "redis at %s: %s: %s",
					       q->url.display, what, r->str);
		return aeth__error_set(AETH_ERROR, "redis at %s: %s: %s",
				       q->url.display, what, r->str);
	}
	return aeth__error_set(AETH_EPROTO, "redis at %s: %s: unexpected reply (type %d)",
			       q->url.display, what, r ? r->type : -1);
}

/* AUTH and SELECT on a fresh connection. */
static int handshake(aeth_queue *q)
{
	redisReply *r = NULL;
	int rc = 0;

	if (q->url.password) {
		if (q->url.user)
			r = redisCommand(q->ctx, "AUTH %s %s", q->url.user, q->url.password);
		else
			r = redisCommand(q->ctx, "AUTH %s", q->url.password);
		if (!r)
			return unavailable(q, q->ctx->errstr);
		if (r->type == REDIS_REPLY_ERROR)
			rc = aeth__error_set(AETH_EINVALID,
				"redis at %s refused the %s: %s (%s)", q->url.display,
				q->url.user ? "user and password" : "password",
				r->str, AUTH_CHECK);
		freeReplyObject(r);
		if (rc)
			return rc;
	}
	if (q->url.db) {
		r = redisCommand(q->ctx, "SELECT %d", q->url.db);
		if (!r)
			return unavailable(q, q->ctx->errstr);
		if (r->type == REDIS_REPLY_ERROR)
			rc = aeth__error_set(AETH_EINVALID,
				"redis at %s: SELECT %d: %s", q->url.display, q->url.db, r->str);
		freeReplyObject(r);
	}
	return rc;
}

int aeth__q_connect(aeth_queue *q)
{
	struct timeval tv = tv_ms(q->o.connect_timeout_ms);
	int rc;

	aeth__q_disconnect(q);
	if (q->url.path)
		q->ctx = redisConnectUnixWithTimeout(q->url.path, tv);
	else
		q->ctx = redisConnectWithTimeout(q->url.host, q->url.port, tv);
	if (!q->ctx)
		return aeth__error_oom();
	if (q->ctx->err) {
		rc = unavailable(q, q->ctx->errstr);
		aeth__q_disconnect(q);
		return rc;
	}
	if (!q->url.path)
		redisEnableKeepAlive(q->ctx);
	tv = tv_ms(q->o.command_timeout_ms);
	redisSetTimeout(q->ctx, tv);
	q->cur_timeout_ms = q->o.command_timeout_ms;
	rc = handshake(q);
	if (rc)
		aeth__q_disconnect(q);
	return rc;
}

static void set_timeout(aeth_queue *q, unsigned int block_ms)
{
	unsigned int want = q->o.command_timeout_ms;

	if (block_ms)
		want = block_ms + q->o.command_timeout_ms;
	if (want != q->cur_timeout_ms && redisSetTimeout(q->ctx, tv_ms(want)) == REDIS_OK)
		q->cur_timeout_ms = want;
}

/* Decimal digits of v into p (no NUL); returns the count. */
static size_t put_u(char *p, size_t v)
{
	char t[24];
	size_t n = 0, k = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		p[k++] = t[--n];
	return k;
}

/*
 * Append the n commands in the RESP protocol, in one buffer. hiredis
 * 0.14's own formatter (redisFormatSdsCommandArgv) builds each command
 * with sdscatfmt and cost about a quarter of the client's CPU in a
 * batch of small commands; this sizes one buffer and copies.
 */
static int append_all(redisContext *c, size_t n, const int *argcs,
		      const char *const *const *argvs, const size_t *const *lens)
{
	size_t len = 0, at = 0;
	char *buf;
	int rc;

	for (size_t k = 0; k < n; k++) {
		len += 1 + 22;
		for (int i = 0; i < argcs[k]; i++)
			len += 1 + 22 + (lens[k] ? lens[k][i] : strlen(argvs[k][i])) + 2;
	}
	if (!(buf = malloc(len)))
		return REDIS_ERR;
	for (size_t k = 0; k < n; k++) {
		buf[at++] = '*';
		at += put_u(buf + at, (size_t)argcs[k]);
		buf[at++] = '\r';
		buf[at++] = '\n';
		for (int i = 0; i < argcs[k]; i++) {
			size_t l = lens[k] ? lens[k][i] : strlen(argvs[k][i]);

			buf[at++] = '$';
			at += put_u(buf + at, l);
			buf[at++] = '\r';
			buf[at++] = '\n';
			memcpy(buf + at, argvs[k][i], l);
			at += l;
			buf[at++] = '\r';
			buf[at++] = '\n';
		}
	}
	rc = redisAppendFormattedCommand(c, buf, at);
	free(buf);
	return rc;
}

/* One attempt; -1 when the connection broke (reconnect may help). */
static int pipeline_once(aeth_queue *q, size_t n, const int *argcs,
			 const char *const *const *argvs,
			 const size_t *const *lens, unsigned int block_ms,
			 redisReply **replies)
{
	size_t i;

	if (!q->ctx) {
		int rc = aeth__q_connect(q);
		if (rc)
			return rc;
	}
	set_timeout(q, block_ms);
	if (append_all(q->ctx, n, argcs, argvs, lens) != REDIS_OK)
		goto broken;
	for (i = 0; i < n; i++) {
		void *r = NULL;

		if (redisGetReply(q->ctx, &r) != REDIS_OK || !r) {
			while (i > 0)
				freeReplyObject(replies[--i]);
			goto broken;
		}
		replies[i] = r;
	}
	return 0;
broken:
	return -1;
}

/*
 * hiredis writes with write(): a server that went away would kill the
 * process with SIGPIPE. Block it on this thread around our I/O and
 * swallow one raised by us (the libcurl/OpenSSL way), leaving the
 * program's own SIGPIPE handling alone.
 */
typedef struct {
	sigset_t old;
	bool pending_before;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->pending_before = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(sigpipe_guard *g)
{
	sigset_t set, pend;
	struct timespec zero = {0, 0};

	sigpending(&pend);
	if (!g->pending_before && sigismember(&pend, SIGPIPE)) {
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int run_guarded(aeth_queue *q, size_t n, const int *argcs,
	       const char *const *const *argvs, const size_t *const *lens,
	       unsigned int block_ms, redisReply **replies)
{
	char err[128];
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		bool had_ctx = q->ctx != NULL;

		rc = pipeline_once(q, n, argcs, argvs, lens, block_ms, replies);
		if (rc != -1)
			return rc;
		snprintf(err, sizeof(err), "%s", q->ctx->errstr);
		aeth__debug("redis at %s: %s; reconnecting", q->url.display, err);
		aeth__q_disconnect(q);
		if (!had_ctx)
			break;
	}
	return unavailable(q, err);
}

static int run(aeth_queue *q, size_t n, const int *argcs,
	       const char *const *const *argvs, const size_t *const *lens,
	       unsigned int block_ms, redisReply **replies)
{
	sigpipe_guard g;
	int rc;

	sigpipe_block(&g);
	rc = run_guarded(q, n, argcs, argvs, lens, block_ms, replies);
	sigpipe_restore(&g);
	return rc;
}

int aeth__q_pipeline(aeth_queue *q, size_t n, const int *argcs,
		     const char *const *const *argvs,
		     const size_t *const *lens, redisReply **replies)
{
	return run(q, n, argcs, argvs, lens, 0, replies);
}

int aeth__q_command(aeth_queue *q, int argc, const char **argv,
		    const size_t *lens, unsigned int block_ms,
		    redisReply **reply)
{
	const char *const *argvs[1] = {argv};
	const size_t *lenss[1] = {lens};

	return run(q, 1, &argc, argvs, lenss, block_ms, reply);
}

int aeth__q_script_load(aeth_queue *q, int script)
{
	const char *argv[3] = {"SCRIPT", "LOAD", lua_src[script]};
	size_t lens[3] = {6, 4, strlen(lua_src[script])};
	redisReply *r;
	int rc;

	rc = aeth__q_command(q, 3, argv, lens, 0, &r);
	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		rc = aeth__q_bad_reply(q, "SCRIPT LOAD", r);
	} else {
		memcpy(q->sha[script], r->str, 40);
		q->sha[script][40] = '\0';
	}
	freeReplyObject(r);
	return rc;
}

int aeth__q_script(aeth_queue *q, int script, int nkeys, int argc,
		   const char **argv, const size_t *lens, redisReply **reply)
{
	const char *av[64];
	size_t al[64];
	char nk[16];
	redisReply *r = NULL;
	int rc;

	if (argc + 3 > (int)AETH__ARRAY_LEN(av))
		return aeth__error_set(AETH_EINVALID, "too many script arguments");
	snprintf(nk, sizeof(nk), "%d", nkeys);
	for (int i = 0; i < argc; i++) {
		av[i + 3] = argv[i];
		al[i + 3] = lens ? lens[i] : strlen(argv[i]);
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!q->sha[script][0] && (rc = aeth__q_script_load(q, script)))
			return rc;
		av[0] = "EVALSHA"; al[0] = 7;
		av[1] = q->sha[script]; al[1] = 40;
		av[2] = nk; al[2] = strlen(nk);
		rc = aeth__q_command(q, argc + 3, av, al, 0, &r);
		if (rc)
			return rc;
		if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8) != 0)
			break;
		/* The server lost its script cache (restart, SCRIPT FLUSH). */
		freeReplyObject(r);
		r = NULL;
		q->sha[script][0] = '\0';
	}
	if (!r || r->type == REDIS_REPLY_ERROR) {
		char what[64];

		snprintf(what, sizeof(what), "queue script %s", lua_name[script]);
		rc = aeth__q_bad_reply(q, what, r);
		if (r)
			freeReplyObject(r);
		return rc;
	}
	*reply = r;
	return 0;
}

/*
 * Several commands, scripts among them, in one round trip. Each script
 * command becomes EVALSHA sha nkeys argv...; a NOSCRIPT reply (the server
 * lost its script cache) is redone alone through aeth__q_script(), which
 * reloads the script.
 */
int aeth__q_run(aeth_queue *q, size_t n, const aeth__q_cmd *cmds,
		redisReply **replies)
{
	size_t total = 0, at = 0;
	const char **av;
	size_t *al;
	int *argcs, rc;
	const char ***argvs;
	const size_t **lens;
	char (*nk)[12];

	for (size_t i = 0; i < n; i++) {
		total += (size_t)cmds[i].argc + 3;
		if (cmds[i].script >= 0 && !q->sha[cmds[i].script][0] &&
		    (rc = aeth__q_script_load(q, cmds[i].script)))
			return rc;
	}
	if (n == 0)
		return 0;
	av = calloc(total, sizeof(*av));
	al = calloc(total, sizeof(*al));
	argcs = calloc(n, sizeof(*argcs));
	argvs = calloc(n, sizeof(*argvs));
	lens = calloc(n, sizeof(*lens));
	nk = calloc(n, sizeof(*nk));
	if (!av || !al || !argcs || !argvs || !lens || !nk) {
		rc = aeth__error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const aeth__q_cmd *c = &cmds[i];

		argvs[i] = av + at;
		lens[i] = al + at;
		argcs[i] = c->argc;
		if (c->script >= 0) {
			snprintf(nk[i], sizeof(nk[i]), "%d", c->nkeys);
			av[at] = "EVALSHA"; al[at++] = 7;
			av[at] = q->sha[c->script]; al[at++] = 40;
			av[at] = nk[i]; al[at++] = strlen(nk[i]);
			argcs[i] += 3;
		}
		for (int j = 0; j < c->argc; j++) {
			av[at] = c->argv[j];
			al[at++] = c->lens ? c->lens[j] : strlen(c->argv[j]);
		}
	}
	rc = run(q, n, argcs, (const char *const *const *)argvs,
		 (const size_t *const *)lens, 0, replies);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		redisReply *r = replies[i];

		if (cmds[i].script < 0 || r->type != REDIS_REPLY_ERROR ||
		    strncmp(r->str, "NOSCRIPT", 8) != 0)
			continue;
		freeReplyObject(r);
		replies[i] = NULL;
		q->sha[cmds[i].script][0] = '\0';
		rc = aeth__q_script(q, cmds[i].script, cmds[i].nkeys, cmds[i].argc,
				    cmds[i].argv, cmds[i].lens, &replies[i]);
		if (rc) {
			for (size_t j = 0; j < n; j++)
				if (j != i && replies[j])
					freeReplyObject(replies[j]);
		}
	}
out:
	free(av);
	free(al);
	free(argcs);
	free(argvs);
	free(lens);
	free(nk);
	return rc;
}
