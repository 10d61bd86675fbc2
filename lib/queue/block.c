/*
 * lib/queue/block.c - a blocked dequeue over queues that live in several
 * Redis Cluster slots. One BRPOP may name keys of one slot only, so each
 * slot's notify lists get a BRPOP of their own, each on a connection of
 * its own to the node serving that slot (kept for the next wait), and we
 * poll() them all: the first that answers decides, as one BRPOP over all
 * of them would. The others are then unblocked at once (CLIENT UNBLOCK
 * from the command connection to their node), together with the scan
 * that follows (conn.c puts the CLIENT UNBLOCKs in the same round trip):
 * a BRPOP left blocked would take the wake-up token of a task enqueued
 * while we run ours, and the consumer it was meant for would sleep on.
 * A token such a BRPOP took in the race with its unblocking is pushed
 * back.
 *
 * Wake-up latency is that of one BRPOP (the enqueue's LPUSH answers the
 * blocked client at once) plus the scan, as with one server.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cluster_reply.h"
#include "queue_internal.h"

#define MAX_BLOCKERS 32

typedef struct {
	unsigned int slot;
	size_t node;        /* the node it is connected to */
	redisContext *ctx;
	long long id;       /* its CLIENT ID */
	/* this wait */
	bool waiting;       /* its BRPOP was sent and not answered */
	bool in_use;        /* by this wait (not to be evicted) */
	size_t nkeys;
	size_t key[MAX_BLOCKERS]; /* indexes into the call's keys */
} blocker;

struct aeth__q_blockers {
	blocker b[MAX_BLOCKERS];
	size_t n;
	bool warned;     /* about CLIENT UNBLOCK refused */
	bool unblocking; /* a CLIENT UNBLOCK round is under way */
};

bool aeth__q_block_pending(const aeth_queue *q)
{
	if (!q->blk || q->blk->unblocking)
		return false;
	for (size_t i = 0; i < q->blk->n; i++)
		if (q->blk->b[i].waiting)
			return true;
	return false;
}

static void close_one(blocker *b)
{
	if (b->ctx)
		redisFree(b->ctx);
	b->ctx = NULL;
	b->waiting = false;
}

void aeth__q_block_free(aeth_queue *q)
{
	if (!q->blk)
		return;
	for (size_t i = 0; i < q->blk->n; i++)
		close_one(&q->blk->b[i]);
	free(q->blk);
	q->blk = NULL;
}

static struct timeval tv_ms(int64_t ms)
{
	return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* The blocker of `slot`, connected to the node serving it. */
static int blocker_for(aeth_queue *q, unsigned int slot, int64_t timeout_ms,
		       blocker **out)
{
	aeth__q_blockers *s = q->blk;
	blocker *b = NULL;
	size_t node;
	int rc;

	if ((rc = aeth__q_cluster_route(q, slot, &node)))
		return rc;
	for (size_t i = 0; i < s->n; i++)
		if (s->b[i].slot == slot)
			b = &s->b[i];
	if (!b && s->n < MAX_BLOCKERS)
		b = &s->b[s->n++];
	for (size_t i = 0; !b && i < s->n; i++)
		if (!s->b[i].in_use) { /* the slot of a queue not waited on now */
			close_one(&s->b[i]);
			b = &s->b[i];
		}
	if (!b)
		return aeth__error_set(AETH_EINVALID, "at most %d slots per dequeue",
				       MAX_BLOCKERS);
	if (b->slot != slot || !b->ctx) {
		close_one(b);
		memset(b, 0, sizeof(*b));
		b->slot = slot;
	}
	b->in_use = true;
	if (b->ctx && b->node != node)
		close_one(b);
	if (!b->ctx) {
		static const char *id_argv[2] = {"CLIENT", "ID"};
		redisReply *r;

		if ((rc = aeth__q_node_open(q, node, (unsigned int)timeout_ms, &b->ctx)))
			return rc;
		b->node = node;
		r = redisCommandArgv(b->ctx, 2, id_argv, NULL);
		if (!r || r->type != REDIS_REPLY_INTEGER) {
			rc = r ? aeth__q_bad_reply(q, "CLIENT ID", r) :
				aeth__q_unavailable(q, q->nodes[node], b->ctx->errstr);
			if (r)
				freeReplyObject(r);
			close_one(b);
			return rc;
		}
		b->id = r->integer;
		freeReplyObject(r);
	}
	redisSetTimeout(b->ctx, tv_ms(timeout_ms));
	*out = b;
	return 0;
}

/* Send BRPOP <keys of b> <seconds> without waiting for the answer. */
static int send_brpop(aeth_queue *q, blocker *b, const char *const *keys,
		      int64_t wait_ms)
{
	const char *argv[MAX_BLOCKERS + 2];
	char tmo[32];
	int done = 0;

	argv[0] = "BRPOP";
	for (size_t k = 0; k < b->nkeys; k++)
		argv[k + 1] = keys[b->key[k]];
	snprintf(tmo, sizeof(tmo), "%.3f", (double)wait_ms / 1000.0);
	argv[b->nkeys + 1] = tmo;
	if (redisAppendCommandArgv(b->ctx, (int)b->nkeys + 2, argv, NULL) != REDIS_OK)
		goto broken;
	while (!done)
		if (redisBufferWrite(b->ctx, &done) != REDIS_OK)
			goto broken;
	b->waiting = true;
	return 0;
broken:
	{
		int rc = aeth__q_unavailable(q, q->nodes[b->node], b->ctx->errstr);

		close_one(b);
		return rc;
	}
}

/* What a BRPOP's reply says: the key index woken (>= 0), -1 nothing
 * (timed out, unblocked), -2 look again (the slot moved). */
static int judge(aeth_queue *q, const blocker *b, const char *const *keys,
		 redisReply *r, int *rc)
{
	aeth__q_redirect rd;

	*rc = 0;
	if (r->type == REDIS_REPLY_NIL)
		return -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING) {
		for (size_t k = 0; k < b->nkeys; k++)
			if (!strcmp(keys[b->key[k]], r->element[0]->str))
				return (int)b->key[k];
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		if (aeth__q_redirect_parse(r->str, r->len, &rd) == 1) {
			if (rd.kind == AETH__Q_REDIR_MOVED)
				aeth__q_cluster_moved(q, rd.slot, rd.to.host, rd.to.port, b->node);
			return -2;
		}
		if (!strncmp(r->str, "TRYAGAIN", 8) || !strncmp(r->str, "CLUSTERDOWN", 11) ||
		    !strncmp(r->str, "UNBLOCKED", 9)) {
			q->map_stale = true;
			return -2;
		}
	}
	*rc = aeth__q_bad_reply(q, "BRPOP", r);
	return -1;
}

