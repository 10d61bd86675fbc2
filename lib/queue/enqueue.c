/*
 * lib/queue/enqueue.c - enqueue one task or a batch. Both go the same
 * way: the tasks are checked, then sent in ONE round trip: one enqueue
 * script call per run of up to AETH__Q_CHUNK tasks of the same queue,
 * plus the id -> queue index (one SET per task) and, once per handle and
 * queue, the SADD into the set of queue names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "queue_internal.h"
#include "task/task.h"

/* JSON text, at most `max` bytes. */
static int check_json(const char *what, const char *json, size_t max)
{
	size_t n = strlen(json);
	cJSON *j;

	if (n > max)
		return aeth__error_set(AETH_ETOOBIG,
			"task %s is %zu bytes, over the limit of %zu (aeth_queue_options.max_payload)",
			what, n, max);
	j = cJSON_ParseWithLength(json, n);
	if (!j)
		return aeth__error_set(AETH_EINVALID,
			"task %s is not valid JSON (near byte %td)", what,
			cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : (ptrdiff_t)0);
	cJSON_Delete(j);
	return 0;
}

static const aeth_queue_enqueue_options enqueue_defaults =
	AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
static const size_t enqueue_sizes[] = {sizeof(aeth_queue_enqueue_options)};
static const aeth__versioned enqueue_options_v = {
	"aeth_queue_enqueue_options", "AETH_QUEUE_ENQUEUE_OPTIONS_INIT",
	AETH_QUEUE_ENQUEUE_OPTIONS_VERSION, enqueue_sizes, &enqueue_defaults,
};

int aeth_queue_enqueue_options_init(aeth_queue_enqueue_options *opts,
				    unsigned int version)
{
	return aeth__versioned_init(&enqueue_options_v, opts, version);
}

static int check_enqueue(aeth_queue *q, const char *type, const char *payload,
			 const aeth_queue_enqueue_options *o)
{
	int rc;

	if ((rc = aeth__task_type_check(type)) || (rc = aeth__q_check_name(o->queue)) ||
	    (rc = check_json("payload", payload, q->o.max_payload)))
		return rc;
	if (o->id && !aeth__uuid_valid(o->id))
		return aeth__error_set(AETH_EINVALID, "bad task id '%.40s': not a UUID", o->id);
	if (o->unique_key && (!*o->unique_key || strlen(o->unique_key) > AETH__Q_UNIQUE_MAX))
		return aeth__error_set(AETH_EINVALID,
			"bad unique key: must be 1..%d bytes", AETH__Q_UNIQUE_MAX);
	return 0;
}

/* True when this handle already registered `queue` in "<ns>:queues". */
static bool seen(aeth_queue *q, const char *queue)
{
	for (size_t i = 0; i < AETH__Q_SEEN; i++)
		if (q->seen[i] && !strcmp(q->seen[i], queue))
			return true;
	free(q->seen[q->seen_next]);
	q->seen[q->seen_next] = strdup(queue);
	q->seen_next = (q->seen_next + 1) % AETH__Q_SEEN;
	return false;
}

/* The argument strings of one task. */
typedef struct {
	aeth_queue_enqueue_options o;
	const char *payload;
	char smax[16], stmo[16], sat[24], sttl[16];
	char kidx[64 + 4 + 37]; /* "<ns>:id:<id>", ns at most 64 */
} prep;

/* The keys and fixed arguments of one script call. */
typedef struct {
	char kpend[AETH__Q_KEY_MAX], ksched[AETH__Q_KEY_MAX],
	     knotify[AETH__Q_KEY_MAX], tpfx[AETH__Q_KEY_MAX], upfx[AETH__Q_KEY_MAX];
	size_t first, count; /* tasks[first..first+count-1], all valid */
} group;

#define ARGS_PER_TASK 8

static int task_reply(aeth_queue *q, aeth_queue_batch_task *t, const prep *p,
		      const redisReply *code, const redisReply *detail)
{
	if (code->type != REDIS_REPLY_INTEGER)
		return aeth__q_bad_reply(q, "enqueue", code);
	switch (code->integer) {
	case 1:
		return 0;
	case -1:
		return aeth__error_set(AETH_EEXISTS,
			"a task with unique key '%s' is already live in queue %s (task %.36s)",
			p->o.unique_key, p->o.queue,
			detail->type == REDIS_REPLY_STRING ? detail->str : "?");
	default:
		return aeth__error_set(AETH_EEXISTS, "task %s already exists in queue %s",
				       t->id, p->o.queue);
	}
}

/* Random (version 4) UUIDs for n tasks from one getrandom() call:
 * libuuid's uuid_generate_random() reseeds random() on every call, which
 * cost more client CPU than the rest of an enqueue. */
