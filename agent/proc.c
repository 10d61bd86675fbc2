/*
 * agent/proc.c - running commands: fork/exec in a new process group,
 * pipes for stdin/stdout/stderr, output window and cap, timeouts, exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define MAX_CREDIT (1ull << 40)

extern char **environ;

static struct agent_exec *find_exec(struct agent *a, uint32_t id)
{
	for (int i = 0; i < AGENT_MAX_EXECS; i++)
		if (a->execs[i] && !a->execs[i]->silent &&
		    a->execs[i]->id == id)
			return a->execs[i];
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In the child: report why exec failed, on stderr and the errno pipe. */
static void child_fail(int err_pipe, const char *what, const char *name)
{
	int e = errno;

	dprintf(2, "aeth-agent: cannot %s '%s': %s\n", what, name,
		strerror(e));
	if (write(err_pipe, &e, sizeof(e)) < 0) {
		/* the parent will see exit 127 anyway */
	}
	_exit(127);
}

static void child_setenv(const aeth__proto_fields *f)
{
	for (size_t i = 0; i < f->nenvs; i++) {
		const char *eq = strchr(f->envs[i], '=');

		if (eq && eq != f->envs[i])
			putenv((char *)f->envs[i]);
		else
			unsetenv(f->envs[i]); /* "NAME" alone removes it */
	}
}

/*
 * In the child: become uid/gid when the host asked (protocol level 2),
 * before the working directory is entered, so that it and the command
 * are reached with the user's rights. Supplementary groups go first (only
 * gid stays), then the gid, then the uid (after which neither can change
 * back); a failure ends the child with exit 127, as a bad cwd does.
 */
static void child_drop_privileges(const aeth__proto_fields *f, int err_pipe)
{
	bool uid = AETH__PROTO_HAS(f, AETH__F_UID);
	bool gid = AETH__PROTO_HAS(f, AETH__F_GID);
	char who[64];
	gid_t g;

	if (!uid && !gid)
		return;
	snprintf(who, sizeof(who), "uid %llu gid %llu",
		 uid ? (unsigned long long)f->uid : (unsigned long long)getuid(),
		 gid ? (unsigned long long)f->gid : (unsigned long long)getgid());
	if ((uid && f->uid > (uid_t)-2) || (gid && f->gid > (gid_t)-2)) {
		errno = EINVAL;
		child_fail(err_pipe, "switch to", who);
	}
	g = gid ? (gid_t)f->gid : getgid();
	if (setgroups(1, &g) < 0 || (gid && setgid(g) < 0) ||
	    (uid && setuid((uid_t)f->uid) < 0))
		child_fail(err_pipe, "switch to", who);
	if (uid && f->uid != 0 && setuid(0) == 0) {
		errno = EPERM; /* must never happen: refuse to run as root */
		child_fail(err_pipe, "stay", who);
	}
}

static void child_run(const aeth__proto_fields *f, int fds[3], int err_pipe)
{
	sigset_t none;
	const char **argv = f->args;
	const char *sh[AETH__PROTO_MAX_LIST + 3];

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setpgid(0, 0);
	for (int i = 0; i < 3; i++) {
		if (dup2(fds[i], i) < 0)
			_exit(127);
	}
	for (int fd = 3; fd < 1024; fd++)
		if (fd != err_pipe)
			close(fd);
	child_setenv(f);
	child_drop_privileges(f, err_pipe);
	if (f->cwd && chdir(f->cwd) < 0)
		child_fail(err_pipe, "change to directory", f->cwd);
	if (f->shell) {
		sh[0] = "/bin/sh";
		sh[1] = "-c";
		for (size_t i = 0; i <= f->nargs; i++)
			sh[i + 2] = f->args[i];
		argv = sh;
	}
	execvp(argv[0], (char *const *)argv);
	child_fail(err_pipe, "run", argv[0]);
}

static int make_pipes(int child[3], int parent[3])
{
	int p[3][2];

	for (int i = 0; i < 3; i++) {
		if (pipe2(p[i], O_CLOEXEC) < 0) {
			for (int j = 0; j < i; j++) {
				close(p[j][0]);
				close(p[j][1]);
			}
			return -1;
		}
	}
	child[0] = p[0][0], parent[0] = p[0][1];
	child[1] = p[1][1], parent[1] = p[1][0];
	child[2] = p[2][1], parent[2] = p[2][0];
	for (int i = 0; i < 3; i++)
		agent_set_nonblock(parent[i]);
	return 0;
}