size_t aeth__q_block_waiting(aeth_queue *q, int *nodes, char (*ids)[24], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; q->blk && i < q->blk->n && n < max; i++) {
		if (!q->blk->b[i].waiting)
			continue;
		snprintf(ids[n], 24, "%lld", q->blk->b[i].id);
		nodes[n++] = (int)q->blk->b[i].node;
	}
	return n;
}

void aeth__q_block_unblocked(aeth_queue *q, redisReply **rs, size_t n)
{
	aeth__q_blockers *s = q->blk;
	const char *pargv[MAX_BLOCKERS][3];
	const char *const *pav[MAX_BLOCKERS];
	int pargcs[MAX_BLOCKERS];
	redisReply *got[MAX_BLOCKERS], *pr[MAX_BLOCKERS];
	size_t k = 0, np = 0;

	for (size_t i = 0; s && i < s->n; i++) {
		blocker *b = &s->b[i];
		redisReply *r = NULL;
		void *p = NULL;

		if (!b->waiting)
			continue;
		if (k >= n || !rs || !rs[k]) {
			close_one(b); /* not unblocked: start afresh */
		} else if (rs[k]->type == REDIS_REPLY_ERROR) {
			if (!s->warned)
				aeth__warn("redis at %s: CLIENT UNBLOCK: %s: a dequeue over "
					   "queues in several cluster slots closes its other "
					   "connections instead (allow +client|unblock to the "
					   "worker's ACL user, docs/redis-acl.conf)",
					   q->url.display, rs[k]->str);
			s->warned = true;
			close_one(b);
		} else if (redisGetReply(b->ctx, &p) != REDIS_OK || !(r = p)) {
			close_one(b);
		} else {
			b->waiting = false;
			/* a token taken in the race with CLIENT UNBLOCK goes back
			 * (RPUSH: the next BRPOP pops it) */
			if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
			    r->element[0]->type == REDIS_REPLY_STRING) {
				pargv[np][0] = "RPUSH";
				pargv[np][1] = r->element[0]->str;
				pargv[np][2] = "1";
				pav[np] = pargv[np];
				pargcs[np] = 3;
				got[np++] = r;
				r = NULL;
			}
		}
		if (r)
			freeReplyObject(r);
		k++;
	}
	if (np && aeth__q_pipeline(q, np, pargcs, pav, NULL, pr) == 0)
		for (size_t j = 0; j < np; j++)
			freeReplyObject(pr[j]);
	for (size_t j = 0; j < np; j++)
		freeReplyObject(got[j]);
}