static void new_ids(aeth_queue *q, aeth_queue_batch_task *tasks, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16 * 64];

	for (size_t i = 0; i < n;) {
		size_t k = n - i < 64 ? n - i : 64;

		if (getrandom(b, 16 * k, 0) != (ssize_t)(16 * k))
			for (size_t j = 0; j < 16 * k; j += 8) {
				uint64_t r = aeth__q_rand(q);
				memcpy(b + j, &r, 8);
			}
		for (size_t j = 0; j < k; j++, i++) {
			unsigned char *u = b + 16 * j;
			char *o = tasks[i].id;

			if (tasks[i].id[0] || tasks[i].rc)
				continue; /* caller's id, or invalid */
			u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
			u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
			for (int x = 0; x < 16; x++) {
				if (x == 4 || x == 6 || x == 8 || x == 10)
					*o++ = '-';
				*o++ = hex[u[x] >> 4];
				*o++ = hex[u[x] & 15];
			}
			*o = '\0';
		}
	}
}

/* Check each task, fill its id and strings; invalid ones get their rc. */
typedef struct failure failure;
static void note(failure *f, size_t n, size_t i, int rc);

static void prepare(aeth_queue *q, aeth_queue_batch_task *tasks, size_t n, prep *ps,
		    failure *f)
{
	for (size_t i = 0; i < n; i++) {
		aeth_queue_batch_task *t = &tasks[i];
		prep *p = &ps[i];

		t->id[0] = '\0';
		p->payload = t->payload ? t->payload : "{}";
		t->rc = aeth__versioned_copy(&enqueue_options_v, &p->o, t->opts);
		if (t->rc == 0 && !p->o.queue)
			p->o.queue = "default";
		if (t->rc == 0)
			t->rc = check_enqueue(q, t->type, p->payload, &p->o);
		note(f, n, i, t->rc);
		if (t->rc)
			continue;
		if (p->o.id)
			memcpy(t->id, p->o.id, 37);
		aeth__q_u64(p->smax, p->o.max_retries);
		aeth__q_u64(p->stmo, p->o.timeout_ms);
		aeth__q_u64(p->sat, p->o.process_at_ms > 0 ? (uint64_t)p->o.process_at_ms : 0);
		aeth__q_u64(p->sttl, p->o.unique_ttl_ms ? p->o.unique_ttl_ms : 86400000u);
		if (p->o.unique_key && strlen(p->o.unique_key) + 40 +
		    strlen(q->ns) + strlen(p->o.queue) >= AETH__Q_KEY_MAX)
			t->rc = aeth__error_set(AETH_EINVALID, "queue key too long");
		note(f, n, i, t->rc);
	}
	new_ids(q, tasks, n);
	for (size_t i = 0, ln = strlen(q->ns); i < n; i++)
		if (!tasks[i].rc) { /* "<ns>:id:<id>"; ns is at most 64 */
			memcpy(ps[i].kidx, q->ns, ln);
			memcpy(ps[i].kidx + ln, ":id:", 4);
			memcpy(ps[i].kidx + ln + 4, tasks[i].id, 37);
		}
}

/* Runs of valid tasks of one queue, at most AETH__Q_CHUNK long, into
 * *gs (grown as needed: a group is large, and usually there is one). */
static size_t make_groups(aeth_queue *q, aeth_queue_batch_task *tasks, const prep *ps,
			  size_t n, group **gs)
{
	size_t ng = 0, cap = 0;

	for (size_t i = 0; i < n; i++) {
		group *g = ng ? &(*gs)[ng - 1] : NULL;

		if (tasks[i].rc)
			continue;
		if (g && g->count < AETH__Q_CHUNK &&
		    !strcmp(ps[g->first].o.queue, ps[i].o.queue) &&
		    g->first + g->count == i) {
			g->count++;
			continue;
		}
		if (ng == cap) {
			group *ng_ = realloc(*gs, (cap = cap ? 2 * cap : 1) * sizeof(**gs));

			if (!ng_) {
				aeth__error_oom();
				return (size_t)-1;
			}
			*gs = ng_;
		}
		g = &(*gs)[ng++];
		g->first = i;
		g->count = 1;
		/* Names are checked and short: these cannot overflow. */
		aeth__q_key(q, g->kpend, sizeof(g->kpend), ps[i].o.queue, "pending");
		aeth__q_key(q, g->ksched, sizeof(g->ksched), ps[i].o.queue, "scheduled");
		aeth__q_key(q, g->knotify, sizeof(g->knotify), ps[i].o.queue, "notify");
		aeth__q_key(q, g->tpfx, sizeof(g->tpfx), ps[i].o.queue, "t:");
		aeth__q_key(q, g->upfx, sizeof(g->upfx), ps[i].o.queue, "u:");
	}
	return ng;
}

