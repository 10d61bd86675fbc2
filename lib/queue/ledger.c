/*
 * lib/queue/ledger.c - the queue's side of the ledger reconciler (see
 * queue_ledger.h): look tasks up by id in many queues at once, put back
 * a task Redis lost, read how the server persists its data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"
#include "queue_ledger.h"

#define PEEK_MAX 1000

/* The fields a peek reads, in HMGET order. */
static const char *const peek_fields[] = {"state", "result", "error", "retried",
					  "deadline_ms"};
#define NPEEK (sizeof(peek_fields) / sizeof(peek_fields[0]))

void aeth__q_held_clear(aeth__q_held *h)
{
	if (!h)
		return;
	free(h->result);
	free(h->error);
	free(h->other_queue);
	memset(h, 0, sizeof(*h));
	h->state = h->other_state = -1;
}

static char *str_of(const redisReply *e)
{
	return e && e->type == REDIS_REPLY_STRING ? strndup(e->str, e->len) : NULL;
}

static int64_t num_of(const redisReply *e)
{
	return e && e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
}

/* The state field of an HMGET reply (-1: no such hash, or no state). */
static int state_of(const redisReply *r)
{
	const redisReply *e;
	char s[16];

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return -1;
	e = r->element[0];
	if (e->type != REDIS_REPLY_STRING || e->len >= sizeof(s))
		return -1;
	memcpy(s, e->str, e->len);
	s[e->len] = '\0';
	return aeth__q_state_parse(s);
}

/* What the commands of one round trip are built from. */
typedef struct {
	const char *const *queues;
	const char *const *ids;
	size_t nfields; /* HMGET: how many peek fields */
} round_ctx;

#define ROUND_ARGV (2 + NPEEK)

/* HMGET of the peek fields of task i in its queue. */
static int make_hmget(aeth_queue *q, const round_ctx *c, size_t i, char *key,
		      const char **argv)
{
	char ts[40];
	int rc;

	snprintf(ts, sizeof(ts), "t:%s", c->ids[i]);
	if ((rc = aeth__q_key(q, key, AETH__Q_KEY_MAX, c->queues[i], ts)))
		return rc;
	argv[0] = "HMGET";
	argv[1] = key;
	for (size_t f = 0; f < c->nfields; f++)
		argv[2 + f] = peek_fields[f];
	return (int)(2 + c->nfields);
}

/* GET of task i's id index entry, "<ns>:id:<id>". */
static int make_index_get(aeth_queue *q, const round_ctx *c, size_t i, char *key,
			  const char **argv)
{
	snprintf(key, AETH__Q_KEY_MAX, "%s:id:%s", q->ns, c->ids[i]);
	argv[0] = "GET";
	argv[1] = key;
	return 2;
}

/* One command per wanted i (made by `make`), all in one round trip;
 * replies[i] is its reply, NULL for the i not wanted. */
static int round_trip(aeth_queue *q, const round_ctx *c, const bool *want, size_t n,
		      int (*make)(aeth_queue *, const round_ctx *, size_t, char *,
				  const char **), redisReply **replies)
{
	char (*keys)[AETH__Q_KEY_MAX] = calloc(n, sizeof(*keys));
	const char **argv = calloc(n * ROUND_ARGV, sizeof(*argv));
	aeth__q_cmd *cmds = calloc(n, sizeof(*cmds));
	redisReply **rs = calloc(n, sizeof(*rs));
	size_t nc = 0;
	int rc = 0;

	if (!keys || !argv || !cmds || !rs) {
		rc = aeth__error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int argc;

		replies[i] = NULL;
		if (!want[i])
			continue;
		if ((argc = make(q, c, i, keys[i], argv + i * ROUND_ARGV)) < 0) {
			rc = argc;
			goto out;
		}
		cmds[nc++] = (aeth__q_cmd){-1, 0, argc, argv + i * ROUND_ARGV, NULL};
	}
	if ((rc = aeth__q_run(q, nc, cmds, rs)))
		goto out;
	for (size_t i = 0, k = 0; i < n; i++)
		if (want[i])
			replies[i] = rs[k++];
out:
	free(keys);
	free(argv);
	free(cmds);
	free(rs);
	return rc;
}

