/*
 * lib/worker/durability.c - see durability.h. The servers are asked in
 * lib/queue (INFO persistence, CONFIG GET) and lib/store (SHOW); this file
 * words what their answers mean for the tasks and the fixes.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "queue/queue_ledger.h"
#include "store/store_ledger.h"
#include "worker/durability.h"

#define QUEUE_DOC "docs/queue.md (\"Ledger and transport\")"
#define AOF_FIX                                                            \
	"appendonly yes and appendfsync everysec in redis.conf (or CONFIG SET " \
	"appendonly yes, then CONFIG REWRITE), as scripts/services.sh runs "   \
	"Redis; " QUEUE_DOC

void aeth__redis_durability(aeth_queue *q, aeth_check_cb cb, void *ud)
{
	aeth__q_persistence p;
	char detail[128];

	if (aeth__q_persistence_get(q, &p) != 0)
		return;
	if (p.aof == 1 && !strcmp(p.appendfsync, "no")) {
		cb("redis durability", 1, "append-only file with appendfsync no: the "
		   "kernel decides when it reaches the disk (a machine crash loses "
		   "up to ~30 s of tasks)", "appendfsync everysec (at most a "
		   "second lost) or always; " QUEUE_DOC, ud);
	} else if (p.aof == 1) {
		snprintf(detail, sizeof(detail), "append-only file%s%s",
			 p.appendfsync[0] ? ", appendfsync " : "", p.appendfsync);
		cb("redis durability", 0, detail, "", ud);
	} else if (p.aof < 0) {
		cb("redis durability", 1, "cannot tell whether Redis keeps its data: "
		   "it refused INFO persistence", "allow INFO to the worker's ACL "
		   "user (docs/redis-acl.conf)", ud);
	} else if (p.save_known && !p.save[0]) {
		cb("redis durability", 1, "Redis has no persistence (no append-only "
		   "file, no RDB save points): a restart loses every queued task; "
		   "the ledger reconciler puts back those PostgreSQL holds, after "
		   "ledger.stray_after_ms", AOF_FIX, ud);
	} else {
		cb("redis durability", 1, p.save_known ?
		   "Redis keeps RDB snapshots only (no append-only file): a restart "
		   "loses the tasks queued since the last snapshot; the ledger "
		   "reconciler puts them back, after ledger.stray_after_ms" :
		   "Redis has no append-only file (RDB save points unknown: CONFIG "
		   "is not sent to an ACL user): a restart loses what came since "
		   "its last snapshot, if it takes any", AOF_FIX, ud);
	}
}

void aeth__pg_durability(aeth_store *s, aeth_check_cb cb, void *ud)
{
	char sync_commit[32], fsync[16];

	if (aeth__store_durability(s, sync_commit, fsync) != 0)
		return;
	if (!strcmp(fsync, "off"))
		cb("postgresql fsync", 1, "fsync = off: a crash of the machine "
		   "can lose or corrupt committed rows, tasks included (the "
		   "development cluster of scripts/services.sh runs so)",
		   "fsync = on in postgresql.conf (the default)", ud);
	if (!strcmp(sync_commit, "off"))
		cb("postgresql durability", 1, "synchronous_commit = off: a crash of "
		   "PostgreSQL loses its last commits (up to 3 x wal_writer_delay, "
		   "0.6 s by default), which the queue may have acted on already; "
		   "the ledger reconciler repairs those tasks from Redis",
		   "synchronous_commit = on in postgresql.conf (the default), or "
		   "for the worker's role: ALTER ROLE ... SET synchronous_commit = on",
		   ud);
	if (strcmp(sync_commit, "off")) {
		char detail[96];

		snprintf(detail, sizeof(detail), "synchronous_commit = %s, fsync = %s",
			 sync_commit, fsync);
		cb("postgresql durability", 0, detail, "", ud);
	}
}