/* Build the commands: per group the script, then one index SET per
 * task, then SADDs of queues new to this handle. */
static size_t make_cmds(aeth_queue *q, aeth_queue_batch_task *tasks, const prep *ps,
			size_t n, const group *gs, size_t ng, aeth__q_cmd *cmds,
			const char **argv, char *kqueues)
{
	static const char *const ex = "604800"; /* index kept 7 days */
	size_t nc = 0, at = 0;

	for (size_t g = 0; g < ng; g++) {
		const char **a = argv + at;
		size_t k = 0;

		a[k++] = gs[g].kpend; a[k++] = gs[g].ksched; a[k++] = gs[g].knotify;
		a[k++] = gs[g].tpfx; a[k++] = gs[g].upfx;
		for (size_t i = gs[g].first; i < gs[g].first + gs[g].count; i++) {
			const prep *p = &ps[i];

			a[k++] = tasks[i].id; a[k++] = tasks[i].type; a[k++] = p->payload;
			a[k++] = p->smax; a[k++] = p->stmo; a[k++] = p->sat;
			a[k++] = p->o.unique_key ? p->o.unique_key : ""; a[k++] = p->sttl;
		}
		cmds[nc++] = (aeth__q_cmd){AETH__LUA_ENQUEUE, 3, (int)k, a, NULL};
		at += k;
	}
	/* The id -> queue index lives outside the queue's slot. NX: a
	 * duplicate id cannot repoint it. */
	for (size_t i = 0; i < n; i++) {
		const char **a = argv + at;

		if (tasks[i].rc)
			continue;
		a[0] = "SET"; a[1] = ps[i].kidx; a[2] = ps[i].o.queue;
		a[3] = "EX"; a[4] = ex; a[5] = "NX";
		cmds[nc++] = (aeth__q_cmd){-1, 0, 6, a, NULL};
		at += 6;
	}
	for (size_t g = 0; g < ng; g++) {
		const char **a = argv + at;
		const char *name = ps[gs[g].first].o.queue;

		if (seen(q, name))
			continue;
		a[0] = "SADD"; a[1] = kqueues; a[2] = name;
		cmds[nc++] = (aeth__q_cmd){-1, 0, 3, a, NULL};
		at += 3;
	}
	return nc;
}

/* The first failure (lowest index) and its message: later failures
 * overwrite aeth_error_last(). */
struct failure {
	size_t index;
	int rc;
	char msg[600];
};

static void note(failure *f, size_t n, size_t i, int rc)
{
	if (!rc || (f->rc && f->index <= i))
		return;
	f->index = i;
	f->rc = rc;
	if (n > 1)
		snprintf(f->msg, sizeof(f->msg), "task %zu of %zu: %s", i, n, aeth_error_last());
	else
		snprintf(f->msg, sizeof(f->msg), "%s", aeth_error_last());
}

/* Spread the replies over the tasks. */
static void take_replies(aeth_queue *q, aeth_queue_batch_task *tasks, size_t n,
			 const prep *ps, const group *gs, size_t ng, size_t nc,
			 redisReply **rs, failure *f)
{
	for (size_t g = 0; g < ng; g++) {
		const redisReply *r = rs[g];
		int rc = 0;

		if (r->type == REDIS_REPLY_ERROR)
			rc = aeth__q_bad_reply(q, "queue script enqueue", r);
		else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * gs[g].count)
			rc = aeth__q_bad_reply(q, "enqueue", r);
		for (size_t j = 0; j < gs[g].count; j++) {
			size_t i = gs[g].first + j;

			tasks[i].rc = rc ? rc : task_reply(q, &tasks[i], &ps[i],
				r->element[2 * j], r->element[2 * j + 1]);
			note(f, n, i, tasks[i].rc);
		}
	}
	for (size_t c = ng; c < nc; c++)
		if (rs[c]->type == REDIS_REPLY_ERROR)
			note(f, n, n, aeth__q_bad_reply(q, "task index", rs[c]));
}

static const aeth_queue_batch_task batch_defaults = AETH_QUEUE_BATCH_TASK_INIT;
/* The size of each version's struct, which is also the stride of a
 * caller's array of that version (an older version's entry must be its
 * sizeof, padding included). */
static const size_t batch_sizes[] = {sizeof(aeth_queue_batch_task)};
static const aeth__versioned batch_task_v = {
	"aeth_queue_batch_task", "AETH_QUEUE_BATCH_TASK_INIT",
	AETH_QUEUE_BATCH_TASK_VERSION, batch_sizes, &batch_defaults,
};