/* The queue the id index names for each wanted id (NULL: none). */
static int index_round(aeth_queue *q, const char *const *ids, const bool *want,
		       size_t n, char **named)
{
	round_ctx c = {NULL, ids, 0};
	redisReply **rs = calloc(n, sizeof(*rs));
	int rc;

	for (size_t i = 0; i < n; i++)
		named[i] = NULL;
	if (!rs)
		return aeth__error_oom();
	if ((rc = round_trip(q, &c, want, n, make_index_get, rs)) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (!rs[i])
				continue;
			if (rs[i]->type == REDIS_REPLY_STRING &&
			    aeth__q_check_name(rs[i]->str) == 0)
				named[i] = strndup(rs[i]->str, rs[i]->len);
			freeReplyObject(rs[i]);
		}
		aeth_error_clear(); /* a bad index entry is no error of this call */
	}
	free(rs);
	return rc;
}

static void fill(aeth__q_held *h, const redisReply *r)
{
	h->state = state_of(r);
	if (h->state < 0 || r->elements < NPEEK)
		return;
	h->result = str_of(r->element[1]);
	h->error = str_of(r->element[2]);
	h->retried = (unsigned int)num_of(r->element[3]);
	if (h->state == AETH_QUEUE_ACTIVE)
		h->lease_deadline_ms = num_of(r->element[4]);
}

/* Tasks not in their queue: ask the id index which queue it names, and
 * look there when that is another queue. */
static int look_elsewhere(aeth_queue *q, const char *const *queues,
			  const char *const *ids, size_t n, aeth__q_held *out)
{
	bool *want = calloc(n, sizeof(*want));
	char **named = calloc(n, sizeof(*named));
	redisReply **rs = calloc(n, sizeof(*rs));
	size_t nwant = 0;
	int rc = 0;

	if (!want || !named || !rs) {
		rc = aeth__error_oom();
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		nwant += (want[i] = out[i].state < 0);
	if (nwant == 0 || (rc = index_round(q, ids, want, n, named)))
		goto out;
	for (size_t i = 0; i < n; i++)
		want[i] = named[i] && strcmp(named[i], queues[i]) != 0;
	if ((rc = round_trip(q, &(round_ctx){(const char *const *)named, ids, 1},
			      want, n, make_hmget, rs)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!rs[i])
			continue;
		if ((out[i].other_state = state_of(rs[i])) >= 0) {
			out[i].other_queue = named[i];
			named[i] = NULL;
		}
		freeReplyObject(rs[i]);
	}
out:
	for (size_t i = 0; named && i < n; i++)
		free(named[i]);
	free(named);
	free(want);
	free(rs);
	return rc;
}

int aeth__q_ledger_peek(aeth_queue *q, const char *const *queues,
			const char *const *ids, size_t n, aeth__q_held *out)
{
	bool *want;
	redisReply **rs;
	int rc;

	if (n > PEEK_MAX)
		return aeth__error_set(AETH_EINVALID, "peek of %zu tasks: at most %d",
				       n, PEEK_MAX);
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].state = out[i].other_state = -1;
		if ((rc = aeth__q_check_name(queues[i])))
			return rc;
		if (!aeth__uuid_valid(ids[i]))
			return aeth__error_set(AETH_EINVALID, "bad task id '%.40s'", ids[i]);
	}
	if (n == 0)
		return 0;
	want = malloc(n * sizeof(*want));
	rs = calloc(n, sizeof(*rs));
	if (!want || !rs) {
		free(want);
		free(rs);
		return aeth__error_oom();
	}
	for (size_t i = 0; i < n; i++)
		want[i] = true;
	rc = round_trip(q, &(round_ctx){queues, ids, NPEEK}, want, n, make_hmget, rs);
	for (size_t i = 0; rc == 0 && i < n; i++)
		fill(&out[i], rs[i]);
	for (size_t i = 0; i < n; i++)
		if (rs[i])
			freeReplyObject(rs[i]);
	free(want);
	free(rs);
	if (rc == 0)
		rc = look_elsewhere(q, queues, ids, n, out);
	if (rc != 0)
		for (size_t i = 0; i < n; i++)
			aeth__q_held_clear(&out[i]);
	return rc;
}

