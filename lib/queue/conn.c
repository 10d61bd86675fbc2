/*
 * lib/queue/conn.c - the handle's connections, and the one way commands
 * reach Redis. Each command goes to the node that serves its key: the
 * one server; the primary the sentinels name (sentinel.c); or the
 * cluster node of the key's hash slot (cluster.c). The commands of one
 * call are pipelined, one buffer per node, sent to every node before any
 * reply is read. Then the engine does what the servers ask:
 *
 * - MOVED: the slot lives elsewhere now: note it, send there.
 * - ASK (a slot being migrated): a plain one-key command follows it with
 *   ASKING; a script never does: on the importing node it would see half
 *   a queue. It waits, like TRYAGAIN, CLUSTERDOWN and our scripts' own
 *   "TRYAGAIN ... migrating" (the slot guard, slot_guard.lua), and is
 *   sent again after a pause (2 ms doubling to 100 ms) until the
 *   command timeout: a slot's migration takes milliseconds.
 * - NOSCRIPT: that node lacks the script: SCRIPT LOAD it there, again.
 * - READONLY / UNBLOCKED from a Sentinel-managed server: it was demoted:
 *   ask the sentinels again.
 * - a broken connection: reconnect (the map or the primary read again
 *   where there is one) and send what got no reply once more.
 *
 * A command is sent again only when it did not run (a redirection, a
 * pause) or when its reply was lost with the connection; the scripts and
 * the enqueue's id check make such a re-send harmless (docs/queue.md).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "cluster_reply.h"
#include "queue_internal.h"
#include "queue_lua.h"
#include "metrics/metrics.h"

static const char *const lua_src[AETH__LUA_COUNT] = {
	aeth__lua_enqueue, aeth__lua_dequeue, aeth__lua_heartbeat,
	aeth__lua_ack, aeth__lua_nack, aeth__lua_cancel, aeth__lua_watch,
	aeth__lua_restore, aeth__lua_settle, aeth__lua_rate, aeth__lua_slots,
};

static const char *const lua_name[AETH__LUA_COUNT] = {
	"enqueue", "dequeue", "heartbeat", "ack", "nack", "cancel", "watch",
	"restore", "settle", "rate", "slots",
};

/* The fixes for a refused or missing password. Messages never show it. */
#define AUTH_SET                                                             \
	"the server wants a password: set it in redis.url or AETH_REDIS_URL, "  \
	"redis://USER:PASSWORD@host:port/db for an ACL user, "                 \
	"redis://:PASSWORD@host:port/db for requirepass"
#define AUTH_CHECK                                                           \
	"check the user and password in redis.url or AETH_REDIS_URL "           \
	"(percent-encode '@', '/', ':' and '%' in them); the password is not shown"

#define MAX_REDIRECTS 16
#define PAUSE_FIRST_MS 2
#define PAUSE_MAX_MS 100