int aeth_queue_batch_task_init(aeth_queue_batch_task *task, unsigned int version)
{
	return aeth__versioned_init(&batch_task_v, task, version);
}

static int enqueue_batch(aeth_queue *q, aeth_queue_batch_task *tasks, size_t n);

/* The caller's array (elements of tasks[0]'s version) as current structs,
 * enqueued; then each task's id and rc written back into its element. */
int aeth_queue_enqueue_batch(aeth_queue *q, aeth_queue_batch_task *tasks, size_t n)
{
	aeth_queue_batch_task *cur;
	size_t stride;
	int rc;

	if (!tasks || n == 0 || n > AETH__Q_BATCH_MAX)
		return aeth__error_set(AETH_EINVALID,
			"enqueue batch needs 1..%d tasks", AETH__Q_BATCH_MAX);
	if ((rc = aeth__versioned_check(&batch_task_v, tasks[0].version)) != 0)
		return rc;
	stride = batch_sizes[tasks[0].version - 1];
	if (!(cur = malloc(n * sizeof(*cur))))
		return aeth__error_oom();
	for (size_t i = 0; i < n; i++) {
		const aeth_queue_batch_task *t =
			(const void *)((const char *)tasks + i * stride);

		if (t->version != tasks[0].version) {
			free(cur);
			return aeth__error_set(AETH_EINVALID, "enqueue batch: task %zu "
					       "has version %u, task 0 version %u (one "
					       "version per array)", i, t->version,
					       tasks[0].version);
		}
		aeth__versioned_copy(&batch_task_v, &cur[i], t);
	}
	rc = enqueue_batch(q, cur, n);
	for (size_t i = 0; i < n; i++) {
		aeth_queue_batch_task *t = (void *)((char *)tasks + i * stride);

		memcpy(t->id, cur[i].id, sizeof(t->id));
		t->rc = cur[i].rc;
	}
	free(cur);
	return rc;
}

static int enqueue_batch(aeth_queue *q, aeth_queue_batch_task *tasks, size_t n)
{
	char kqueues[AETH__Q_KEY_MAX];
	size_t ng, nc;
	prep *ps = NULL;
	group *gs = NULL;
	aeth__q_cmd *cmds = NULL;
	const char **argv = NULL;
	redisReply **rs = NULL;
	failure f = {0, 0, ""};
	int rc = 0;

	if (!(ps = malloc(n * sizeof(*ps)))) {
		rc = aeth__error_oom();
		goto out;
	}
	prepare(q, tasks, n, ps, &f);
	ng = make_groups(q, tasks, ps, n, &gs);
	if (ng == (size_t)-1) {
		rc = AETH_ENOMEM;
		goto out;
	}
	if (ng == 0)
		goto out;
	cmds = calloc(2 * ng + n, sizeof(*cmds));
	argv = calloc(5 * ng + ARGS_PER_TASK * n + 6 * n + 3 * ng, sizeof(*argv));
	rs = calloc(2 * ng + n, sizeof(*rs));
	if (!cmds || !argv || !rs) {
		rc = aeth__error_oom();
		goto out;
	}
	snprintf(kqueues, sizeof(kqueues), "%s:queues", q->ns);
	nc = make_cmds(q, tasks, ps, n, gs, ng, cmds, argv, kqueues);
	rc = aeth__q_run(q, nc, cmds, rs);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			if (!tasks[i].rc)
				tasks[i].rc = rc;
		/* Forget the queue names: their SADD may not have been made. */
		for (size_t i = 0; i < AETH__Q_SEEN; i++) {
			free(q->seen[i]);
			q->seen[i] = NULL;
		}
		goto out;
	}
	take_replies(q, tasks, n, ps, gs, ng, nc, rs, &f);
	for (size_t c = 0; c < nc; c++)
		freeReplyObject(rs[c]);
out:
	if (rc == 0 && f.rc)
		rc = aeth__error_set(f.rc, "%s", f.msg);
	free(ps);
	free(gs);
	free(cmds);
	free(argv);
	free(rs);
	return rc;
}

int aeth_queue_enqueue(char id_out[37], aeth_queue *q, const char *type,
		       const char *payload,
		       const aeth_queue_enqueue_options *opts)
{
	aeth_queue_batch_task t = {AETH_QUEUE_BATCH_TASK_VERSION, type, payload,
				   opts, "", 0};
	int rc;

	rc = enqueue_batch(q, &t, 1);
	if (rc == 0 && id_out)
		memcpy(id_out, t.id, 37);
	return rc;
}