/* fork+exec; returns the pid (exec errno in *err) or -1 with errno. */
static pid_t spawn(const aeth__proto_fields *f, int parent[3], int *err)
{
	int child[3], ep[2];
	pid_t pid;
	ssize_t n;

	*err = 0;
	if (make_pipes(child, parent) < 0)
		return -1;
	if (pipe2(ep, O_CLOEXEC) < 0)
		goto fail;
	pid = fork();
	if (pid == 0) {
		close(ep[0]);
		child_run(f, child, ep[1]);
	}
	close(ep[1]);
	for (int i = 0; i < 3; i++)
		close(child[i]);
	if (pid < 0) {
		close(ep[0]);
		for (int i = 0; i < 3; i++)
			close(parent[i]);
		return -1;
	}
	setpgid(pid, pid); /* also in the child: no race on kill(-pid) */
	/* Blocks only until execvp succeeds (CLOEXEC closes the pipe). */
	do
		n = read(ep[0], err, sizeof(*err));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(*err))
		*err = 0;
	close(ep[0]);
	return pid;
fail:
	for (int i = 0; i < 3; i++) {
		close(child[i]);
		close(parent[i]);
	}
	return -1;
}

static int free_slot(struct agent *a)
{
	for (int i = 0; i < AGENT_MAX_EXECS; i++)
		if (!a->execs[i])
			return i;
	return -1;
}

static void send_started(struct agent *a, struct agent_exec *e)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, AETH__MSG_STARTED, e->id);
	aeth__proto_add_u64(&m, AETH__F_PID, (uint64_t)e->pid);
	aeth__proto_add_u64(&m, AETH__F_WINDOW, AETH__PROTO_STDIN_WINDOW);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
}

static bool exec_valid(struct agent *a, uint32_t id,
		       const aeth__proto_fields *f)
{
	if (id == 0 || find_exec(a, id)) {
		agent_send_error(a, id, AETH_EPROTO,
				 "exec request id %u is 0 or already in use",
				 id);
		return false;
	}
	if (f->nargs == 0 || f->args[0][0] == 0) {
		agent_send_error(a, id, AETH_EINVALID,
				 "exec without a command (empty argv)");
		return false;
	}
	return true;
}

void agent_exec_start(struct agent *a, uint32_t id,
		      const aeth__proto_fields *f)
{
	struct agent_exec *e;
	int slot, fds[3];

	if (!exec_valid(a, id, f))
		return;
	slot = free_slot(a);
	if (slot < 0) {
		agent_send_error(a, id, AETH_EBUSY,
				 "the agent already runs %d commands",
				 AGENT_MAX_EXECS);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		agent_send_error(a, id, AETH_ENOMEM, "agent out of memory");
		return;
	}
	e->id = id;
	e->limit = f->output_limit ? f->output_limit : AETH__PROTO_OUTPUT_LIMIT;
	e->credit = AETH__PROTO_HAS(f, AETH__F_WINDOW) ? f->window
						 : AETH__PROTO_OUTPUT_WINDOW;
	e->start_ms = agent_now_ms();
	if (f->timeout_ms)
		e->deadline_ms = e->start_ms + (int64_t)f->timeout_ms;
	e->pid = spawn(f, fds, &e->exec_errno);
	if (e->pid < 0) {
		agent_send_error(a, id, AETH_EIO, "cannot start '%s': %s",
				 f->args[0], strerror(errno));
		free(e);
		return;
	}
	e->in_fd = fds[0];
	e->out_fd[0] = fds[1];
	e->out_fd[1] = fds[2];
	if (!f->stdin_open)
		close_fd(&e->in_fd);
	a->execs[slot] = e;
	send_started(a, e);
}

static void stdin_frame(struct agent *a, struct agent_exec *e,
			const aeth__proto_header *h,
			const aeth__proto_fields *f)
{
	uint8_t *p;

	if (h->type == AETH__MSG_STDIN_CLOSE) {
		e->in_close = true;
		if (e->in_len == 0)
			close_fd(&e->in_fd);
		return;
	}
	if (e->in_close || f->data_len == 0)
		return;
	if (e->in_len + f->data_len > AETH__PROTO_STDIN_WINDOW) {
		agent_send_error(a, e->id, AETH_EPROTO,
				 "stdin sent beyond the granted window");
		return;
	}
	p = realloc(e->in_buf, e->in_len + f->data_len);
	if (!p)
		return;
	memcpy(p + e->in_len, f->data, f->data_len);
	e->in_buf = p;
	e->in_len += f->data_len;
}

