/*
 * lib/worker/exec_glue.h - run a vm:execute payload through the exec
 * module and collect what the result and the executions row need.
 */
#ifndef AETH_WORKER_EXEC_GLUE_H
#define AETH_WORKER_EXEC_GLUE_H

#include <stdatomic.h>
#include <stddef.h>

#include "aetherium/vm.h"
#include "worker/payload.h"

/* Output kept per stream: a result must fit the queue's 1 MiB payload. */
#define AETH__EXEC_OUTPUT_MAX (256 * 1024)

typedef struct {
	int exit_code;      /* 128+N when killed by signal N */
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
	const char *error;  /* borrowed: why it did not run, for the row */
} aeth__exec_out;

/* 0 when the command ran (whatever its exit code); `cancel` non-zero
 * asks for it to be stopped. */
int aeth__worker_exec(aeth_vm *vm, const aeth__execute_payload *p,
		      atomic_int *cancel, aeth__exec_out *out);
void aeth__exec_out_clear(aeth__exec_out *o);

#endif
