/*
 * lib/agent/client_exec.c - commands over an agent connection: start,
 * stdin within the agent's window, pulling output (which grants the
 * agent more window), kill, wait and the collecting/streaming forms.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"

struct aeth_exec {
	aeth__agent *a;
	struct aeth__req *r;
	char *name;               /* argv[0], for messages */
	struct aeth__chunk *cur;  /* handed out by next(), freed after */
	uint8_t *pending;         /* stdin from the options, not yet sent */
	size_t pending_len, pending_off;
	bool close_after;         /* close stdin once pending is sent */
	bool stdin_closed;
	bool killed;
	unsigned int timeout_ms;  /* the command's, 0 = none */
	int64_t deadline;         /* for wait: timeout + grace; 0 = none */
	aeth__buf out[2];         /* output collected by wait() */
};

/* Highest uid/gid: (uid_t)-1 means "no change" to setuid() and friends. */
#define AETH__EXEC_ID_MAX 4294967294LL

static int build_exec(aeth__proto_msg *m, uint32_t id,
		      const aeth_exec_options *o)
{
	aeth__proto_msg_begin(m, AETH__MSG_EXEC, id);
	for (size_t i = 0; o->argv[i]; i++)
		aeth__proto_add_str(m, AETH__F_ARG, o->argv[i]);
	for (size_t i = 0; o->env && o->env[i]; i++)
		aeth__proto_add_str(m, AETH__F_ENV, o->env[i]);
	aeth__proto_add_str(m, AETH__F_CWD, o->cwd);
	if (o->timeout_ms)
		aeth__proto_add_u64(m, AETH__F_TIMEOUT_MS, o->timeout_ms);
	if (o->output_limit)
		aeth__proto_add_u64(m, AETH__F_OUTPUT_LIMIT, o->output_limit);
	if (o->shell)
		aeth__proto_add_u64(m, AETH__F_SHELL, 1);
	aeth__proto_add_u64(m, AETH__F_STDIN_OPEN,
			    o->keep_stdin_open || o->stdin_len > 0);
	aeth__proto_add_u64(m, AETH__F_WINDOW, AETH__PROTO_OUTPUT_WINDOW);
	if (o->uid >= 0)
		aeth__proto_add_u64(m, AETH__F_UID, (uint64_t)o->uid);
	if (o->gid >= 0)
		aeth__proto_add_u64(m, AETH__F_GID, (uint64_t)o->gid);
	return m->error;
}

/* `o` is a current-version struct: lib/vm/exec.c copied the caller's. */
static int check_options(const aeth_exec_options *o)
{
	if (!o || !o->argv || !o->argv[0] || !o->argv[0][0])
		return aeth__error_set(AETH_EINVALID, "exec needs a command: "
				       "set options.argv (NULL-terminated)");
	if (o->stdin_len && !o->stdin_data)
		return aeth__error_set(AETH_EINVALID, "stdin_len without "
				       "stdin_data");
	if (o->uid < -1 || o->uid > AETH__EXEC_ID_MAX ||
	    o->gid < -1 || o->gid > AETH__EXEC_ID_MAX)
		return aeth__error_set(AETH_EINVALID, "exec: uid %lld / gid %lld "
				       "out of range (-1 for the agent's own, or "
				       "0..%lld)", (long long)o->uid,
				       (long long)o->gid,
				       (long long)AETH__EXEC_ID_MAX);
	return 0;
}

/* A uid/gid needs an agent that knows the fields (level 2): an older one
 * would skip them and run the command as root. */
static int check_level(aeth__agent *a, const aeth_exec_options *o)
{
	if (o->uid < 0 && o->gid < 0)
		return 0;
	return aeth__agent_need_level(a, 2, "running a command as another "
				      "user (uid/gid)");
}