void agent_exec_frame(struct agent *a, const aeth__proto_header *h,
		      const aeth__proto_fields *f)
{
	struct agent_exec *e = find_exec(a, h->id);

	if (e && e->exited && h->type == AETH__MSG_WINDOW) {
		/* Output still in the pipes after the exit needs window. */
		e->credit += f->window < MAX_CREDIT ? f->window : MAX_CREDIT;
		return;
	}
	if (!e || e->exited) {
		/* Racing with the exit: not an error worth a reply unless
		 * it is a signal the caller waits on. */
		if (h->type == AETH__MSG_SIGNAL && !e)
			agent_send_error(a, h->id, AETH_ENOTFOUND,
					 "no running command with id %u",
					 h->id);
		return;
	}
	switch (h->type) {
	case AETH__MSG_SIGNAL:
		if (f->signal < 1 || f->signal >= NSIG) {
			agent_send_error(a, h->id, AETH_EINVALID,
					 "bad signal number %llu",
					 (unsigned long long)f->signal);
			return;
		}
		kill(-e->pid, (int)f->signal);
		break;
	case AETH__MSG_WINDOW:
		e->credit += f->window < MAX_CREDIT ? f->window : MAX_CREDIT;
		if (e->credit > MAX_CREDIT)
			e->credit = MAX_CREDIT;
		break;
	default:
		stdin_frame(a, e, h, f);
		break;
	}
}

static void send_exit(struct agent *a, struct agent_exec *e)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	int code = -1, sig = 0;

	if (WIFEXITED(e->status))
		code = WEXITSTATUS(e->status);
	else if (WIFSIGNALED(e->status))
		sig = WTERMSIG(e->status);
	aeth__proto_msg_begin(&m, AETH__MSG_EXIT, e->id);
	aeth__proto_add_i64(&m, AETH__F_EXIT_CODE, code);
	aeth__proto_add_u64(&m, AETH__F_SIGNAL, (uint64_t)sig);
	aeth__proto_add_u64(&m, AETH__F_TIMED_OUT, e->timed_out);
	aeth__proto_add_u64(&m, AETH__F_STDOUT_TRUNC, e->trunc[0]);
	aeth__proto_add_u64(&m, AETH__F_STDERR_TRUNC, e->trunc[1]);
	aeth__proto_add_u64(&m, AETH__F_DURATION_MS,
			    (uint64_t)(agent_now_ms() - e->start_ms));
	if (e->exec_errno)
		aeth__proto_add_u64(&m, AETH__F_EXEC_ERRNO,
				    (uint64_t)e->exec_errno);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
}

static void exec_free(struct agent *a, int slot)
{
	struct agent_exec *e = a->execs[slot];

	close_fd(&e->in_fd);
	close_fd(&e->out_fd[0]);
	close_fd(&e->out_fd[1]);
	free(e->in_buf);
	free(e);
	a->execs[slot] = NULL;
}

/* Done when reaped and both pipes are at EOF (or lingered long enough). */
static void maybe_finish(struct agent *a, int slot)
{
	struct agent_exec *e = a->execs[slot];

	if (!e->exited || e->out_fd[0] >= 0 || e->out_fd[1] >= 0)
		return;
	if (!e->silent)
		send_exit(a, e);
	exec_free(a, slot);
}

void agent_exec_kill_all(struct agent *a, bool silent)
{
	for (int i = 0; i < AGENT_MAX_EXECS; i++) {
		struct agent_exec *e = a->execs[i];

		if (!e)
			continue;
		if (!e->exited)
			kill(-e->pid, SIGKILL);
		e->silent = e->silent || silent;
		close_fd(&e->in_fd);
		close_fd(&e->out_fd[0]);
		close_fd(&e->out_fd[1]);
		maybe_finish(a, i);
	}
}

void agent_reap(struct agent *a)
{
	int status;
	pid_t pid;

	/* Reaps every child, ours or orphans re-parented to PID 1. */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < AGENT_MAX_EXECS; i++) {
			struct agent_exec *e = a->execs[i];

			if (!e || e->pid != pid || e->exited)
				continue;
			e->exited = true;
			e->status = status;
			e->linger_ms = agent_now_ms() + AGENT_LINGER_MS;
			close_fd(&e->in_fd);
			if (e->timed_out) /* leftovers of a killed group */
				kill(-e->pid, SIGKILL);
			maybe_finish(a, i);
			break;
		}
	}
}

static bool wants_output(const struct agent *a, const struct agent_exec *e,
			 int s)
{
	if (e->out_fd[s] < 0 || agent_out_full(a))
		return false;
	return e->credit > 0 || e->sent[s] >= e->limit;
}

size_t agent_exec_pollfds(struct agent *a, struct pollfd *p, size_t max)
{
	size_t n = 0;

	for (int i = 0; i < AGENT_MAX_EXECS && n + 3 <= max; i++) {
		struct agent_exec *e = a->execs[i];

		if (!e)
			continue;
		for (int s = 0; s < 2; s++)
			if (wants_output(a, e, s))
				p[n++] = (struct pollfd){e->out_fd[s], POLLIN, 0};
		if (e->in_fd >= 0 && e->in_len > 0)
			p[n++] = (struct pollfd){e->in_fd, POLLOUT, 0};
	}
	return n;
}

