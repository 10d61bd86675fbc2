/*
 * lib/worker/exec_glue.h - run a vm:execute payload through the exec
 * module and collect what the result and the executions row need.
 */
#ifndef AETH_WORKER_EXEC_GLUE_H
#define AETH_WORKER_EXEC_GLUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "aetherium/vm.h"
#include "task/task.h"

/* Output kept per stream: a result must fit the queue's 1 MiB payload. */
#define AETH__EXEC_OUTPUT_MAX (256 * 1024)

/* A cancelled command (shutdown grace over, lease lost, task past its
 * timeout) is killed; when the guest has not reported its end this long
 * after, the guest is taken for lost. Healthy guests answer a kill in
 * milliseconds; run.c's shutdown waits this plus its own margin. */
#define AETH__EXEC_CANCEL_GRACE_MS 3000

typedef struct {
	int exit_code;      /* 128+N when killed by signal N */
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
	bool out_truncated; /* output past AETH__EXEC_OUTPUT_MAX dropped */
	bool err_truncated;
	bool timed_out;     /* the command's timeout killed it */
	int signal;         /* the signal that ended it; 0: none */
	int64_t duration_ms; /* measured in the guest */
	const char *error;  /* borrowed: why it did not run, for the row */
	/* malloc'd, or NULL: the guest stopped answering, so its VMM was
	 * killed and the VM recorded failed (aeth__vm_fail) for this reason */
	char *lost;
} aeth__exec_out;

/*
 * Who else sees a command as it runs (may be NULL): `chunk` gets each
 * piece of output as it arrives (stream 1 stdout, 2 stderr), and
 * `cancelled`, asked about every POLL_MS while the command runs, may
 * say that the task was cancelled from outside (the API's cancel mark).
 */
typedef struct {
	void (*chunk)(int stream, const void *data, size_t len, void *userdata);
	bool (*cancelled)(void *userdata);
	void *userdata;
} aeth__exec_sink;

/*
 * 0 when the command ran (whatever its exit code); `cancel` non-zero
 * asks for it to be stopped. The command runs with the payload's
 * timeout_ms, else `default_timeout_ms`. Never waits on the guest past
 * that timeout + AETH_EXEC_WAIT_GRACE_MS, past AETH__EXEC_CANCEL_GRACE_MS
 * after a cancel, or once the agent stopped answering: then the guest is
 * lost (out->lost says why; the VM is failed already) and the return is
 * negative. Output received until then is in `out` either way.
 */
int aeth__worker_exec(aeth_vm *vm, const aeth__execute_payload *p,
		      unsigned int default_timeout_ms, atomic_int *cancel,
		      const aeth__exec_sink *sink, aeth__exec_out *out);
void aeth__exec_out_clear(aeth__exec_out *o);

#endif