/* Wait for STARTED (0) or the agent's refusal. */
static int wait_started(aeth_exec *e)
{
	int64_t deadline = aeth__now_ms() + e->a->reply_ms;
	aeth__agent *a = e->a;
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	while (!e->r->started && !e->r->done && !a->dead && rc == 0)
		rc = aeth__agent_wait_locked(a, deadline);
	if (e->r->started)
		rc = 0;
	else if (e->r->done)
		rc = aeth__req_error(a, e->r, "starting the command");
	else if (a->dead)
		rc = aeth__agent_dead_error(a);
	else
		rc = aeth__error_set(AETH_ETIMEOUT, "the agent of %s did not "
				     "start '%s' within %u ms", a->peer,
				     e->name, a->reply_ms);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static int setup(aeth_exec *e, const aeth_exec_options *o)
{
	e->name = aeth__strdup(o->argv[0]);
	if (o->stdin_len) {
		e->pending = malloc(o->stdin_len);
		if (!e->pending)
			return aeth__error_oom();
		memcpy(e->pending, o->stdin_data, o->stdin_len);
		e->pending_len = o->stdin_len;
	}
	/* The agent drops output past the limit, but the guest runs
	 * untrusted code as root and may not: keep the cap here too, so a
	 * collecting wait() never holds more than output_limit per stream. */
	e->out[0].limit = e->out[1].limit =
		o->output_limit ? o->output_limit : AETH__PROTO_OUTPUT_LIMIT;
	e->close_after = !o->keep_stdin_open;
	e->stdin_closed = !o->keep_stdin_open && !o->stdin_len;
	e->timeout_ms = o->timeout_ms;
	return e->name ? 0 : AETH_ENOMEM;
}

int aeth__agent_exec_start(aeth_exec **out, aeth__agent *a,
			   const aeth_exec_options *opts)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	aeth_exec *e;
	int rc;

	*out = NULL;
	if ((rc = check_options(opts)) != 0 || (rc = check_level(a, opts)) != 0)
		return rc;
	e = calloc(1, sizeof(*e));
	if (!e)
		return aeth__error_oom();
	e->a = a;
	rc = setup(e, opts);
	if (rc == 0 && !(e->r = aeth__req_new(a)))
		rc = AETH_ENOMEM;
	if (rc == 0 && (rc = build_exec(&m, e->r->id, opts)) != 0)
		rc = aeth__error_set(rc, "command '%s': argv and env exceed "
				     "the 1 MiB frame limit", e->name);
	if (rc == 0)
		rc = aeth__agent_send(a, &m);
	if (rc == 0)
		rc = wait_started(e);
	/* The agent's timer runs from the start it just confirmed. */
	if (rc == 0 && e->timeout_ms)
		e->deadline = aeth__now_ms() + e->timeout_ms +
			      AETH_EXEC_WAIT_GRACE_MS;
	aeth__proto_msg_free(&m);
	if (rc) {
		aeth__exec_free(e);
		return rc;
	}
	*out = e;
	return 0;
}

static int send_simple(aeth_exec *e, uint8_t type, uint8_t tag, uint64_t v)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	int rc;

	aeth__proto_msg_begin(&m, type, e->r->id);
	if (tag)
		aeth__proto_add_u64(&m, tag, v);
	rc = aeth__agent_send(e->a, &m);
	aeth__proto_msg_free(&m);
	return rc;
}

/* Send up to what the agent's stdin window allows; never blocks long. */
static int send_stdin(aeth_exec *e, const uint8_t *p, size_t len,
		      size_t *sent)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	int rc = 0;

	*sent = 0;
	while (rc == 0 && *sent < len) {
		size_t n = len - *sent;
		bool done;

		pthread_mutex_lock(&e->a->mu);
		done = e->r->done; /* exited: the rest is dropped */
		if (!done && n > e->r->stdin_credit)
			n = (size_t)e->r->stdin_credit;
		if (!done && n > AETH__PROTO_CHUNK)
			n = AETH__PROTO_CHUNK;
		if (!done)
			e->r->stdin_credit -= n;
		pthread_mutex_unlock(&e->a->mu);
		if (n == 0)
			break;
		if (!done) {
			aeth__proto_msg_begin(&m, AETH__MSG_STDIN, e->r->id);
			aeth__proto_add_bytes(&m, AETH__F_DATA, p + *sent, n);
			rc = aeth__agent_send(e->a, &m);
		}
		*sent += n;
	}
	aeth__proto_msg_free(&m);
	return rc;
}

/* Feed the stdin given in the options, then close it if asked. */
static int pump_stdin(aeth_exec *e)
{
	size_t n;
	int rc = 0;

	if (e->pending_off < e->pending_len) {
		rc = send_stdin(e, e->pending + e->pending_off,
				e->pending_len - e->pending_off, &n);
		e->pending_off += n;
	}
	if (rc == 0 && e->pending_off == e->pending_len && e->close_after &&
	    !e->stdin_closed) {
		e->stdin_closed = true;
		rc = send_simple(e, AETH__MSG_STDIN_CLOSE, 0, 0);
	}
	return rc;
}

