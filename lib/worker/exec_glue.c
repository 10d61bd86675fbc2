/*
 * lib/worker/exec_glue.c - run a vm:execute payload with the exec module,
 * reading output as it comes so that a cancelled task (shutdown grace
 * over, lease lost, task timeout) kills the command instead of waiting.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "aetherium/exec.h"
#include "internal.h"
#include "worker/exec_glue.h"

#define TIMEOUT_NOTE "\n[aetherium: command killed after its timeout]\n"
#define CANCEL_NOTE "\n[aetherium: command killed: the task was cancelled]\n"

static void keep(aeth__buf *b, const void *data, size_t len)
{
	if (aeth__buf_append(b, data, len) != 0)
		b->truncated = true;
}

int aeth__worker_exec(aeth_vm *vm, const aeth__execute_payload *p,
		      atomic_int *cancel, aeth__exec_out *out)
{
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth__buf so = AETH__BUF_INIT, se = AETH__BUF_INIT;
	aeth_exec_result *res = NULL;
	aeth_exec *e = NULL;
	bool killed = false;
	int rc;

	memset(out, 0, sizeof(*out));
	so.limit = se.limit = AETH__EXEC_OUTPUT_MAX;
	o.argv = (const char *const *)p->argv;
	o.env = (const char *const *)p->env;
	o.cwd = p->cwd;
	o.stdin_data = p->stdin_data;
	o.stdin_len = p->stdin_len;
	o.timeout_ms = p->timeout_ms;
	o.output_limit = AETH__EXEC_OUTPUT_MAX;
	if ((rc = aeth_exec_start(&e, vm, &o)) != 0)
		return rc;
	for (;;) {
		aeth_exec_stream stream;
		const void *data;
		size_t len;

		rc = aeth_exec_next(e, &stream, &data, &len, 500);
		if (rc == 1) {
			keep(stream == AETH_STREAM_STDERR ? &se : &so, data, len);
			continue;
		}
		if (rc == AETH_ETIMEOUT) {
			if (!killed && cancel && atomic_load(cancel)) {
				aeth_exec_kill(e, SIGKILL);
				killed = true;
			}
			continue;
		}
		break;
	}
	if (rc == 0)
		rc = aeth_exec_wait(&res, e);
	aeth_exec_free(e);
	if (rc != 0) {
		aeth__buf_free(&so);
		aeth__buf_free(&se);
		return rc;
	}
	/* output not taken by aeth_exec_next() is in the result */
	if (res->stdout_data)
		keep(&so, res->stdout_data, res->stdout_len);
	if (res->stderr_data)
		keep(&se, res->stderr_data, res->stderr_len);
	out->exit_code = res->term_signal ? 128 + res->term_signal : res->exit_code;
	if (res->timed_out)
		keep(&se, TIMEOUT_NOTE, strlen(TIMEOUT_NOTE));
	else if (killed)
		keep(&se, CANCEL_NOTE, strlen(CANCEL_NOTE));
	aeth_exec_result_free(res);
	out->out = aeth__buf_detach(&so, &out->out_len);
	out->err = aeth__buf_detach(&se, &out->err_len);
	return 0;
}

void aeth__exec_out_clear(aeth__exec_out *o)
{
	free(o->out);
	free(o->err);
	memset(o, 0, sizeof(*o));
}