int aeth__q_ledger_restore(aeth_queue *q, const aeth__q_restore *t, int *restored)
{
	char ktask[AETH__Q_KEY_MAX], kpend[AETH__Q_KEY_MAX], knotify[AETH__Q_KEY_MAX],
	     kidx[64 + 4 + 37], kqueues[AETH__Q_KEY_MAX], ts[40], smax[24], stmo[24],
	     sret[24];
	redisReply *rs[3];
	int rc;

	*restored = 0;
	if (!aeth__uuid_valid(t->id))
		return aeth__error_set(AETH_EINVALID, "bad task id '%.40s'", t->id);
	snprintf(ts, sizeof(ts), "t:%s", t->id);
	if ((rc = aeth__q_check_name(t->queue)) ||
	    (rc = aeth__q_key(q, ktask, sizeof(ktask), t->queue, ts)) ||
	    (rc = aeth__q_key(q, kpend, sizeof(kpend), t->queue, "pending")) ||
	    (rc = aeth__q_key(q, knotify, sizeof(knotify), t->queue, "notify")))
		return rc;
	snprintf(kidx, sizeof(kidx), "%s:id:%s", q->ns, t->id);
	snprintf(kqueues, sizeof(kqueues), "%s:queues", q->ns);
	aeth__q_u64(smax, t->max_retries);
	aeth__q_u64(stmo, t->timeout_ms);
	aeth__q_u64(sret, t->retried);
	const char *script[] = {ktask, kpend, knotify, t->id, t->type,
				t->payload ? t->payload : "{}", smax, stmo, sret,
				t->error ? t->error : "put back by the ledger"};
	/* as enqueue: the index is kept 7 days and never repointed (NX) */
	const char *index[] = {"SET", kidx, t->queue, "EX", "604800", "NX"};
	const char *names[] = {"SADD", kqueues, t->queue};
	const aeth__q_cmd cmds[] = {
		{AETH__LUA_RESTORE, 3, 10, script, NULL},
		{-1, 0, 6, index, NULL},
		{-1, 0, 3, names, NULL},
	};
	if ((rc = aeth__q_run(q, 3, cmds, rs)))
		return rc;
	if (rs[0]->type == REDIS_REPLY_INTEGER)
		*restored = rs[0]->integer == 1;
	else
		rc = aeth__q_bad_reply(q, "queue script restore", rs[0]);
	for (int i = 1; rc == 0 && i < 3; i++)
		if (rs[i]->type == REDIS_REPLY_ERROR)
			rc = aeth__q_bad_reply(q, i == 1 ? "task index" : "queue names", rs[i]);
	for (int i = 0; i < 3; i++)
		freeReplyObject(rs[i]);
	return rc;
}

/* The value of `field` in an INFO section ("field:value\r\n"), into v. */
static bool info_field(const char *info, const char *field, char *v, size_t n)
{
	size_t fl = strlen(field);

	for (const char *p = info; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, field, fl) && p[fl] == ':') {
			size_t len = strcspn(p + fl + 1, "\r\n");

			snprintf(v, n, "%.*s", (int)(len < n ? len : n - 1), p + fl + 1);
			return true;
		}
	return false;
}

/* The value of a CONFIG GET reply ({name, value}); false when refused. */
static bool config_value(const redisReply *r, char *v, size_t n)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[1]->type != REDIS_REPLY_STRING)
		return false;
	snprintf(v, n, "%.*s", (int)r->element[1]->len, r->element[1]->str);
	return true;
}

int aeth__q_persistence_get(aeth_queue *q, aeth__q_persistence *out)
{
	const char *info[] = {"INFO", "persistence"};
	const char *save[] = {"CONFIG", "GET", "save"};
	const char *fsync[] = {"CONFIG", "GET", "appendfsync"};
	const aeth__q_cmd cmds[] = {
		{-1, 0, 2, info, NULL}, {-1, 0, 3, save, NULL}, {-1, 0, 3, fsync, NULL},
	};
	/* an ACL user is never sent CONFIG (see queue_ledger.h) */
	size_t n = q->url.user ? 1 : 3;
	redisReply *rs[3];
	char v[16];
	int rc;

	memset(out, 0, sizeof(*out));
	out->aof = -1;
	if ((rc = aeth__q_run(q, n, cmds, rs)))
		return rc;
	if (rs[0]->type == REDIS_REPLY_STRING) {
		if (info_field(rs[0]->str, "aof_enabled", v, sizeof(v)))
			out->aof = !strcmp(v, "1");
	}
	if (n == 3) {
		out->save_known = config_value(rs[1], out->save, sizeof(out->save));
		if (!config_value(rs[2], out->appendfsync, sizeof(out->appendfsync)))
			out->appendfsync[0] = '\0';
	}
	for (size_t i = 0; i < n; i++)
		freeReplyObject(rs[i]);
	return 0;
}