int aeth__exec_next(aeth_exec *e, aeth_exec_stream *stream,
		    const void **data, size_t *len, unsigned int timeout_ms)
{
	int64_t deadline = timeout_ms ? aeth__now_ms() + timeout_ms : 0;
	aeth__agent *a = e->a;
	struct aeth__chunk *c = NULL;
	bool done = false;
	int rc = 0;

	free(e->cur);
	e->cur = NULL;
	for (;;) {
		if ((rc = pump_stdin(e)) != 0)
			return rc;
		pthread_mutex_lock(&a->mu);
		if ((c = aeth__req_pop_locked(a, e->r)) != NULL) {
			done = e->r->done;
		} else if (e->r->done) {
			rc = e->r->rc ? aeth__req_error(a, e->r, "the command")
				      : 0;
		} else if (a->dead) {
			rc = aeth__agent_dead_error(a);
		} else if (aeth__agent_wait_locked(a, deadline) != 0) {
			rc = aeth__error_set(AETH_ETIMEOUT, "no output from "
					     "'%s' within %u ms", e->name,
					     timeout_ms);
		} else {
			pthread_mutex_unlock(&a->mu);
			continue;
		}
		pthread_mutex_unlock(&a->mu);
		break;
	}
	if (!c)
		return rc;
	e->cur = c;
	*stream = (aeth_exec_stream)c->stream;
	*data = c->data;
	*len = c->len;
	/* Taken by the caller: the agent may send that much more. */
	if (!done)
		send_simple(e, AETH__MSG_WINDOW, AETH__F_WINDOW, c->len);
	return 1;
}

int aeth__exec_write_stdin(aeth_exec *e, const void *data, size_t len,
			   unsigned int timeout_ms)
{
	int64_t deadline = timeout_ms ? aeth__now_ms() + timeout_ms : 0;
	aeth__agent *a = e->a;
	size_t off = 0, n;
	int rc;

	if (e->stdin_closed || e->close_after)
		return aeth__error_set(AETH_ESTATE, "stdin of '%s' is closed "
				       "(set keep_stdin_open to write to it)",
				       e->name);
	while ((rc = pump_stdin(e)) == 0) {
		if (e->pending_off == e->pending_len) {
			rc = send_stdin(e, (const uint8_t *)data + off,
					len - off, &n);
			off += n;
			if (rc || off == len)
				break;
		}
		pthread_mutex_lock(&a->mu);
		while (e->r->stdin_credit == 0 && !e->r->done && !a->dead &&
		       rc == 0)
			rc = aeth__agent_wait_locked(a, deadline);
		if (!e->r->done && a->dead)
			rc = aeth__agent_dead_error(a);
		else if (rc)
			rc = aeth__error_set(rc, "'%s' did not take its stdin "
					     "within %u ms (is its output "
					     "being read?)", e->name, timeout_ms);
		pthread_mutex_unlock(&a->mu);
		if (rc)
			break;
	}
	return rc;
}

int aeth__exec_close_stdin(aeth_exec *e)
{
	e->close_after = true;
	return pump_stdin(e);
}

int aeth__exec_kill(aeth_exec *e, int signo)
{
	bool done;

	if (signo < 1 || signo >= 65)
		return aeth__error_set(AETH_EINVALID, "bad signal %d", signo);
	pthread_mutex_lock(&e->a->mu);
	done = e->r->done;
	pthread_mutex_unlock(&e->a->mu);
	if (done)
		return 0;
	return send_simple(e, AETH__MSG_SIGNAL, AETH__F_SIGNAL,
			   (uint64_t)signo);
}

