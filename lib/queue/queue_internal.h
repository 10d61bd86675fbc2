/*
 * lib/queue/queue_internal.h - the queue module's internals: the handle,
 * the Redis connection with reconnect-once, scripts, key names.
 */
#ifndef AETH_QUEUE_INTERNAL_H
#define AETH_QUEUE_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "aetherium/queue.h"
#include "internal.h"

/* How the servers behind a URL are laid out. */
enum {
	AETH__REDIS_SINGLE,   /* redis:// or unix://: one server */
	AETH__REDIS_CLUSTER,  /* redis-cluster://: seed nodes of a Redis Cluster */
	AETH__REDIS_SENTINEL  /* redis-sentinel://: sentinels naming a primary */
};

/* A TCP address of a seed list. */
typedef struct {
	char *host;
	int port;
} aeth__redis_addr;

#define AETH__REDIS_SEEDS_MAX 64

/* A parsed Redis URL. */
typedef struct {
	int kind;       /* AETH__REDIS_* */
	char *host;     /* SINGLE over TCP: the host; else NULL */
	int port;
	char *path;     /* SINGLE on a Unix socket: its path, or NULL */
	char *user;     /* ACL user of the data nodes, or NULL */
	char *password; /* or NULL */
	int db;         /* always 0 for a cluster */
	/* CLUSTER: seed nodes; SENTINEL: the sentinels (nseeds >= 1) */
	aeth__redis_addr *seeds;
	size_t nseeds;
	char *master;            /* SENTINEL: the primary's name */
	char *sentinel_user;     /* SENTINEL: AUTH to the sentinels, or NULL */
	char *sentinel_password;
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
	AETH__LUA_RATE,
	AETH__LUA_SLOTS,
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

/* A Redis server the handle talks to (conn.c). */
typedef struct {
	char *host;   /* TCP host, or NULL */
	int port;
	char *path;   /* Unix socket path, or NULL */
	char *name;   /* "host:port" ("[v6]:port") or the socket path */
	redisContext *ctx;
	unsigned int cur_timeout_ms; /* socket timeout now set on ctx */
} aeth__q_node;

#define AETH__Q_NODES_MAX 1024 /* cluster nodes one handle will know */

typedef struct aeth__q_blockers aeth__q_blockers;

struct aeth_queue {
	aeth__redis_url url;
	/* SINGLE and SENTINEL: nodes[0] is the server (for SENTINEL the
	 * primary found last); CLUSTER: every node met, seeds first. */
	aeth__q_node **nodes;
	size_t nnodes;
	uint16_t *slot_node;  /* CLUSTER: node index + 1 per slot, 0: unknown */
	bool map_stale;       /* CLUSTER: read the slot map before routing */
	aeth__q_blockers *blk; /* CLUSTER: blocking connections (block.c) */
	size_t sentinel_first; /* SENTINEL: the sentinel to ask first */
	char *ns;
	char *worker_id;
	aeth_queue_options o; /* with defaults filled in; strings not kept */
	char sha[AETH__LUA_COUNT][41];
	uint64_t rng;
	char *seen[AETH__Q_SEEN];
	unsigned int seen_next;
	int64_t last_maint_ms; /* monotonic; last dequeue maintenance pass */
};

/*
 * hiredis writes with write(): a server that went away would kill the
 * process with SIGPIPE. Every write to Redis is made between these two,
 * which block SIGPIPE on this thread and swallow one raised by us.
 */
typedef struct {
	sigset_t old;
	bool pending_before;
} aeth__q_sigpipe_guard;
void aeth__q_sigpipe_block(aeth__q_sigpipe_guard *g);
void aeth__q_sigpipe_restore(aeth__q_sigpipe_guard *g);

/* Redis connections (conn.c). */
/* Connect: the server; the primary the sentinels name; or a cluster node
 * and the slot map. */
int aeth__q_connect(aeth_queue *q);
/* Close every connection (they reopen on the next call). */
void aeth__q_disconnect(aeth_queue *q);
/* The node of that address, added when new (-1: out of memory or too
 * many nodes; the error is set). */
int aeth__q_node_find(aeth_queue *q, const char *host, int port);
/* A fresh connection to node i, authenticated and on the URL's db, with
 * `timeout_ms` as its socket timeout. */
int aeth__q_node_open(aeth_queue *q, size_t i, unsigned int timeout_ms,
		      redisContext **out);
/* One command on node i alone, straight (no redirection, no re-send):
 * for the slot map and the sentinels' answers. */
int aeth__q_node_command(aeth_queue *q, size_t i, int argc, const char **argv,
			 redisReply **out);
/* Message for a connection that failed: names the server (and node). */
int aeth__q_unavailable(aeth_queue *q, const aeth__q_node *n, const char *detail);
/* aeth__q_pipeline() with command i sent to node nodes[i] (-1: by its
 * key): CLIENT UNBLOCK, INFO of each primary. */
int aeth__q_pipeline_to(aeth_queue *q, const int *nodes, size_t n, const int *argcs,
			const char *const *const *argvs, const size_t *const *lens,
			redisReply **replies);

/* Redis Cluster (cluster.c). */
/* The node serving `slot` (reading the slot map when it is not known). */
int aeth__q_cluster_route(aeth_queue *q, unsigned int slot, size_t *node);
/* Read the slot map from any node that answers (CLUSTER SLOTS). */
int aeth__q_cluster_refresh(aeth_queue *q);
/* Learn from a MOVED: `slot` is now served at host:port (host "" : the
 * node `from`). -1 when that node cannot be added. */
int aeth__q_cluster_moved(aeth_queue *q, unsigned int slot, const char *host,
			  int port, size_t from);
/* The nodes serving slots now (each once), for commands every primary
 * must answer; *n of them into out[max]. */
int aeth__q_cluster_primaries(aeth_queue *q, size_t *out, size_t max, size_t *n);

/* Redis Sentinel (sentinel.c): ask the sentinels for the primary, point
 * nodes[0] at it and connect; it must say ROLE master. */
int aeth__q_sentinel_discover(aeth_queue *q);

/* Blocking dequeue over queues in several cluster slots (block.c). */
/* Wait up to wait_ms on the notify lists keys[0..n) (one BRPOP per
 * slot, each on its own connection); *woke: index of the key that got a
 * token, or -1 (timed out, or the map changed: scan again). */
int aeth__q_block_many(aeth_queue *q, const char *const *keys, size_t n,
		       int64_t wait_ms, int *woke);
void aeth__q_block_free(aeth_queue *q);
/* Blockers left waiting by the last wait, to be unblocked by the next
 * command round (conn.c): whether there are, their nodes and CLIENT IDs
 * (at most max), and what to do with the CLIENT UNBLOCK replies (rs[i]
 * NULL, or rs NULL: not unblocked; the connection is closed). */
bool aeth__q_block_pending(const aeth_queue *q);
size_t aeth__q_block_waiting(aeth_queue *q, int *nodes, char (*ids)[24], size_t max);
void aeth__q_block_unblocked(aeth_queue *q, redisReply **rs, size_t n);
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
