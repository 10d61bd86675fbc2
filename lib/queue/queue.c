/*
 * lib/queue/queue.c - open and close a queue handle, ping. Enqueue is in
 * enqueue.c, dequeue in dequeue.c, the lease functions in lease.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "queue_internal.h"

#define DEF(field, value) do { if (!o->field) o->field = (value); } while (0)

static int check_ns(const char *ns)
{
	size_t n = strlen(ns);

	if (n == 0 || n > 64 || strspn(ns, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
		return aeth__error_set(AETH_EINVALID,
			"bad queue namespace '%.80s': use 1..64 characters of [A-Za-z0-9_.-]", ns);
	return 0;
}

static int fill_options(aeth_queue *q, const aeth_queue_options *opts)
{
	aeth_queue_options *o = &q->o;
	const char *ns;

	*o = *opts; /* a current-version copy (aeth_queue_open()) */
	DEF(connect_timeout_ms, 2000);
	DEF(command_timeout_ms, 5000);
	DEF(lease_ms, 30000);
	DEF(retention_s, 86400);
	DEF(max_payload, 1024 * 1024);
	DEF(retry_base_ms, 1000);
	DEF(retry_max_ms, 600000);
	DEF(retry_jitter_pct, 25);
	DEF(dead_max, 10000);
	if (o->retry_jitter_pct > 100)
		o->retry_jitter_pct = 100;
	ns = o->ns ? o->ns : "aeth";
	if (check_ns(ns))
		return AETH_EINVALID;
	q->ns = aeth__strdup(ns);
	q->worker_id = aeth__strdup(o->worker_id ? o->worker_id : "");
	o->url = o->ns = o->worker_id = NULL;
	return q->ns && q->worker_id ? 0 : AETH_ENOMEM;
}

static const aeth_queue_options queue_defaults = AETH_QUEUE_OPTIONS_INIT;
static const size_t queue_sizes[] = {sizeof(aeth_queue_options)};
static const aeth__versioned queue_options_v = {
	"aeth_queue_options", "AETH_QUEUE_OPTIONS_INIT",
	AETH_QUEUE_OPTIONS_VERSION, queue_sizes, &queue_defaults,
};

int aeth_queue_options_init(aeth_queue_options *opts, unsigned int version)
{
	return aeth__versioned_init(&queue_options_v, opts, version);
}

int aeth_queue_open(aeth_queue **out, const aeth_queue_options *opts)
{
	aeth_queue_options o;
	aeth_queue *q;
	const char *url;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_queue_open: out is NULL");
	*out = NULL;
	if ((rc = aeth__versioned_copy(&queue_options_v, &o, opts)) != 0)
		return rc;
	opts = &o;
	q = calloc(1, sizeof(*q));
	if (!q)
		return aeth__error_oom();
	url = aeth__redis_url_resolve(opts->url);
	rc = fill_options(q, opts);
	if (rc == 0)
		rc = aeth__redis_url_parse(url, &q->url);
	if (rc == 0 && getrandom(&q->rng, sizeof(q->rng), 0) != sizeof(q->rng))
		q->rng = (uint64_t)aeth__now_ms() ^ (uint64_t)(uintptr_t)q;
	q->rng |= 1;
	if (rc == 0)
		rc = aeth__q_connect(q);
	if (rc == 0)
		rc = aeth_queue_ping(q);
	if (rc) {
		aeth_queue_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

void aeth_queue_free(aeth_queue *q)
{
	if (!q)
		return;
	aeth__q_disconnect(q);
	for (size_t i = 0; i < q->nnodes; i++) {
		free(q->nodes[i]->host);
		free(q->nodes[i]->path);
		free(q->nodes[i]->name);
		free(q->nodes[i]);
	}
	free(q->nodes);
	free(q->slot_node);
	aeth__redis_url_clear(&q->url);
	for (size_t i = 0; i < AETH__Q_SEEN; i++)
		free(q->seen[i]);
	free(q->ns);
	free(q->worker_id);
	free(q);
}

int aeth_queue_ping(aeth_queue *q)
{
	const char *argv[1] = {"PING"};
	redisReply *r;
	int rc = aeth__q_command(q, 1, argv, NULL, 0, &r);

	if (rc)
		return rc;
	if (r->type != REDIS_REPLY_STATUS)
		rc = aeth__q_bad_reply(q, "PING", r);
	freeReplyObject(r);
	return rc;
}
