/*
 * lib/queue/queue_internal.h - the queue module's internals: the handle,
 * the Redis connection with reconnect-once, scripts, key names.
 */
#ifndef AETH_QUEUE_INTERNAL_H
#define AETH_QUEUE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "aetherium/queue.h"
#include "internal.h"

/* A parsed Redis URL. */
typedef struct {
	char *host;     /* TCP host, or NULL for a Unix socket */
	int port;
	char *path;     /* Unix socket path, or NULL */
	char *user;     /* ACL user, or NULL */
	char *password; /* or NULL */
	int db;
	char *display;  /* the URL without its password, for messages */
} aeth__redis_url;

int aeth__redis_url_parse(const char *url, aeth__redis_url *out);
/* The URL a queue opened with `url` uses: url, else $AETH_REDIS_URL, else
 * redis://127.0.0.1:6379 (borrowed; never NULL). */
const char *aeth__redis_url_resolve(const char *url);
void aeth__redis_url_clear(aeth__redis_url *u);

enum {
	AETH__LUA_ENQUEUE,
	AETH__LUA_DEQUEUE,
	AETH__LUA_HEARTBEAT,
	AETH__LUA_ACK,
	AETH__LUA_NACK,
	AETH__LUA_CANCEL,
	AETH__LUA_WATCH,
	AETH__LUA_RESTORE,
	AETH__LUA_SETTLE,
	AETH__LUA_COUNT
};

#define AETH__Q_SEEN 16    /* queue names remembered as registered */
#define AETH__Q_KEY_MAX 512 /* longest key we build (names are bounded) */
#define AETH__Q_NAME_MAX 128
#define AETH__Q_UNIQUE_MAX 256
#define AETH__Q_ERROR_MAX 4096
#define AETH__Q_BLOCK_MAX_MS 30000 /* longest single blocking wait */
#define AETH__Q_MAINT_MS 100 /* promote/recover at most this often when busy */
#define AETH__Q_CHUNK 256   /* tasks per script call in the batch functions */
#define AETH__Q_BATCH_MAX 100000 /* tasks per batch call */

struct aeth_queue {
	aeth__redis_url url;
	redisContext *ctx;
	unsigned int cur_timeout_ms; /* socket timeout now set on ctx */
	char *ns;
	char *worker_id;
	aeth_queue_options o; /* with defaults filled in; strings not kept */
	char sha[AETH__LUA_COUNT][41];
	uint64_t rng;
	char *seen[AETH__Q_SEEN];
	unsigned int seen_next;
	int64_t last_maint_ms; /* monotonic; last dequeue maintenance pass */
};

/* Redis connection (conn.c). */
int aeth__q_connect(aeth_queue *q);
void aeth__q_disconnect(aeth_queue *q);
/*
 * Run one command. A broken connection is re-opened and the command sent
 * once more. block_ms > 0 marks a command that blocks in Redis for up to
 * that long (the socket timeout grows to match). *reply is the caller's
 * (freeReplyObject); Redis error replies come back as replies.
 */
int aeth__q_command(aeth_queue *q, int argc, const char **argv,
		    const size_t *lens, unsigned int block_ms,
		    redisReply **reply);
/* Several commands in one round trip (same retry rule); replies[n]. */
int aeth__q_pipeline(aeth_queue *q, size_t n, const int *argcs,
		     const char *const *const *argvs,
		     const size_t *const *lens, redisReply **replies);
/* EVALSHA of one of our scripts (loading it when needed). argv holds
 * nkeys keys then the arguments. Error replies become AETH_ERROR. */
int aeth__q_script(aeth_queue *q, int script, int nkeys, int argc,
		   const char **argv, const size_t *lens, redisReply **reply);
/* One command of aeth__q_run(): a script (AETH__LUA_*; argv = nkeys keys
 * then the arguments, without EVALSHA/sha/nkeys) or, with script -1, a
 * plain command (argv[0] is its name). lens NULL means strlen. */
typedef struct {
	int script;
	int nkeys;
	int argc;
	const char **argv;
	const size_t *lens;
} aeth__q_cmd;
/* Run n commands in one round trip (same reconnect rule). replies[n] are
 * the caller's; error replies come back as replies, except NOSCRIPT,
 * which is handled by reloading the script and redoing that one call. On
 * a non-zero return no reply is left to free. */
int aeth__q_run(aeth_queue *q, size_t n, const aeth__q_cmd *cmds,
		redisReply **replies);
/* SCRIPT LOAD one of our scripts into q->sha. */
int aeth__q_script_load(aeth_queue *q, int script);
/* Message for an unexpected reply: "redis at URL: <what>: <detail>". */
int aeth__q_bad_reply(aeth_queue *q, const char *what, const redisReply *r);

/* Keys (keys.c): "{ns:queue}:suffix". Returns AETH_EINVALID if too long. */
int aeth__q_key(const aeth_queue *q, char *buf, size_t n, const char *queue,
		const char *suffix);
int aeth__q_check_name(const char *queue);
/* Decimal text of v into buf (room for 21 bytes); returns its length.
 * snprintf costs more than the rest of preparing a task. */
size_t aeth__q_u64(char *buf, uint64_t v);
/* Queue of a task by id via the index; *queue is malloc'd. */
int aeth__q_lookup_queue(aeth_queue *q, const char *id, char **queue);

/* Tasks (task.c). */
/* A task from a flat HGETALL reply (from element `first`); queue from
 * `queue` when no field gives it. */
int aeth__q_task_from_hash(const redisReply *r, size_t first,
			   const char *queue, aeth_queue_task **out);
/* A task from the values of fields `names` (nil: not set); id, queue
 * (from `queue` when no field gives it), type, payload and lease are
 * required. Field "m" is the packed immutable fields (enqueue.lua). */
int aeth__q_task_from_values(const char *const *names, size_t n,
			     const char *queue, const redisReply *r,
			     aeth_queue_task **out);
int aeth__q_state_parse(const char *s);
uint64_t aeth__q_rand(aeth_queue *q);

/* What aeth_queue_task.internal points to: the task's own state, not
 * visible to programs (queue.h). */
struct aeth_queue_task_internal {
	char *lease; /* identifies this dequeue's lease (dequeue.lua) */
};

/* The lease token of a dequeued task, or NULL. */
static inline const char *aeth__q_lease(const aeth_queue_task *t)
{
	return t && t->internal ? t->internal->lease : NULL;
}

#endif