int aeth__q_ledger_settle(aeth_queue *q, const char *queue, const char *id,
			  const char *result_json, int *settled)
{
	char ktask[AETH__Q_KEY_MAX], kdead[AETH__Q_KEY_MAX], kcomp[AETH__Q_KEY_MAX],
	     ts[40], sret[24];
	redisReply *r;
	int rc;

	*settled = 0;
	if (!aeth__uuid_valid(id))
		return aeth__error_set(AETH_EINVALID, "bad task id '%.40s'", id);
	snprintf(ts, sizeof(ts), "t:%s", id);
	if ((rc = aeth__q_check_name(queue)) ||
	    (rc = aeth__q_key(q, ktask, sizeof(ktask), queue, ts)) ||
	    (rc = aeth__q_key(q, kdead, sizeof(kdead), queue, "dead")) ||
	    (rc = aeth__q_key(q, kcomp, sizeof(kcomp), queue, "completed")))
		return rc;
	aeth__q_u64(sret, (uint64_t)q->o.retention_s * 1000);
	const char *argv[] = {ktask, kdead, kcomp, id,
			      result_json ? result_json : "null", sret};
	if ((rc = aeth__q_script(q, AETH__LUA_SETTLE, 3, 6, argv, NULL, &r)))
		return rc;
	if (r->type == REDIS_REPLY_INTEGER)
		*settled = r->integer == 1;
	else
		rc = aeth__q_bad_reply(q, "settle", r);
	freeReplyObject(r);
	return rc;
}

/* Append a copy of s to the NULL-terminated *v of *n entries. */
static int push(char ***v, size_t *n, const char *s, size_t len)
{
	char **g = realloc(*v, (*n + 2) * sizeof(**v));

	if (!g)
		return aeth__error_oom();
	*v = g;
	if (!(g[*n] = strndup(s, len)))
		return aeth__error_oom();
	g[++*n] = NULL;
	return 0;
}