static aeth_exec_result *make_result(aeth_exec *e, bool collect)
{
	aeth_exec_result *res = calloc(1, sizeof(*res));
	const aeth__proto_fields *x = &e->r->exit;

	if (!res) {
		aeth__error_oom();
		return NULL;
	}
	res->version = AETH_EXEC_RESULT_VERSION;
	res->exit_code = (int)x->exit_code;
	res->term_signal = (int)x->signal;
	res->timed_out = x->timed_out != 0;
	res->stdout_truncated = x->stdout_trunc != 0 || e->out[0].truncated;
	res->stderr_truncated = x->stderr_trunc != 0 || e->out[1].truncated;
	res->duration_ms = (int64_t)x->duration_ms;
	res->exec_errno = (int)x->exec_errno;
	if (collect) {
		res->stdout_data = aeth__buf_detach(&e->out[0], &res->stdout_len);
		res->stderr_data = aeth__buf_detach(&e->out[1], &res->stderr_len);
		if (!res->stdout_data)
			res->stdout_data = calloc(1, 1);
		if (!res->stderr_data)
			res->stderr_data = calloc(1, 1);
		if (!res->stdout_data || !res->stderr_data) {
			aeth__exec_result_free(res);
			aeth__error_oom();
			return NULL;
		}
	}
	return res;
}

/* Drain output to the end, into e->out or to cb. */
static int drain(aeth_exec *e, aeth_exec_output_cb cb, void *userdata)
{
	for (;;) {
		aeth_exec_stream s;
		const void *d;
		size_t n;
		int64_t left = e->deadline ? e->deadline - aeth__now_ms() : 0;
		int rc;

		if (e->deadline && left <= 0)
			return aeth__error_set(AETH_ETIMEOUT, "'%s' in %s: no "
					       "exit report from the agent %d ms "
					       "after the command's timeout of "
					       "%u ms (the guest may have hung or "
					       "halted: stop the VM)", e->name,
					       e->a->peer, AETH_EXEC_WAIT_GRACE_MS,
					       e->timeout_ms);
		rc = aeth__exec_next(e, &s, &d, &n, (unsigned int)left);
		if (rc == AETH_ETIMEOUT && e->deadline)
			continue; /* the loop head reports it */
		if (rc <= 0)
			return rc;
		if (cb) {
			if (!e->killed && cb(s, d, n, userdata) != 0) {
				e->killed = true;
				aeth__exec_kill(e, SIGKILL);
			}
		} else if (aeth__buf_append(&e->out[s - 1], d, n)) {
			return AETH_ENOMEM;
		}
	}
}

static int wait_common(aeth_exec_result **out, aeth_exec *e,
		       aeth_exec_output_cb cb, void *userdata, bool collect)
{
	aeth_exec_result *res;
	int rc = drain(e, cb, userdata);

	if (out)
		*out = NULL;
	if (rc)
		return rc;
	if (!out)
		return 0;
	res = make_result(e, collect);
	if (!res)
		return AETH_ENOMEM;
	*out = res;
	return 0;
}

int aeth__exec_wait(aeth_exec_result **out, aeth_exec *e)
{
	return wait_common(out, e, NULL, NULL, true);
}

int aeth__agent_exec(aeth_exec_result **out, aeth__agent *a,
		     const aeth_exec_options *opts)
{
	aeth_exec *e;
	int rc = aeth__agent_exec_start(&e, a, opts);

	*out = NULL;
	if (rc)
		return rc;
	rc = wait_common(out, e, NULL, NULL, true);
	aeth__exec_free(e);
	return rc;
}

int aeth__agent_exec_stream(aeth_exec_result **out, aeth__agent *a,
			    const aeth_exec_options *opts,
			    aeth_exec_output_cb cb, void *userdata)
{
	aeth_exec *e;
	int rc;

	if (out)
		*out = NULL;
	if (!cb)
		return aeth__error_set(AETH_EINVALID, "exec_stream needs a "
				       "callback");
	rc = aeth__agent_exec_start(&e, a, opts);
	if (rc)
		return rc;
	rc = wait_common(out, e, cb, userdata, false);
	aeth__exec_free(e);
	return rc;
}

void aeth__exec_free(aeth_exec *e)
{
	if (!e)
		return;
	if (e->r) {
		bool running;

		pthread_mutex_lock(&e->a->mu);
		running = !e->r->done && !e->a->dead && e->r->started;
		pthread_mutex_unlock(&e->a->mu);
		if (running)
			send_simple(e, AETH__MSG_SIGNAL, AETH__F_SIGNAL, SIGKILL);
		aeth__req_free(e->a, e->r);
	}
	free(e->cur);
	free(e->pending);
	free(e->name);
	aeth__buf_free(&e->out[0]);
	aeth__buf_free(&e->out[1]);
	free(e);
}

void aeth__exec_result_free(aeth_exec_result *r)
{
	if (!r)
		return;
	free(r->stdout_data);
	free(r->stderr_data);
	free(r);
}
