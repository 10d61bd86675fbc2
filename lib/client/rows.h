/*
 * lib/client/rows.h - tasks and vms rows as the client's JSON (rows.c).
 * Private to lib/client.
 */
#ifndef AETH_CLIENT_ROWS_H
#define AETH_CLIENT_ROWS_H

#include <stdbool.h>

#include "store/store_internal.h"

/* The task as JSON {id,type,status,queue,payload,result,error,vm_id,
 * worker_id,retry_count,max_retries,created_at,started_at,completed_at};
 * AETH_ENOTFOUND. *json_out is the caller's; *final (may be NULL) tells
 * whether its status is final (completed, failed, dead). */
int aeth__client_task_json(char **json_out, bool *final, aeth__rec *r,
			   const char *id);
/* The newest `limit` tasks (0: 20) as a JSON array of the objects above. */
int aeth__client_tasks_json(aeth__rec *r, unsigned int limit, char **json_out);
/* Every VM, oldest first, as a JSON array of {id,name,status,orchestrator,
 * vcpu_count,memory_mb,owner_worker,created_at,started_at,stopped_at,error}. */
int aeth__client_vms_json(aeth__rec *r, char **json_out);

#endif
