/*
 * lib/client/client_internal.h - what other modules use of the client
 * module: the checks submitters and forwarding workers make against the
 * queue's worker registry (aeth_queue_worker_*; lib/client/registry.c).
 */
#ifndef AETH_CLIENT_INTERNAL_H
#define AETH_CLIENT_INTERNAL_H

#include "aetherium/queue.h"

/*
 * Is `owner`, the worker owning VM `vm_id`, running? 0 when its entry is
 * alive, or when the registry does not know it (no entry: e.g. Redis lost
 * its data, or the registry could not be read; the task then waits in the
 * owner's queue as before). AETH_ESTATE with the message "VM X is owned by
 * worker W, which is not running (...): start it again with -id W ..."
 * when the entry is dead or stopped.
 */
int aeth__owner_check(aeth_queue *q, const char *vm_id, const char *owner);

/*
 * May a task of the non-built-in `type` be submitted to `queue`? 0 when a
 * live worker registered a handler for it and takes tasks from that
 * queue; AETH_EINVALID naming the built-in types and what the live
 * workers handle (and on which queues) otherwise.
 */
int aeth__type_check(aeth_queue *q, const char *type, const char *queue);

#endif