static void send_output(struct agent *a, struct agent_exec *e, int s,
			const uint8_t *buf, size_t n)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	uint64_t room = e->limit - e->sent[s];
	size_t keep = n < room ? n : (size_t)room;

	if (keep < n)
		e->trunc[s] = true; /* the rest is read and dropped */
	if (keep == 0)
		return;
	aeth__proto_msg_begin(&m, AETH__MSG_OUTPUT, e->id);
	aeth__proto_add_u64(&m, AETH__F_STREAM, (uint64_t)s + 1);
	aeth__proto_add_bytes(&m, AETH__F_DATA, buf, keep);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
	e->sent[s] += keep;
	e->credit -= keep;
}

static void read_output(struct agent *a, int slot, int s)
{
	static uint8_t buf[AETH__PROTO_CHUNK];
	struct agent_exec *e = a->execs[slot];
	size_t want = sizeof(buf);
	ssize_t n;

	if (e->sent[s] < e->limit && e->credit < want)
		want = (size_t)e->credit;
	n = read(e->out_fd[s], buf, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_fd(&e->out_fd[s]);
		maybe_finish(a, slot);
		return;
	}
	e->linger_ms = agent_now_ms() + AGENT_LINGER_MS;
	send_output(a, e, s, buf, (size_t)n);
}

static void write_stdin(struct agent *a, struct agent_exec *e)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	ssize_t n = write(e->in_fd, e->in_buf, e->in_len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) /* EPIPE: the command stopped reading; drop the rest */
		n = (ssize_t)e->in_len;
	memmove(e->in_buf, e->in_buf + n, e->in_len - (size_t)n);
	e->in_len -= (size_t)n;
	aeth__proto_msg_begin(&m, AETH__MSG_STDIN_ACK, e->id);
	aeth__proto_add_u64(&m, AETH__F_WINDOW, (uint64_t)n);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
	if (e->in_len == 0 && e->in_close)
		close_fd(&e->in_fd);
}

void agent_exec_events(struct agent *a, const struct pollfd *p, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (!p[k].revents)
			continue;
		for (int i = 0; i < AGENT_MAX_EXECS; i++) {
			struct agent_exec *e = a->execs[i];

			if (!e)
				continue;
			if (p[k].fd == e->out_fd[0] || p[k].fd == e->out_fd[1]) {
				read_output(a, i, p[k].fd == e->out_fd[1]);
				break;
			}
			if (p[k].fd == e->in_fd) {
				write_stdin(a, e);
				break;
			}
		}
	}
}

static void check_timers(struct agent *a, int slot, int64_t now)
{
	struct agent_exec *e = a->execs[slot];

	if (!e->exited && e->deadline_ms && now >= e->deadline_ms &&
	    !e->timed_out) {
		e->timed_out = true;
		kill(-e->pid, SIGTERM);
		e->kill_at_ms = now + AGENT_KILL_GRACE_MS;
	}
	if (!e->exited && e->kill_at_ms && now >= e->kill_at_ms) {
		kill(-e->pid, SIGKILL);
		e->kill_at_ms = 0;
	}
	/* A background child holds the pipes after the command exited.
	 * Do not give up while output waits on the host's window. */
	if (e->exited && now >= e->linger_ms && e->credit > 0 &&
	    !agent_out_full(a)) {
		close_fd(&e->out_fd[0]);
		close_fd(&e->out_fd[1]);
		maybe_finish(a, slot);
	}
}

/* Runs the timers; returns the poll timeout until the next one (-1). */
int agent_exec_timers(struct agent *a, int64_t now)
{
	int64_t next = -1;

	for (int i = 0; i < AGENT_MAX_EXECS; i++) {
		struct agent_exec *e;
		int64_t t[3];

		if (!a->execs[i])
			continue;
		check_timers(a, i, now);
		e = a->execs[i];
		if (!e)
			continue;
		t[0] = !e->exited && !e->timed_out ? e->deadline_ms : 0;
		t[1] = !e->exited ? e->kill_at_ms : 0;
		/* No lingering timer while output waits for a window or
		 * the host: a frame or POLLOUT wakes the loop then. */
		t[2] = e->exited && e->credit > 0 && !agent_out_full(a)
			       ? e->linger_ms : 0;
		for (int k = 0; k < 3; k++)
			if (t[k] && (next < 0 || t[k] < next))
				next = t[k];
	}
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}
