/*
 * lib/worker/exec_glue.c - run a vm:execute payload with the exec module,
 * reading output as it comes so that a cancelled task (shutdown grace
 * over, lease lost, task timeout) kills the command instead of waiting,
 * and a guest that stops answering is given up on and its VM failed
 * instead of holding the slot.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "aetherium/exec.h"
#include "internal.h"
#include "vm/vm_internal.h"
#include "metrics/metrics.h"
#include "worker/exec_glue.h"

#define TIMEOUT_NOTE "\n[aetherium: command killed after its timeout]\n"
#define CANCEL_NOTE "\n[aetherium: command killed: the task was cancelled]\n"
/* How often the wait looks at the cancel flag and the deadlines: a task
 * past its timeout_ms is cancelled within this (plus the kill). */
#define POLL_MS 50

static void keep(aeth__buf *b, const void *data, size_t len)
{
	if (aeth__buf_append(b, data, len) != 0)
		b->truncated = true;
}

/*
 * The guest is lost for the reason `why` (malloc'd, taken; NULL if out
 * of memory): kill its VMM before anything else talks to it (a frame to
 * a guest that reads nothing could wait for its send deadline) and
 * record the VM failed. Returns `rc` for the caller to pass on.
 */
static int give_up(aeth_vm *vm, aeth__exec_out *out, int rc, char *why)
{
	out->lost = why ? why : strdup("the guest stopped answering");
	out->exit_code = -1;
	if (aeth__vm_fail(vm, out->lost ? out->lost : "lost") != 0)
		aeth__warn("VM %s: recording it failed: %s", aeth_vm_id(vm),
			   aeth_error_last());
	return aeth__error_set(rc, "%s", out->lost ? out->lost : "lost");
}

/* A failure of the exec module that means the guest no longer answers
 * (as opposed to a refusal the agent sent, or a bad request). */
static bool guest_silent(int rc)
{
	return rc == AETH_ETIMEOUT || rc == AETH_EUNAVAILABLE;
}

/* Take output until the command exits, it is cancelled and does not
 * end, or a deadline passes. 0 (exited), or negative with out->lost set
 * or the exec module's error. */
static int pump(aeth_exec *e, aeth_vm *vm, unsigned int timeout_ms,
		atomic_int *cancel, const aeth__exec_sink *sink, aeth__buf *so,
		aeth__buf *se, bool *killed, aeth__exec_out *out)
{
	int64_t deadline = aeth__now_ms() + timeout_ms + AETH_EXEC_WAIT_GRACE_MS;
	int64_t kill_deadline = 0;

	for (;;) {
		aeth_exec_stream stream;
		const void *data;
		size_t len;
		int64_t now;
		int rc = aeth_exec_next(&stream, &data, &len, e, POLL_MS);

		if (rc == 1) {
			keep(stream == AETH_STREAM_STDERR ? se : so, data, len);
			if (sink && sink->chunk)
				sink->chunk(stream == AETH_STREAM_STDERR ? 2 : 1, data,
					    len, sink->userdata);
			continue;
		}
		if (rc == 0)
			return 0;
		if (rc != AETH_ETIMEOUT && !guest_silent(rc))
			return rc;
		if (rc != AETH_ETIMEOUT && !aeth__vm_vmm_alive(vm))
			return give_up(vm, out, rc, aeth__sprintf(
				       "its VMM process (pid %d) exited "
				       "unexpectedly while the command ran",
				       aeth_vm_pid(vm)));
		if (rc != AETH_ETIMEOUT)
			return give_up(vm, out, rc, aeth__sprintf("the agent of "
				       "VM %s stopped answering while the command "
				       "ran: %s", aeth_vm_id(vm),
				       aeth_error_last()));
		now = aeth__now_ms();
		if (!*killed && ((cancel && atomic_load(cancel)) ||
				 (sink && sink->cancelled &&
				  sink->cancelled(sink->userdata)))) {
			aeth_exec_kill(e, SIGKILL);
			*killed = true;
			kill_deadline = now + AETH__EXEC_CANCEL_GRACE_MS;
		}
		if (*killed && now >= kill_deadline)
			return give_up(vm, out, AETH_ETIMEOUT, aeth__sprintf(
				       "the task was cancelled (worker stopping, "
				       "lease lost or task timeout) and the guest "
				       "did not end the command within %d ms of "
				       "its kill", AETH__EXEC_CANCEL_GRACE_MS));
		if (now >= deadline)
			return give_up(vm, out, AETH_ETIMEOUT, aeth__sprintf(
				       "no exit report from the guest %d ms after "
				       "the command's timeout of %u ms (it halted "
				       "or hung)", AETH_EXEC_WAIT_GRACE_MS,
				       timeout_ms));
	}
}