/* Unblock every blocker still waiting now, and read its answer. */
static void cancel(aeth_queue *q)
{
	const char *argv[MAX_BLOCKERS][3];
	const char *const *av[MAX_BLOCKERS];
	char ids[MAX_BLOCKERS][24];
	int nodes[MAX_BLOCKERS], argcs[MAX_BLOCKERS];
	redisReply *rs[MAX_BLOCKERS];
	size_t n = aeth__q_block_waiting(q, nodes, ids, MAX_BLOCKERS);

	if (n == 0)
		return;
	for (size_t k = 0; k < n; k++) {
		argv[k][0] = "CLIENT";
		argv[k][1] = "UNBLOCK";
		argv[k][2] = ids[k];
		av[k] = argv[k];
		argcs[k] = 3;
	}
	q->blk->unblocking = true; /* the engine must not add them again */
	if (aeth__q_pipeline_to(q, nodes, n, argcs, av, NULL, rs) != 0) {
		q->blk->unblocking = false;
		aeth__q_block_unblocked(q, NULL, 0);
		return;
	}
	q->blk->unblocking = false;
	aeth__q_block_unblocked(q, rs, n);
	for (size_t k = 0; k < n; k++)
		freeReplyObject(rs[k]);
}

/* Group the keys by slot into blockers, connected and sent their BRPOP. */
static int start(aeth_queue *q, const char *const *keys, size_t n, int64_t wait_ms)
{
	int64_t tmo = wait_ms + q->o.command_timeout_ms;
	blocker *used[MAX_BLOCKERS];
	size_t nused = 0;
	int rc;

	for (size_t i = 0; i < q->blk->n; i++)
		q->blk->b[i].in_use = false;
	for (size_t i = 0; i < n; i++) {
		unsigned int slot = aeth__q_key_slot(keys[i], strlen(keys[i]));
		blocker *b = NULL;

		for (size_t k = 0; k < nused; k++)
			if (used[k]->slot == slot)
				b = used[k];
		if (!b) {
			if ((rc = blocker_for(q, slot, tmo, &b)))
				return rc;
			b->nkeys = 0;
			used[nused++] = b;
		}
		b->key[b->nkeys++] = i;
	}
	for (size_t k = 0; k < nused; k++)
		if ((rc = send_brpop(q, used[k], keys, wait_ms)))
			return rc;
	return 0;
}

/* Wait for the first answer; *woke as aeth__q_block_many(). */
static int await(aeth_queue *q, const char *const *keys, int64_t wait_ms, int *woke)
{
	aeth__q_blockers *s = q->blk;
	int64_t deadline = aeth__now_ms() + wait_ms + q->o.command_timeout_ms;

	*woke = -1;
	for (;;) {
		struct pollfd pfd[MAX_BLOCKERS];
		size_t at[MAX_BLOCKERS], np = 0;
		int64_t left = deadline - aeth__now_ms();
		int ready;

		for (size_t i = 0; i < s->n; i++)
			if (s->b[i].waiting) {
				pfd[np] = (struct pollfd){s->b[i].ctx->fd, POLLIN, 0};
				at[np++] = i;
			}
		if (np == 0)
			return 0;
		if (left <= 0)
			return aeth__q_unavailable(q, q->nodes[s->b[at[0]].node],
						   "no answer to BRPOP in time");
		ready = poll(pfd, np, (int)(left > 1000000 ? 1000000 : left));
		if (ready < 0 && errno != EINTR)
			return aeth__error_errno(AETH_ERROR, "poll on redis connections");
		for (size_t k = 0; ready > 0 && k < np; k++) {
			blocker *b = &s->b[at[k]];
			void *p = NULL;
			int rc, w;

			if (!pfd[k].revents)
				continue;
			if (redisBufferRead(b->ctx) != REDIS_OK ||
			    redisGetReplyFromReader(b->ctx, &p) != REDIS_OK) {
				rc = aeth__q_unavailable(q, q->nodes[b->node], b->ctx->errstr);
				close_one(b);
				q->map_stale = true;
				return rc;
			}
			if (!p)
				continue; /* part of a reply */
			b->waiting = false;
			w = judge(q, b, keys, p, &rc);
			freeReplyObject(p);
			if (rc)
				return rc;
			*woke = w >= 0 ? w : -1;
			return 0; /* the first answer decides, a timeout too */
		}
	}
}

int aeth__q_block_many(aeth_queue *q, const char *const *keys, size_t n,
		       int64_t wait_ms, int *woke)
{
	aeth__q_sigpipe_guard g;
	int rc;

	*woke = -1;
	if (n > MAX_BLOCKERS)
		return aeth__error_set(AETH_EINVALID, "at most %d queues per dequeue",
				       MAX_BLOCKERS);
	if (!q->blk && !(q->blk = calloc(1, sizeof(*q->blk))))
		return aeth__error_oom();
	aeth__q_sigpipe_block(&g);
	if ((rc = start(q, keys, n, wait_ms)) == 0)
		rc = await(q, keys, wait_ms, woke);
	aeth__q_sigpipe_restore(&g);
	/* On success the others are unblocked by the next command, the scan
	 * that follows (conn.c sends their CLIENT UNBLOCK with it, one round
	 * trip for both); after an error, now. */
	if (rc)
		cancel(q);
	return rc;
}