int aeth__q_ledger_dead_since(aeth_queue *q, int64_t since_ms, size_t max,
			      char ***ids_out, char ***queues_out, int64_t *now_ms)
{
	char kqueues[AETH__Q_KEY_MAX], from[24], lim[24];
	const char *time_argv[] = {"TIME"};
	const char *names_argv[] = {"SMEMBERS", kqueues};
	const aeth__q_cmd first[] = {{-1, 0, 1, time_argv, NULL},
				     {-1, 0, 2, names_argv, NULL}};
	redisReply *rs[2], **zr = NULL;
	char (*keys)[AETH__Q_KEY_MAX] = NULL;
	const char **argv = NULL;
	aeth__q_cmd *cmds = NULL;
	char **ids = NULL, **queues = NULL;
	size_t nq = 0, n = 0;
	int rc;

	*ids_out = *queues_out = NULL;
	snprintf(kqueues, sizeof(kqueues), "%s:queues", q->ns);
	if ((rc = aeth__q_run(q, 2, first, rs)))
		return rc;
	if (rs[0]->type != REDIS_REPLY_ARRAY || rs[0]->elements != 2 ||
	    rs[1]->type != REDIS_REPLY_ARRAY) {
		rc = aeth__q_bad_reply(q, "TIME / SMEMBERS", rs[0]->type != REDIS_REPLY_ARRAY ?
				       rs[0] : rs[1]);
		goto out;
	}
	*now_ms = strtoll(rs[0]->element[0]->str, NULL, 10) * 1000 +
		  strtoll(rs[0]->element[1]->str, NULL, 10) / 1000;
	nq = rs[1]->elements;
	keys = calloc(nq + 1, sizeof(*keys));
	argv = calloc(8 * (nq + 1), sizeof(*argv));
	cmds = calloc(nq + 1, sizeof(*cmds));
	zr = calloc(nq + 1, sizeof(*zr));
	if (!keys || !argv || !cmds || !zr) {
		rc = aeth__error_oom();
		goto out;
	}
	snprintf(from, sizeof(from), "%lld", (long long)(since_ms > 0 ? since_ms : 0));
	snprintf(lim, sizeof(lim), "%zu", max);
	for (size_t i = 0; i < nq; i++) {
		const redisReply *e = rs[1]->element[i];
		const char **a = argv + 8 * i;

		/* a name that is not a queue's has no dead set to read */
		if (e->type != REDIS_REPLY_STRING || aeth__q_check_name(e->str) ||
		    aeth__q_key(q, keys[i], sizeof(keys[i]), e->str, "dead")) {
			a[0] = "PING"; /* keeps replies and queue names aligned */
			cmds[i] = (aeth__q_cmd){-1, 0, 1, a, NULL};
			continue;
		}
		a[0] = "ZRANGEBYSCORE"; a[1] = keys[i]; a[2] = from; a[3] = "+inf";
		a[4] = "WITHSCORES"; a[5] = "LIMIT"; a[6] = "0"; a[7] = lim;
		cmds[i] = (aeth__q_cmd){-1, 0, 8, a, NULL};
	}
	aeth_error_clear();
	if ((rc = aeth__q_run(q, nq, cmds, zr)))
		goto out;
	for (size_t i = 0; i < nq; i++) {
		const redisReply *z = zr[i];
		bool full = z->type == REDIS_REPLY_ARRAY && z->elements >= 2 * max;

		for (size_t j = 0; rc == 0 && z->type == REDIS_REPLY_ARRAY &&
		     j + 1 < z->elements; j += 2) {
			const redisReply *e = z->element[j];
			int64_t at = strtoll(z->element[j + 1]->str, NULL, 10);

			/* a queue with more than `max`: the rest next time */
			if (n >= max || (full && j + 2 >= z->elements)) {
				if (at < *now_ms)
					*now_ms = at;
				break;
			}
			if (e->type != REDIS_REPLY_STRING || e->len != 36)
				continue;
			if ((rc = push(&ids, &n, e->str, e->len)) == 0) {
				size_t k = n - 1;

				rc = push(&queues, &k, rs[1]->element[i]->str,
					  rs[1]->element[i]->len);
			}
		}
		freeReplyObject(zr[i]);
	}
out:
	freeReplyObject(rs[0]);
	freeReplyObject(rs[1]);
	free(keys);
	free(argv);
	free(cmds);
	free(zr);
	if (rc != 0) {
		aeth_strarray_free(ids);
		aeth_strarray_free(queues);
		return rc;
	}
	*ids_out = ids;
	*queues_out = queues;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/*
 * One server: its run_id. A cluster: a digest (FNV-1a, 64 bits) of the
 * sorted run_ids of the primaries, so that a primary restarted or
 * replaced (a failover, a node added) changes it as a restart does.
 */
int aeth__q_server_run_id(aeth_queue *q, char run_id[48])
{
	static const char *const argv[] = {"INFO", "server"};
	size_t nodes[64], n;
	char (*ids)[48];
	redisReply *rs[64];
	const char *const *av[64];
	int argcs[64], to[64], rc;
	uint64_t h = 1469598103934665603ULL;

	run_id[0] = '\0';
	if ((rc = aeth__q_cluster_primaries(q, nodes, 64, &n)) || n == 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		av[i] = argv;
		argcs[i] = 2;
		to[i] = q->url.kind == AETH__REDIS_CLUSTER ? (int)nodes[i] : -1;
	}
	if ((rc = aeth__q_pipeline_to(q, to, n, argcs, av, NULL, rs)))
		return rc;
	if (!(ids = calloc(n, sizeof(*ids)))) {
		for (size_t i = 0; i < n; i++)
			freeReplyObject(rs[i]);
		return aeth__error_oom();
	}
	for (size_t i = 0; i < n; i++) {
		if (rs[i]->type == REDIS_REPLY_STRING)
			info_field(rs[i]->str, "run_id", ids[i], 48);
		freeReplyObject(rs[i]);
	}
	qsort(ids, n, sizeof(*ids), cmp_str);
	if (n == 1) {
		memcpy(run_id, ids[0], 48);
	} else if (ids[0][0]) { /* "" sorts first: some node refused INFO */
		for (size_t i = 0; i < n; i++)
			for (const char *p = ids[i]; *p; p++)
				h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		snprintf(run_id, 48, "cluster-%016llx", (unsigned long long)h);
	}
	free(ids);
	return 0;
}