static struct timeval tv_ms(unsigned int ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

/* ---- nodes ---- */

static void node_close(aeth__q_node *n)
{
	if (n && n->ctx)
		redisFree(n->ctx);
	if (n) {
		n->ctx = NULL;
		n->cur_timeout_ms = 0;
	}
}

static void node_free(aeth__q_node *n)
{
	if (!n)
		return;
	node_close(n);
	free(n->host);
	free(n->path);
	free(n->name);
	free(n);
}

static aeth__q_node *node_new(const char *host, int port, const char *path)
{
	aeth__q_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->port = port;
	if (path) {
		n->path = strdup(path);
		n->name = strdup(path);
	} else {
		n->host = strdup(host);
		n->name = aeth__sprintf(strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	}
	if ((path && !n->path) || (!path && !n->host) || !n->name) {
		node_free(n);
		return NULL;
	}
	return n;
}

static int node_add(aeth_queue *q, aeth__q_node *n)
{
	aeth__q_node **v;

	if (!n)
		return aeth__error_oom();
	if (q->nnodes == AETH__Q_NODES_MAX) {
		node_free(n);
		return aeth__error_set(AETH_EPROTO, "redis at %s: more than %d nodes "
				       "named by the cluster", q->url.display,
				       AETH__Q_NODES_MAX);
	}
	if (!(v = realloc(q->nodes, (q->nnodes + 1) * sizeof(*v)))) {
		node_free(n);
		return aeth__error_oom();
	}
	q->nodes = v;
	q->nodes[q->nnodes++] = n;
	return 0;
}

int aeth__q_node_find(aeth_queue *q, const char *host, int port)
{
	for (size_t i = 0; i < q->nnodes; i++)
		if (q->nodes[i]->host && q->nodes[i]->port == port &&
		    !strcmp(q->nodes[i]->host, host))
			return (int)i;
	if (node_add(q, node_new(host, port, NULL)))
		return -1;
	return (int)q->nnodes - 1;
}

void aeth__q_disconnect(aeth_queue *q)
{
	for (size_t i = 0; i < q->nnodes; i++)
		node_close(q->nodes[i]);
	aeth__q_block_free(q);
}

/* "Connection refused" -> "connection refused" for the message. */
static void lower_first(char *s)
{
	if (s[0] && isupper((unsigned char)s[0]) && !isupper((unsigned char)s[1]))
		s[0] = (char)tolower((unsigned char)s[0]);
}

int aeth__q_unavailable(aeth_queue *q, const aeth__q_node *n, const char *detail)
{
	char d[256];

	aeth__metric_inc(AETH__M_REDIS_ERRORS, NULL, NULL);
	snprintf(d, sizeof(d), "%s", detail && *detail ? detail : "connection lost");
	lower_first(d);
	if (q->url.kind == AETH__REDIS_SINGLE)
		return aeth__error_set(AETH_EUNAVAILABLE,
			"redis at %s: %s: is redis-server running? (scripts/services.sh start)",
			q->url.display, d);
	return aeth__error_set(AETH_EUNAVAILABLE,
		"redis at %s: node %s: %s: is it running? (%s)", q->url.display,
		n && n->name ? n->name : "(none)", d,
		q->url.kind == AETH__REDIS_CLUSTER ?
		"a cluster node that died is replaced by its replica within "
		"cluster-node-timeout; the next call tries again" :
		"after a failover the sentinels name the new primary within "
		"down-after-milliseconds plus the election; the next call tries again");
}

/* Did the server's ACL refuse a command, key or channel? A command sent
 * alone gets NOPERM; one a script runs (Redis 7.0) an ERR in other words. */
static bool acl_denied(const char *err)
{
	return strncmp(err, "NOPERM", 6) == 0 ||
	       strstr(err, "The user executing the script can't") != NULL;
}

/* A reply that says "not now: the slot moves or the cluster heals". */
static bool transient(const char *err)
{
	return !strncmp(err, "TRYAGAIN", 8) || !strncmp(err, "CLUSTERDOWN", 11) ||
	       !strncmp(err, "MOVED ", 6) || !strncmp(err, "ASK ", 4) ||
	       strstr(err, "non local key") != NULL;
}

int aeth__q_bad_reply(aeth_queue *q, const char *what, const redisReply *r)
{
	aeth__metric_inc(AETH__M_REDIS_ERRORS, NULL, NULL);
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
		if (transient(r->str))
			return aeth__error_set(AETH_EUNAVAILABLE,
				"redis at %s: %s: %s (the cluster is moving this "
				"queue's slot or replacing a node, for longer than "
				"command_timeout_ms; if it lasts, run redis-cli "
				"--cluster check and fix)", q->url.display, what, r->str);
		return aeth__error_set(AETH_ERROR, "redis at %s: %s: %s",
				       q->url.display, what, r->str);
	}
	return aeth__error_set(AETH_EPROTO, "redis at %s: %s: unexpected reply (type %d)",
			       q->url.display, what, r ? r->type : -1);
}

/* One command on a fresh connection, during its set-up. */
static int setup_cmd(aeth_queue *q, const aeth__q_node *n, redisContext *c,
		     int argc, const char **argv, redisReply **out)
{
	*out = redisCommandArgv(c, argc, argv, NULL);
	return *out ? 0 : aeth__q_unavailable(q, n, c->errstr);
}

/* AUTH and SELECT on a fresh connection. */
static int handshake(aeth_queue *q, const aeth__q_node *n, redisContext *c)
{
	redisReply *r = NULL;
	char db[16];
	int rc = 0;

	if (q->url.password) {
		const char *av[3] = {"AUTH", q->url.user ? q->url.user : q->url.password,
				     q->url.password};

		if ((rc = setup_cmd(q, n, c, q->url.user ? 3 : 2, av, &r)))
			return rc;
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
		const char *av[2] = {"SELECT", db};

		snprintf(db, sizeof(db), "%d", q->url.db);
		if ((rc = setup_cmd(q, n, c, 2, av, &r)))
			return rc;
		if (r->type == REDIS_REPLY_ERROR)
			rc = aeth__error_set(AETH_EINVALID,
				"redis at %s: SELECT %d: %s", q->url.display, q->url.db, r->str);
		freeReplyObject(r);
	}
	return rc;
}

int aeth__q_node_open(aeth_queue *q, size_t i, unsigned int timeout_ms,
		      redisContext **out)
{
	const aeth__q_node *n = q->nodes[i];
	struct timeval tv = tv_ms(q->o.connect_timeout_ms);
	redisContext *c;
	int rc;

	*out = NULL;
	if (!n->host && !n->path)
		return aeth__q_unavailable(q, n, "no server known yet");
	if (n->path)
		c = redisConnectUnixWithTimeout(n->path, tv);
	else
		c = redisConnectWithTimeout(n->host, n->port, tv);
	if (!c)
		return aeth__error_oom();
	if (c->err) {
		rc = aeth__q_unavailable(q, n, c->errstr);
		redisFree(c);
		return rc;
	}
	if (!n->path)
		redisEnableKeepAlive(c);
	redisSetTimeout(c, tv_ms(timeout_ms));
	if ((rc = handshake(q, n, c))) {
		redisFree(c);
		return rc;
	}
	*out = c;
	return 0;
}

static int node_connect(aeth_queue *q, size_t i)
{
	aeth__q_node *n = q->nodes[i];
	int rc;

	if (n->ctx)
		return 0;
	if ((rc = aeth__q_node_open(q, i, q->o.command_timeout_ms, &n->ctx)))
		return rc;
	n->cur_timeout_ms = q->o.command_timeout_ms;
	return 0;
}

int aeth__q_connect(aeth_queue *q)
{
	int rc;

	aeth__q_disconnect(q);
	if (q->nnodes == 0) { /* first connect: the nodes of the URL */
		const aeth__redis_url *u = &q->url;

		if (u->kind == AETH__REDIS_SINGLE) {
			if ((rc = node_add(q, node_new(u->host, u->port, u->path))))
				return rc;
		} else if (u->kind == AETH__REDIS_SENTINEL) {
			aeth__q_node *n = calloc(1, sizeof(*n));

			if (n && !(n->name = strdup("(primary not found yet)"))) {
				free(n);
				n = NULL;
			}
			if ((rc = node_add(q, n)))
				return rc;
		} else {
			if (!(q->slot_node = calloc(AETH__Q_NSLOTS, sizeof(*q->slot_node))))
				return aeth__error_oom();
			for (size_t i = 0; i < u->nseeds; i++)
				if (aeth__q_node_find(q, u->seeds[i].host, u->seeds[i].port) < 0)
					return aeth_error_last_code();
		}
	}
	if (q->url.kind == AETH__REDIS_SENTINEL)
		return aeth__q_sentinel_discover(q);
	if (q->url.kind == AETH__REDIS_CLUSTER)
		return aeth__q_cluster_refresh(q);
	return node_connect(q, 0);
}

/* ---- the engine ---- */

/* One command as it goes on the wire. */
typedef struct {
	int argc;
	const char *const *argv;
	const size_t *lens;
	int script; /* AETH__LUA_* of an EVALSHA, else -1 */
	int node;   /* the node it must go to, else -1: by its key */
} wire;

/* Where a command stands during one call. */
typedef struct {
	int node;      /* this round's node */
	int ask_node;  /* ASK: the node it goes to once, with ASKING; or -1 */
	bool load;     /* SCRIPT LOAD before it (the node said NOSCRIPT) */
	bool loaded;   /* loaded once already */
	bool done;     /* its reply is final */
	bool busy;     /* to be sent again after a pause */
	bool again;    /* to be sent again at once */
	int resent;    /* re-sends after a broken connection */
	int redirects;
} wstate;

static size_t arg_len(const wire *w, int i)
{
	return w->lens ? w->lens[i] : strlen(w->argv[i]);
}

static bool name_is(const wire *w, const char *name)
{
	return arg_len(w, 0) == strlen(name) && !strncasecmp(w->argv[0], name, strlen(name));
}

/* Commands we send that name no key: they go to any node (or one). */
static bool keyless(const wire *w)
{
	static const char *const names[] = {"PING", "TIME", "INFO", "CONFIG", "SCRIPT",
		"CLIENT", "CLUSTER", "ROLE", "AUTH", "SELECT", "ASKING", "DBSIZE"};

	for (size_t i = 0; i < AETH__ARRAY_LEN(names); i++)
		if (name_is(w, names[i]))
			return true;
	return false;
}

/* The key a command is routed by; false when it has none. */
static bool key_of(const wire *w, const char **key, size_t *len)
{
	int at = 1;

	if (w->script >= 0 || name_is(w, "EVALSHA") || name_is(w, "EVAL")) {
		/* EVALSHA sha nkeys key...: nkeys is 1..9 for our scripts */
		if (w->argc < 4 || arg_len(w, 2) != 1 || w->argv[2][0] < '1' ||
		    w->argv[2][0] > '9')
			return false;
		at = 3;
	} else if (name_is(w, "XREAD")) {
		/* XREAD [COUNT n] [BLOCK ms] STREAMS key id (live output) */
		for (at = 1; at + 1 < w->argc && strcasecmp(w->argv[at], "STREAMS");
		     at++)
			;
		if (++at >= w->argc)
			return false;
	} else if (keyless(w) || w->argc < 2) {
		return false;
	}
	*key = w->argv[at];
	*len = arg_len(w, at);
	return true;
}

/* A node for a command without a key: one connected already, else the
 * first that serves slots, else the first. */
static size_t any_node(aeth_queue *q)
{
	for (size_t i = 0; i < q->nnodes; i++)
		if (q->nodes[i]->ctx)
			return i;
	if (q->slot_node)
		for (unsigned int s = 0; s < AETH__Q_NSLOTS; s += 1024)
			if (q->slot_node[s])
				return q->slot_node[s] - 1u;
	return 0;
}

static int route(aeth_queue *q, const wire *w, wstate *st)
{
	const char *key;
	size_t klen, node;
	int rc;

	if (w->node >= 0) {
		st->node = w->node;
		return 0;
	}
	if (st->ask_node >= 0) {
		st->node = st->ask_node;
		return 0;
	}
	if (q->url.kind != AETH__REDIS_CLUSTER) {
		st->node = 0;
		return 0;
	}
	if (!key_of(w, &key, &klen)) {
		st->node = (int)any_node(q);
		return 0;
	}
	if ((rc = aeth__q_cluster_route(q, aeth__q_key_slot(key, klen), &node)))
		return rc;
	st->node = (int)node;
	return 0;
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

/* A growing buffer of RESP commands. */
typedef struct {
	char *p;
	size_t len, cap;
	bool oom;
} rbuf;

static void rb_reserve(rbuf *b, size_t more)
{
	char *np;
	size_t cap;

	if (b->oom || b->len + more <= b->cap)
		return;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + more)
		cap *= 2;
	if (!(np = realloc(b->p, cap))) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = cap;
}

/*
 * Append one command in the RESP protocol. hiredis 0.14's own formatter
 * (redisFormatSdsCommandArgv) builds each command with sdscatfmt and
 * cost about a quarter of the client's CPU in a batch of small
 * commands; this sizes the buffer once per command and copies.
 */
static void rb_cmd(rbuf *b, int argc, const char *const *argv, const size_t *lens)
{
	size_t need = 1 + 22;

	for (int i = 0; i < argc; i++)
		need += 1 + 22 + (lens ? lens[i] : strlen(argv[i])) + 2;
	rb_reserve(b, need);
	if (b->oom)
		return;
	b->p[b->len++] = '*';
	b->len += put_u(b->p + b->len, (size_t)argc);
	b->p[b->len++] = '\r';
	b->p[b->len++] = '\n';
	for (int i = 0; i < argc; i++) {
		size_t l = lens ? lens[i] : strlen(argv[i]);

		b->p[b->len++] = '$';
		b->len += put_u(b->p + b->len, l);
		b->p[b->len++] = '\r';
		b->p[b->len++] = '\n';
		memcpy(b->p + b->len, argv[i], l);
		b->len += l;
		b->p[b->len++] = '\r';
		b->p[b->len++] = '\n';
	}
}

static void set_timeout(aeth_queue *q, aeth__q_node *n, unsigned int block_ms)
{
	unsigned int want = q->o.command_timeout_ms;

	if (block_ms)
		want = block_ms + q->o.command_timeout_ms;
	if (want != n->cur_timeout_ms && redisSetTimeout(n->ctx, tv_ms(want)) == REDIS_OK)
		n->cur_timeout_ms = want;
}

/* What one round does with one node: its commands, in order. */
typedef struct {
	size_t node;
	size_t *idx; /* into the call's commands */
	size_t n;
	bool broken;    /* its connection broke (or could not be made) */
	bool had_ctx;   /* it was connected before this round */
	bool no_connect; /* could not connect: err is the whole message */
	char err[512];
} batch;

/* Write node b's commands (with their ASKING / SCRIPT LOAD) to its
 * socket, without reading. */
static void send_batch(aeth_queue *q, batch *b, const wire *w, const wstate *st,
		       unsigned int block_ms)
{
	static const char *const asking[1] = {"ASKING"};
	aeth__q_node *n = q->nodes[b->node];
	rbuf buf = {0};
	int done = 0;

	b->had_ctx = n->ctx != NULL;
	if (!n->ctx && node_connect(q, b->node) != 0) {
		b->broken = b->no_connect = true;
		snprintf(b->err, sizeof(b->err), "%s", aeth_error_last());
		return;
	}
	set_timeout(q, n, block_ms);
	for (size_t k = 0; k < b->n; k++) {
		size_t i = b->idx[k];

		if (st[i].ask_node >= 0)
			rb_cmd(&buf, 1, asking, NULL);
		if (st[i].load) {
			const char *load[3] = {"SCRIPT", "LOAD", lua_src[w[i].script]};

			rb_cmd(&buf, 3, load, NULL);
		}
		rb_cmd(&buf, w[i].argc, w[i].argv, w[i].lens);
	}
	if (buf.oom || redisAppendFormattedCommand(n->ctx, buf.p, buf.len) != REDIS_OK) {
		b->broken = true;
		snprintf(b->err, sizeof(b->err), "%s", buf.oom ? "out of memory" :
			 n->ctx->errstr);
	}
	while (!b->broken && !done)
		if (redisBufferWrite(n->ctx, &done) != REDIS_OK) {
			b->broken = true;
			snprintf(b->err, sizeof(b->err), "%s", n->ctx->errstr);
		}
	free(buf.p);
}

static int read_one(redisContext *c, redisReply **r)
{
	void *p = NULL;

	if (redisGetReply(c, &p) != REDIS_OK || !p)
		return -1;
	*r = p;
	return 0;
}

/* Read node b's replies into replies[]; a reply lost with the
 * connection leaves its slot NULL. */
static void read_batch(aeth_queue *q, batch *b, const wstate *st, redisReply **replies)
{
	aeth__q_node *n = q->nodes[b->node];

	for (size_t k = 0; k < b->n && !b->broken; k++) {
		size_t i = b->idx[k];
		redisReply *pre = NULL;

		/* the replies of ASKING and SCRIPT LOAD come first; a failed
		 * load shows as the command's NOSCRIPT */
		int bad = 0;

		if (st[i].ask_node >= 0 && !(bad = read_one(n->ctx, &pre)))
			freeReplyObject(pre);
		if (!bad && st[i].load && !(bad = read_one(n->ctx, &pre)))
			freeReplyObject(pre);
		if (!bad)
			bad = read_one(n->ctx, &replies[i]);
		if (bad) {
			b->broken = true;
			snprintf(b->err, sizeof(b->err), "%s", n->ctx->errstr);
		}
	}
	if (b->broken && n->ctx) {
		aeth__debug("redis at %s: node %s: %s; reconnecting", q->url.display,
			    n->name, b->err);
		node_close(n);
	}
}

/* The node `host` (maybe "": the node that said it) and port name. */
static int redirect_node(aeth_queue *q, const aeth__q_redirect *rd, size_t from)
{
	const aeth__q_node *f = q->nodes[from];

	if (!rd->to.host[0] && !f->host)
		return -1;
	return aeth__q_node_find(q, rd->to.host[0] ? rd->to.host : f->host, rd->to.port);
}

/* What to do with command i's reply: mark it done, or to be sent again. */
static void judge(aeth_queue *q, const wire *w, wstate *st, redisReply **replies,
		  size_t i, bool *rediscover)
{
	redisReply *r = replies[i];
	aeth__q_redirect rd;
	int to;

	st[i].done = true;
	if (r->type != REDIS_REPLY_ERROR)
		goto keep;
	if (!strncmp(r->str, "NOSCRIPT", 8) && w[i].script >= 0 && !st[i].loaded) {
		st[i].load = st[i].loaded = true;
		st[i].again = true;
		goto resend;
	}
	if (q->url.kind == AETH__REDIS_SENTINEL &&
	    (!strncmp(r->str, "READONLY", 8) || !strncmp(r->str, "UNBLOCKED", 9)) &&
	    st[i].resent < 1) {
		/* the server we talk to was made a replica: a failover */
		st[i].resent++;
		*rediscover = st[i].again = true;
		goto resend;
	}
	if (q->url.kind != AETH__REDIS_CLUSTER)
		goto keep;
	if (aeth__q_redirect_parse(r->str, r->len, &rd) == 1 &&
	    st[i].redirects < MAX_REDIRECTS) {
		st[i].redirects++;
		if (rd.kind == AETH__Q_REDIR_MOVED) {
			if (aeth__q_cluster_moved(q, rd.slot, rd.to.host, rd.to.port,
						  (size_t)st[i].node) == 0) {
				st[i].ask_node = -1;
				st[i].again = true;
				goto resend;
			}
		} else if (w[i].script < 0 && !name_is(&w[i], "EVALSHA") &&
			   (to = redirect_node(q, &rd, (size_t)st[i].node)) >= 0) {
			/* a plain one-key command: its key is at the importing
			 * node (or will be made there) */
			st[i].ask_node = to;
			st[i].again = true;
			goto resend;
		} else {
			st[i].busy = true; /* a script waits for the slot to settle */
			st[i].ask_node = -1;
			goto resend;
		}
		goto keep;
	}
	if (!strncmp(r->str, "TRYAGAIN", 8) || !strncmp(r->str, "CLUSTERDOWN", 11) ||
	    !strncmp(r->str, "LOADING", 7) || strstr(r->str, "non local key")) {
		if (!strncmp(r->str, "CLUSTERDOWN", 11))
			q->map_stale = true;
		st[i].busy = true;
		st[i].ask_node = -1;
		goto resend;
	}
keep:
	return;
resend:
	st[i].done = false;
}

/* Group the commands not done by node into bs (at most n batches). */
static int make_batches(aeth_queue *q, size_t n, const wire *w, wstate *st,
			batch *bs, size_t *idx, size_t *nb)
{
	size_t at = 0;
	int rc;

	*nb = 0;
	for (size_t i = 0; i < n; i++) {
		if (st[i].done)
			continue;
		if ((rc = route(q, &w[i], &st[i])))
			return rc;
	}
	for (size_t i = 0; i < n; i++) {
		size_t b;

		if (st[i].done)
			continue;
		for (b = 0; b < *nb && bs[b].node != (size_t)st[i].node; b++)
			;
		if (b == *nb)
			bs[(*nb)++] = (batch){(size_t)st[i].node, NULL, 0, false, false,
					      false, ""};
	}
	for (size_t b = 0; b < *nb; b++) {
		bs[b].idx = idx + at;
		for (size_t i = 0; i < n; i++)
			if (!st[i].done && st[i].node == (int)bs[b].node)
				bs[b].idx[bs[b].n++] = i;
		at += bs[b].n;
	}
	return 0;
}

static void free_replies(redisReply **replies, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (replies[i]) {
			freeReplyObject(replies[i]);
			replies[i] = NULL;
		}
}

/* One round: send what is not done, read, judge. Returns 0, or the
 * error that ends the call. */
static int round_trip(aeth_queue *q, size_t n, const wire *w, wstate *st,
		      batch *bs, size_t *idx, unsigned int block_ms,
		      redisReply **replies, bool *rediscover)
{
	size_t nb;
	int rc;

	if ((rc = make_batches(q, n, w, st, bs, idx, &nb)))
		return rc;
	for (size_t b = 0; b < nb; b++)
		send_batch(q, &bs[b], w, st, block_ms);
	for (size_t b = 0; b < nb; b++)
		read_batch(q, &bs[b], st, replies);
	for (size_t b = 0; b < nb; b++) {
		for (size_t k = 0; k < bs[b].n; k++) {
			size_t i = bs[b].idx[k];

			st[i].busy = st[i].again = false;
			if (replies[i]) {
				judge(q, w, st, replies, i, rediscover);
				continue;
			}
			/* Lost with the connection: once more after a reconnect,
			 * unless the node could not even be reached first (one
			 * server) or we tried again already. */
			if (st[i].resent >= 1 ||
			    (!bs[b].had_ctx && q->url.kind == AETH__REDIS_SINGLE))
				return bs[b].no_connect ?
					aeth__error_set(AETH_EUNAVAILABLE, "%s", bs[b].err) :
					aeth__q_unavailable(q, q->nodes[bs[b].node], bs[b].err);
			st[i].resent++;
			st[i].again = true;
			st[i].ask_node = -1;
			if (q->url.kind == AETH__REDIS_CLUSTER)
				q->map_stale = true;
			else if (q->url.kind == AETH__REDIS_SENTINEL)
				*rediscover = true;
		}
	}
	return 0;
}

static int engine_guarded(aeth_queue *q, size_t n, const wire *w,
			  unsigned int block_ms, redisReply **replies)
{
	int64_t deadline = aeth__now_ms() + q->o.command_timeout_ms + block_ms;
	int64_t pause = PAUSE_FIRST_MS;
	wstate *st = calloc(n, sizeof(*st));
	batch *bs = calloc(n, sizeof(*bs));
	size_t *idx = calloc(n, sizeof(*idx));
	int rc = 0;

	if (!st || !bs || !idx) {
		rc = aeth__error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		replies[i] = NULL;
		st[i].ask_node = -1;
	}
	for (;;) {
		bool rediscover = false, busy = false, more = false;

		if (q->url.kind == AETH__REDIS_CLUSTER && q->map_stale &&
		    aeth__q_cluster_refresh(q) != 0)
			aeth__debug("%s", aeth_error_last()); /* route by the old map */
		for (size_t i = 0; i < n; i++)
			if (!st[i].done && replies[i]) {
				freeReplyObject(replies[i]);
				replies[i] = NULL;
			}
		if ((rc = round_trip(q, n, w, st, bs, idx, block_ms, replies, &rediscover)))
			break;
		for (size_t i = 0; i < n; i++) {
			busy |= st[i].busy;
			more |= !st[i].done;
		}
		if (!more)
			break;
		if (rediscover && (rc = aeth__q_sentinel_discover(q)))
			break;
		if (busy) {
			int64_t left = deadline - aeth__now_ms();

			if (left <= 0) { /* keep the replies that said "not now" */
				for (size_t i = 0; i < n; i++)
					if (st[i].busy)
						st[i].done = true;
				more = false;
				for (size_t i = 0; i < n; i++)
					more |= !st[i].done;
				if (!more)
					break;
				continue;
			}
			aeth__sleep_ms(pause < left ? pause : left);
			pause = pause * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS : pause * 2;
		}
	}
out:
	if (rc)
		free_replies(replies, n);
	free(st);
	free(bs);
	free(idx);
	return rc;
}

/*
 * hiredis writes with write(): a server that went away would kill the
 * process with SIGPIPE. Block it on this thread around our I/O and
 * swallow one raised by us (the libcurl/OpenSSL way), leaving the
 * program's own SIGPIPE handling alone.
 */
void aeth__q_sigpipe_block(aeth__q_sigpipe_guard *g)
{
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->pending_before = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void aeth__q_sigpipe_restore(aeth__q_sigpipe_guard *g)
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

int aeth__q_node_command(aeth_queue *q, size_t i, int argc, const char **argv,
			 redisReply **out)
{
	aeth__q_node *n = q->nodes[i];
	aeth__q_sigpipe_guard g;
	int rc;

	*out = NULL;
	aeth__q_sigpipe_block(&g);
	if ((rc = node_connect(q, i)) == 0) {
		set_timeout(q, n, 0);
		if (!(*out = redisCommandArgv(n->ctx, argc, argv, NULL))) {
			rc = aeth__q_unavailable(q, n, n->ctx->errstr);
			node_close(n);
		}
	}
	aeth__q_sigpipe_restore(&g);
	return rc;
}

#define UNBLOCK_MAX 32

/* engine_guarded() with the CLIENT UNBLOCKs of the blockers the last
 * wait left (block.c) sent first, in the same round trip. */
static int with_unblocks(aeth_queue *q, size_t n, const wire *w,
			 unsigned int block_ms, redisReply **replies)
{
	char ids[UNBLOCK_MAX][24];
	const char *argv[UNBLOCK_MAX][3];
	int nodes[UNBLOCK_MAX];
	size_t k = aeth__q_block_waiting(q, nodes, ids, UNBLOCK_MAX);
	wire *all = calloc(n + k, sizeof(*all));
	redisReply **rs = calloc(n + k, sizeof(*rs));
	int rc;

	if (!all || !rs) {
		free(all);
		free(rs);
		aeth__q_block_unblocked(q, NULL, 0);
		return engine_guarded(q, n, w, block_ms, replies);
	}
	for (size_t i = 0; i < k; i++) {
		argv[i][0] = "CLIENT";
		argv[i][1] = "UNBLOCK";
		argv[i][2] = ids[i];
		all[i] = (wire){3, argv[i], NULL, -1, nodes[i]};
	}
	memcpy(all + k, w, n * sizeof(*w));
	rc = engine_guarded(q, n + k, all, block_ms, rs);
	if (rc == 0) {
		memcpy(replies, rs + k, n * sizeof(*rs));
		aeth__q_block_unblocked(q, rs, k);
		for (size_t i = 0; i < k; i++)
			freeReplyObject(rs[i]);
	} else {
		aeth__q_block_unblocked(q, NULL, 0);
	}
	free(all);
	free(rs);
	return rc;
}

static int engine(aeth_queue *q, size_t n, const wire *w, unsigned int block_ms,
		  redisReply **replies)
{
	aeth__q_sigpipe_guard g;
	int rc;

	if (n == 0)
		return 0;
	aeth__q_sigpipe_block(&g);
	if (aeth__q_block_pending(q))
		rc = with_unblocks(q, n, w, block_ms, replies);
	else
		rc = engine_guarded(q, n, w, block_ms, replies);
	aeth__q_sigpipe_restore(&g);
	return rc;
}

/* Plain commands, command i to node nodes[i] (NULL or -1: by its key). */
static int plain(aeth_queue *q, const int *nodes, size_t n, const int *argcs,
		 const char *const *const *argvs, const size_t *const *lens,
		 unsigned int block_ms, redisReply **replies)
{
	wire *w = calloc(n ? n : 1, sizeof(*w));
	int rc;

	if (!w)
		return aeth__error_oom();
	for (size_t i = 0; i < n; i++)
		w[i] = (wire){argcs[i], argvs[i], lens ? lens[i] : NULL, -1,
			      nodes ? nodes[i] : -1};
	rc = engine(q, n, w, block_ms, replies);
	free(w);
	return rc;
}

int aeth__q_pipeline(aeth_queue *q, size_t n, const int *argcs,
		     const char *const *const *argvs,
		     const size_t *const *lens, redisReply **replies)
{
	return plain(q, NULL, n, argcs, argvs, lens, 0, replies);
}

int aeth__q_pipeline_to(aeth_queue *q, const int *nodes, size_t n, const int *argcs,
			const char *const *const *argvs, const size_t *const *lens,
			redisReply **replies)
{
	return plain(q, nodes, n, argcs, argvs, lens, 0, replies);
}

int aeth__q_command(aeth_queue *q, int argc, const char **argv,
		    const size_t *lens, unsigned int block_ms,
		    redisReply **reply)
{
	const char *const *argvs[1] = {argv};
	const size_t *lenss[1] = {lens};

	return plain(q, NULL, 1, &argc, argvs, lenss, block_ms, reply);
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
	aeth__q_cmd c = {script, nkeys, argc, argv, lens};
	redisReply *r = NULL;
	int rc;

	if ((rc = aeth__q_run(q, 1, &c, &r)))
		return rc;
	if (r->type == REDIS_REPLY_ERROR) {
		char what[64];

		snprintf(what, sizeof(what), "queue script %s", lua_name[script]);
		rc = aeth__q_bad_reply(q, what, r);
		freeReplyObject(r);
		return rc;
	}
	*reply = r;
	return 0;
}

/*
 * Several commands, scripts among them, in one round trip per node.
 * Each script command becomes EVALSHA sha nkeys argv...; a node that
 * lacks the script (restart, SCRIPT FLUSH, a cluster node not used yet)
 * gets SCRIPT LOAD first and the call again (engine).
 */
int aeth__q_run(aeth_queue *q, size_t n, const aeth__q_cmd *cmds,
		redisReply **replies)
{
	size_t total = 0, at = 0;
	const char **av;
	size_t *al;
	wire *w;
	char (*nk)[12];
	int rc;

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
	w = calloc(n, sizeof(*w));
	nk = calloc(n, sizeof(*nk));
	if (!av || !al || !w || !nk) {
		rc = aeth__error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const aeth__q_cmd *c = &cmds[i];

		w[i] = (wire){c->argc, av + at, al + at, c->script, -1};
		if (c->script >= 0) {
			snprintf(nk[i], sizeof(nk[i]), "%d", c->nkeys);
			av[at] = "EVALSHA"; al[at++] = 7;
			av[at] = q->sha[c->script]; al[at++] = 40;
			av[at] = nk[i]; al[at++] = strlen(nk[i]);
			w[i].argc += 3;
		}
		for (int j = 0; j < c->argc; j++) {
			av[at] = c->argv[j];
			al[at++] = c->lens ? c->lens[j] : strlen(c->argv[j]);
		}
	}
	rc = engine(q, n, w, 0, replies);
out:
	free(av);
	free(al);
	free(w);
	free(nk);
	return rc;
}
