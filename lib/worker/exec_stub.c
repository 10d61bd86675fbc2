/*
 * lib/worker/exec_stub.c - stands in for exec_glue.c while the exec
 * module (lib/agent/exec.c) is not in the tree, so the worker builds.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "worker/exec_glue.h"

int aeth__worker_exec(aeth_vm *vm, const aeth__execute_payload *p,
		      atomic_int *cancel, aeth__exec_out *out)
{
	(void)vm;
	(void)p;
	(void)cancel;
	memset(out, 0, sizeof(*out));
	return aeth__error_set(AETH_EUNAVAILABLE, "this build has no exec module "
			       "(lib/agent/exec.c)");
}

void aeth__exec_out_clear(aeth__exec_out *o)
{
	free(o->out);
	free(o->err);
	memset(o, 0, sizeof(*o));
}