int aeth__worker_exec(aeth_vm *vm, const aeth__execute_payload *p,
		      unsigned int default_timeout_ms, atomic_int *cancel,
		      const aeth__exec_sink *sink, aeth__exec_out *out)
{
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth__buf so = AETH__BUF_INIT, se = AETH__BUF_INIT;
	aeth_exec_result *res = NULL;
	aeth_exec *e = NULL;
	bool killed = false;
	int64_t t0 = aeth__now_ms();
	int rc;

	memset(out, 0, sizeof(*out));
	so.limit = se.limit = AETH__EXEC_OUTPUT_MAX;
	o.argv = (const char *const *)p->argv;
	o.env = (const char *const *)p->env;
	o.cwd = p->cwd;
	o.stdin_data = p->stdin_data;
	o.stdin_len = p->stdin_len;
	o.timeout_ms = p->timeout_ms ? p->timeout_ms : default_timeout_ms;
	o.output_limit = AETH__EXEC_OUTPUT_MAX;
	if ((rc = aeth_exec_start(&e, vm, &o)) != 0)
		return guest_silent(rc) ?
		       give_up(vm, out, rc, aeth__sprintf("the agent of VM %s "
			       "did not start the command: %s", aeth_vm_id(vm),
			       aeth_error_last())) : rc;
	rc = pump(e, vm, o.timeout_ms, cancel, sink, &so, &se, &killed, out);
	if (rc == 0)
		rc = aeth_exec_wait(&res, e);
	aeth_exec_free(e); /* after give_up: the VMM is gone, no frame waits */
	aeth__metric_observe(AETH__M_EXEC_SECONDS,
			     (double)(aeth__now_ms() - t0) / 1000.0, NULL, NULL);
	if (rc == 0) {
		/* output not taken by aeth_exec_next() is in the result */
		if (res->stdout_data)
			keep(&so, res->stdout_data, res->stdout_len);
		if (res->stderr_data)
			keep(&se, res->stderr_data, res->stderr_len);
		out->exit_code = res->term_signal ? 128 + res->term_signal :
			res->exit_code;
		out->signal = res->term_signal;
		out->timed_out = res->timed_out != 0;
		out->duration_ms = res->duration_ms;
		so.truncated = so.truncated || res->stdout_truncated;
		se.truncated = se.truncated || res->stderr_truncated;
		if (res->timed_out)
			keep(&se, TIMEOUT_NOTE, strlen(TIMEOUT_NOTE));
		else if (killed)
			keep(&se, CANCEL_NOTE, strlen(CANCEL_NOTE));
		aeth_exec_result_free(res);
	}
	out->out_truncated = so.truncated;
	out->err_truncated = se.truncated;
	out->out = aeth__buf_detach(&so, &out->out_len);
	out->err = aeth__buf_detach(&se, &out->err_len);
	return rc;
}

void aeth__exec_out_clear(aeth__exec_out *o)
{
	free(o->out);
	free(o->err);
	free(o->lost);
	memset(o, 0, sizeof(*o));
}
