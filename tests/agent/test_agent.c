/*
 * The real aeth-agent as a local process (fork/exec of the built binary,
 * --fd over a socketpair or --listen-unix), driven by the library's
 * client: exec, streams, stdin, env, cwd, timeouts, caps, concurrency,
 * files, bad frames, reconnects, kill, a dying connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_client.h"
#include "internal.h"
#include "proto/proto.h"

static const char *agent_bin;
static char tmpdir[64];
/* Every agent started, killed at exit even when a test failed midway. */
static pid_t spawned[64];
static int nspawned;

struct fixture {
	pid_t pid;
	aeth__agent *a;
};

static pid_t spawn_agent(char *const argv_extra[], int keep_fd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[8] = {(char *)agent_bin};
		int n = 1;

		if (keep_fd >= 0 && keep_fd != 3) {
			dup2(keep_fd, 3);
			close(keep_fd);
		}
		for (int i = 0; argv_extra[i]; i++)
			argv[n++] = argv_extra[i];
		argv[n] = NULL;
		execv(agent_bin, argv);
		_exit(127);
	}
	if (nspawned < 64)
		spawned[nspawned++] = pid;
	return pid;
}

static void reap(pid_t pid)
{
	for (int i = 0; i < 300; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char *args[] = {"--fd", "3", NULL};
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fx->pid = spawn_agent(args, sv[1]);
	close(sv[1]);
	assert_int_equal(aeth__agent_open(&fx->a, sv[0], "local agent"), 0);
	assert_int_equal(aeth__agent_hello(fx->a, 5000, NULL), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	aeth__agent_free(fx->a); /* EOF: the agent exits */
	reap(fx->pid);
	free(fx);
	return 0;
}

static aeth_exec_result *run(aeth__agent *a, const char *const *argv,
			     aeth_exec_options *o)
{
	aeth_exec_options def = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	int rc;

	if (!o)
		o = &def;
	o->argv = argv;
	rc = aeth__agent_exec(&r, a, o);
	if (rc)
		fail_msg("exec %s: %s", argv[0], aeth_error_last());
	return r;
}

static void test_hello_info(void **state)
{
	struct fixture *fx = *state;
	char *info = NULL;

	assert_int_equal(aeth__agent_hello(fx->a, 5000, &info), 0);
	assert_non_null(strstr(info, "\"agent_version\":\"0.1.0\""));
	assert_non_null(strstr(info, "\"kernel\":"));
	assert_non_null(strstr(info, "\"uptime_ms\":"));
	free(info);
	assert_int_equal(aeth__agent_ping(fx->a, 5000), 0);
	assert_true(aeth__agent_alive(fx->a));
}

static void test_echo_and_exit_codes(void **state)
{
	struct fixture *fx = *state;
	const char *echo[] = {"echo", "hello", "world", NULL};
	const char *fail[] = {"sh", "-c", "echo oops >&2; exit 3", NULL};
	aeth_exec_result *r = run(fx->a, echo, NULL);

	assert_int_equal(r->version, AETH_EXEC_RESULT_VERSION); /* docs/api.md */
	assert_int_equal(r->exit_code, 0);
	assert_string_equal(r->stdout_data, "hello world\n");
	assert_int_equal(r->stderr_len, 0);
	assert_int_equal(r->term_signal, 0);
	aeth__exec_result_free(r);
	r = run(fx->a, fail, NULL);
	assert_int_equal(r->exit_code, 3);
	assert_string_equal(r->stderr_data, "oops\n");
	assert_int_equal(r->stdout_len, 0);
	aeth__exec_result_free(r);
}

static void test_stdin_env_cwd_shell(void **state)
{
	struct fixture *fx = *state;
	const char *cat[] = {"cat", NULL};
	const char *envcmd[] = {"sh", "-c", "echo $FOO-$BAR; pwd", NULL};
	const char *shcmd[] = {"echo $0 $1 | tr a-z A-Z", "x", "y", NULL};
	const char *env[] = {"FOO=foo", "BAR=bar", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	size_t big = 3 << 20; /* > windows: stdin and output flow control */
	char *data = malloc(big);
	aeth_exec_result *r;

	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	o.stdin_data = data;
	o.stdin_len = big;
	o.output_limit = big;
	r = run(fx->a, cat, &o);
	assert_int_equal(r->exit_code, 0);
	assert_int_equal(r->stdout_len, big);
	assert_memory_equal(r->stdout_data, data, big);
	assert_false(r->stdout_truncated);
	aeth__exec_result_free(r);
	free(data);

	o = (aeth_exec_options)AETH_EXEC_OPTIONS_INIT;
	o.env = env;
	o.cwd = "/tmp";
	r = run(fx->a, envcmd, &o);
	assert_string_equal(r->stdout_data, "foo-bar\n/tmp\n");
	aeth__exec_result_free(r);

	o = (aeth_exec_options)AETH_EXEC_OPTIONS_INIT;
	o.shell = 1;
	r = run(fx->a, shcmd, &o);
	assert_string_equal(r->stdout_data, "X Y\n");
	aeth__exec_result_free(r);
}

static bool pid_gone(pid_t pid)
{
	char path[64], st[256];
	FILE *fp;

	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		fp = fopen(path, "r");
		if (!fp)
			return true;
		/* A zombie waiting for its reaper counts as gone. */
		if (fgets(st, sizeof(st), fp) && strstr(st, ") Z "))
			return fclose(fp), true;
		fclose(fp);
		usleep(10000);
	}
	return false;
}

/* uid/gid (protocol level 2): the agent, root here as in a guest, drops
 * to the user before cwd and exec; the supplementary groups are the gid
 * alone. A cwd the user may not enter fails as a bad cwd does. */
static void test_run_as_user(void **state)
{
	struct fixture *fx = *state;
	const char *ids[] = {"sh", "-c", "id -u; id -g; id -G", NULL};
	const char *pwd[] = {"pwd", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	char priv[96];
	aeth_exec_result *r;

	if (geteuid() != 0) {
		print_message("not root: the agent cannot switch users; skipped\n");
		return;
	}
	o.uid = 65534;
	o.gid = 65533;
	r = run(fx->a, ids, &o);
	assert_int_equal(r->exit_code, 0);
	assert_string_equal(r->stdout_data, "65534\n65533\n65533\n");
	aeth__exec_result_free(r);
	o.gid = -1; /* the uid alone: gid stays root's, groups just it */
	r = run(fx->a, ids, &o);
	assert_string_equal(r->stdout_data, "65534\n0\n0\n");
	aeth__exec_result_free(r);
	snprintf(priv, sizeof(priv), "%s/private", tmpdir);
	assert_int_equal(mkdir(priv, 0700), 0);
	o.cwd = priv;
	r = run(fx->a, pwd, &o);
	assert_int_equal(r->exit_code, 127);
	assert_int_equal(r->exec_errno, EACCES);
	assert_non_null(strstr(r->stderr_data, "cannot change to directory"));
	aeth__exec_result_free(r);
	o.uid = o.gid = -1; /* root again: the agent itself never changed */
	r = run(fx->a, pwd, &o);
	assert_int_equal(r->exit_code, 0);
	assert_int_equal(strncmp(r->stdout_data, priv, strlen(priv)), 0);
	aeth__exec_result_free(r);
	rmdir(priv);
	o.uid = -2;
	o.cwd = NULL;
	o.argv = ids;
	{
		aeth_exec_result *bad = NULL;

		assert_int_equal(aeth__agent_exec(&bad, fx->a, &o), AETH_EINVALID);
		assert_null(bad);
	}
}

/* stat, list, mkdir, remove (level 2) against the local agent's files */
static void test_fs_ops(void **state)
{
	struct fixture *fx = *state;
	char base[96], path[160], **names = NULL;
	unsigned int mode, *modes = NULL;
	uint64_t size, *sizes = NULL;
	size_t n = 0;
	int seen = 0;

	snprintf(base, sizeof(base), "%s/fs", tmpdir);
	assert_int_equal(aeth__agent_file_stat(&mode, &size, fx->a, base),
			 AETH_ENOTFOUND);
	snprintf(path, sizeof(path), "%s/a/b", base);
	assert_int_equal(aeth__agent_file_mkdir(fx->a, path, 0755, 0), AETH_ENOTFOUND);
	assert_int_equal(aeth__agent_file_mkdir(fx->a, path, 0750, 1), 0);
	assert_int_equal(aeth__agent_file_mkdir(fx->a, path, 0750, 1), 0);
	assert_int_equal(aeth__agent_file_mkdir(fx->a, path, 0750, 0), AETH_EEXISTS);
	assert_int_equal(aeth__agent_file_stat(&mode, &size, fx->a, path), 0);
	assert_true(S_ISDIR(mode) && (mode & 07777) == 0750);
	snprintf(path, sizeof(path), "%s/f.txt", base);
	assert_int_equal(aeth__agent_file_put(fx->a, path, "12345", 5, 0640), 0);
	snprintf(path, sizeof(path), "%s/link", base);
	assert_int_equal(symlink("/", path), 0); /* never followed */
	assert_int_equal(aeth__agent_file_list(&names, &modes, &sizes, &n, fx->a,
					       base), 0);
	assert_int_equal(n, 3);
	assert_null(names[3]);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], "f.txt") == 0) {
			assert_true(S_ISREG(modes[i]) && sizes[i] == 5);
			assert_int_equal(modes[i] & 07777, 0640);
			seen |= 1;
		} else if (strcmp(names[i], "a") == 0) {
			assert_true(S_ISDIR(modes[i]));
			seen |= 2;
		} else if (strcmp(names[i], "link") == 0) {
			assert_true(S_ISLNK(modes[i]));
			seen |= 4;
		}
	}
	assert_int_equal(seen, 7);
	aeth_strarray_free(names);
	free(modes);
	free(sizes);
	snprintf(path, sizeof(path), "%s/f.txt", base);
	assert_int_equal(aeth__agent_file_list(&names, &modes, &sizes, &n, fx->a,
					       path), AETH_EINVALID);
	assert_null(names);
	assert_int_equal(aeth__agent_file_remove(fx->a, base, 0), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "not empty"));
	snprintf(path, sizeof(path), "%s/link", base);
	assert_int_equal(aeth__agent_file_remove(fx->a, path, 0), 0);
	assert_int_equal(access("/", F_OK), 0);
	/* a recursive remove does not follow a link out of the tree */
	snprintf(path, sizeof(path), "%s/a/b/out", base);
	assert_int_equal(symlink(tmpdir, path), 0);
	assert_int_equal(aeth__agent_file_remove(fx->a, base, 1), 0);
	assert_int_equal(aeth__agent_file_stat(&mode, &size, fx->a, base),
			 AETH_ENOTFOUND);
	assert_int_equal(aeth__agent_file_stat(&mode, &size, fx->a, tmpdir), 0);
	assert_int_equal(aeth__agent_file_remove(fx->a, base, 1), AETH_ENOTFOUND);
}

static void test_timeout_kills_group(void **state)
{
	struct fixture *fx = *state;
	char cmd[256], pidfile[128], buf[32] = "";
	const char *argv[] = {"sh", "-c", cmd, NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	int64_t t0 = aeth__now_ms();
	aeth_exec_result *r;
	FILE *fp;

	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", tmpdir);
	snprintf(cmd, sizeof(cmd), "sleep 100 & echo $! > %s; echo started; "
		 "wait", pidfile);
	o.timeout_ms = 300;
	r = run(fx->a, argv, &o);
	assert_true(r->timed_out);
	assert_int_equal(r->exit_code, -1);
	assert_int_equal(r->term_signal, SIGTERM);
	assert_string_equal(r->stdout_data, "started\n");
	assert_true(aeth__now_ms() - t0 < 5000);
	aeth__exec_result_free(r);
	fp = fopen(pidfile, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_true(pid_gone((pid_t)atoi(buf)));
}

static void test_huge_output_capped(void **state)
{
	struct fixture *fx = *state;
	const char *argv[] = {"head", "-c", "50M", "/dev/zero", NULL};
	const char *both[] = {"sh", "-c", "head -c 300000 /dev/zero; "
			      "head -c 200000 /dev/zero >&2", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	int64_t t0 = aeth__now_ms();
	aeth_exec_result *r = run(fx->a, argv, NULL);

	assert_int_equal(r->exit_code, 0);
	assert_int_equal(r->stdout_len, 1 << 20);
	assert_true(r->stdout_truncated);
	assert_false(r->stderr_truncated);
	print_message("50 MiB with a 1 MiB cap: %lld ms\n",
		      (long long)(aeth__now_ms() - t0));
	aeth__exec_result_free(r);
	o.output_limit = 100000;
	r = run(fx->a, both, &o);
	assert_int_equal(r->stdout_len, 100000);
	assert_int_equal(r->stderr_len, 100000);
	assert_true(r->stdout_truncated && r->stderr_truncated);
	aeth__exec_result_free(r);
}

struct conc {
	aeth__agent *a;
	int n;
	int rc;
	char out[64];
};

static void *conc_main(void *arg)
{
	struct conc *c = arg;
	char cmd[64];
	const char *argv[] = {"sh", "-c", cmd, NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;

	snprintf(cmd, sizeof(cmd), "sleep 0.5; echo job%d", c->n);
	o.argv = argv;
	c->rc = aeth__agent_exec(&r, c->a, &o);
	if (r)
		snprintf(c->out, sizeof(c->out), "%s", r->stdout_data);
	aeth__exec_result_free(r);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *fx = *state;
	struct conc c[4];
	pthread_t t[4];
	int64_t t0 = aeth__now_ms(), dt;

	for (int i = 0; i < 4; i++) {
		c[i] = (struct conc){.a = fx->a, .n = i};
		pthread_create(&t[i], NULL, conc_main, &c[i]);
	}
	for (int i = 0; i < 4; i++) {
		char want[16];

		pthread_join(t[i], NULL);
		snprintf(want, sizeof(want), "job%d\n", i);
		assert_int_equal(c[i].rc, 0);
		assert_string_equal(c[i].out, want);
	}
	dt = aeth__now_ms() - t0;
	print_message("4 concurrent 0.5 s commands: %lld ms\n", (long long)dt);
	assert_true(dt < 1800); /* not one after the other */
}

static void test_missing_binary(void **state)
{
	struct fixture *fx = *state;
	const char *argv[] = {"no-such-binary-xyz", "arg", NULL};
	const char *empty[] = {"", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = run(fx->a, argv, NULL);

	assert_int_equal(r->exit_code, 127);
	assert_int_equal(r->exec_errno, ENOENT);
	assert_string_equal(r->stderr_data, "aeth-agent: cannot run "
			    "'no-such-binary-xyz': No such file or directory\n");
	aeth__exec_result_free(r);
	o.argv = empty;
	assert_int_equal(aeth__agent_exec(&r, fx->a, &o), AETH_EINVALID);
	o.argv = argv;
	o.cwd = "/no/such/dir";
	r = run(fx->a, argv, &o);
	assert_int_equal(r->exit_code, 127);
	assert_non_null(strstr(r->stderr_data, "cannot change to directory"));
	aeth__exec_result_free(r);
}

static void test_pull_stdin_and_kill(void **state)
{
	struct fixture *fx = *state;
	const char *cat[] = {"cat", NULL};
	const char *sleeper[] = {"sleep", "100", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	aeth_exec_stream s;
	const void *d;
	size_t n;
	aeth_exec *e;

	o.argv = cat;
	o.keep_stdin_open = 1;
	assert_int_equal(aeth__agent_exec_start(&e, fx->a, &o), 0);
	assert_int_equal(aeth__exec_write_stdin(e, "ping\n", 5, 5000), 0);
	assert_int_equal(aeth__exec_next(e, &s, &d, &n, 5000), 1);
	assert_int_equal(s, AETH_STREAM_STDOUT);
	assert_int_equal(n, 5);
	assert_memory_equal(d, "ping\n", 5);
	assert_int_equal(aeth__exec_next(e, &s, &d, &n, 100), AETH_ETIMEOUT);
	assert_int_equal(aeth__exec_close_stdin(e), 0);
	assert_int_equal(aeth__exec_next(e, &s, &d, &n, 5000), 0);
	assert_int_equal(aeth__exec_wait(&r, e), 0);
	assert_int_equal(r->exit_code, 0);
	assert_int_equal(r->stdout_len, 0); /* already pulled */
	aeth__exec_result_free(r);
	aeth__exec_free(e);

	o = (aeth_exec_options)AETH_EXEC_OPTIONS_INIT;
	o.argv = sleeper;
	assert_int_equal(aeth__agent_exec_start(&e, fx->a, &o), 0);
	assert_int_equal(aeth__exec_kill(e, SIGTERM), 0);
	assert_int_equal(aeth__exec_wait(&r, e), 0);
	assert_int_equal(r->term_signal, SIGTERM);
	assert_false(r->timed_out);
	aeth__exec_result_free(r);
	aeth__exec_free(e);
}

/* The command exits while output waits in its pipe for window. */
static void test_output_after_exit(void **state)
{
	struct fixture *fx = *state;
	const char *argv[] = {"head", "-c", "300000", "/dev/zero", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	aeth_exec_stream s;
	const void *d;
	size_t n, total = 0;
	aeth_exec *e;
	int rc;

	o.argv = argv;
	assert_int_equal(aeth__agent_exec_start(&e, fx->a, &o), 0);
	usleep(300 * 1000); /* not reading: the window (256 KiB) fills */
	while ((rc = aeth__exec_next(e, &s, &d, &n, 5000)) == 1)
		total += n;
	assert_int_equal(rc, 0);
	assert_int_equal(total, 300000);
	assert_int_equal(aeth__exec_wait(&r, e), 0);
	assert_int_equal(r->exit_code, 0);
	aeth__exec_result_free(r);
	aeth__exec_free(e);
}

static int stop_early(aeth_exec_stream s, const void *d, size_t n, void *ud)
{
	size_t *total = ud;

	(void)s;
	(void)d;
	*total += n;
	return *total > 100000;
}

static void test_stream_callback(void **state)
{
	struct fixture *fx = *state;
	const char *argv[] = {"cat", "/dev/zero", NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	size_t total = 0;

	o.argv = argv;
	o.output_limit = (size_t)1 << 40;
	assert_int_equal(aeth__agent_exec_stream(&r, fx->a, &o, stop_early,
						 &total), 0);
	assert_int_equal(r->term_signal, SIGKILL);
	assert_null(r->stdout_data);
	assert_true(total > 100000);
	aeth__exec_result_free(r);
}

static void test_files(void **state)
{
	struct fixture *fx = *state;
	size_t big = 200000, len;
	char path[128], *data = malloc(big);
	void *got;

	for (size_t i = 0; i < big; i++)
		data[i] = (char)(i * 7);
	snprintf(path, sizeof(path), "%s/file.bin", tmpdir);
	assert_int_equal(aeth__agent_file_put(fx->a, path, data, big, 0600), 0);
	assert_int_equal(aeth__agent_file_get(&got, &len, fx->a, path, 0), 0);
	assert_int_equal(len, big);
	assert_memory_equal(got, data, big);
	free(got);
	assert_int_equal(aeth__agent_file_get(&got, &len, fx->a, path, big - 1),
			 AETH_ETOOBIG);
	assert_null(got);
	assert_int_equal(aeth__agent_file_put(fx->a, path, "", 0, 0644), 0);
	assert_int_equal(aeth__agent_file_get(&got, &len, fx->a, path, 10), 0);
	assert_int_equal(len, 0);
	free(got);
	assert_int_equal(aeth__agent_file_get(&got, &len, fx->a,
					      "/no/such/file", 0), AETH_ENOTFOUND);
	assert_non_null(strstr(aeth_error_last(), "/no/such/file"));
	assert_int_equal(aeth__agent_file_put(fx->a, "/no/such/dir/f", "x", 1,
					      0644), AETH_ENOTFOUND);
	/* Over the limit: refused before a byte is read. */
	assert_int_equal(aeth__agent_file_put(fx->a, path, data,
					      (size_t)AETH__PROTO_FILE_MAX + 1,
					      0644), AETH_ETOOBIG);
	assert_int_equal(aeth__agent_ping(fx->a, 5000), 0);
	free(data);
}

static void test_connection_death(void **state)
{
	struct fixture *fx = *state;
	const char *argv[] = {"sleep", "3", NULL}; /* outlives the agent */
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	aeth_exec *e;

	o.argv = argv;
	assert_int_equal(aeth__agent_exec_start(&e, fx->a, &o), 0);
	kill(fx->pid, SIGKILL);
	assert_int_equal(aeth__exec_wait(&r, e), AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "local agent"));
	assert_false(aeth__agent_alive(fx->a));
	assert_int_equal(aeth__agent_ping(fx->a, 1000), AETH_EUNAVAILABLE);
	aeth__exec_free(e);
}

/* ---- raw frames against --listen-unix ---- */

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < 200; i++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		usleep(10000);
	}
	fail_msg("cannot connect to the agent at %s", path);
	return -1;
}

/* Read frames until `type` (1) or EOF (0); 5 s at most. */
static int read_until(int fd, uint8_t type, aeth__proto_rx *rx)
{
	for (int i = 0; i < 50; i++) {
		struct pollfd p = {fd, POLLIN, 0};
		aeth__proto_header h;
		const uint8_t *pl;
		uint8_t *buf;
		ssize_t n;

		while (aeth__proto_rx_next(rx, &h, &pl) == 1)
			if (h.type == type)
				return 1;
		if (poll(&p, 1, 100) <= 0)
			continue;
		assert_int_equal(aeth__proto_rx_space(rx, 65536, &buf), 0);
		n = read(fd, buf, 65536);
		if (n <= 0)
			return 0;
		aeth__proto_rx_commit(rx, (size_t)n);
	}
	fail_msg("no frame of type %u from the agent", type);
	return -1;
}

static void send_raw(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void test_bad_frames_then_reconnect(void **state)
{
	char sock[128];
	char *args[] = {"--listen-unix", sock, NULL};
	aeth__proto_rx rx = AETH__PROTO_RX_INIT;
	uint8_t hdr[AETH__PROTO_HEADER_LEN];
	static const uint8_t bad_payload[] = {AETH__F_CWD, 0, 0, 0, 50, 'x'};
	const char *echo[] = {"echo", "still here", NULL};
	aeth__agent *a;
	aeth_exec_result *r;
	pid_t pid;
	int fd;

	(void)state;
	snprintf(sock, sizeof(sock), "%s/agent.sock", tmpdir);
	pid = spawn_agent(args, -1);
	/* 1: garbage: an error frame, then the agent closes. */
	fd = connect_unix(sock);
	send_raw(fd, "GET / HTTP/1.0\r\n\r\n", 18);
	assert_int_equal(read_until(fd, AETH__MSG_ERROR, &rx), 1);
	assert_int_equal(read_until(fd, AETH__MSG_ERROR, &rx), 0);
	close(fd);
	/* 2: a length over 1 MiB. */
	aeth__proto_rx_reset(&rx);
	fd = connect_unix(sock);
	aeth__proto_header_encode(hdr, AETH__MSG_EXEC, 1, 0xfffffff0u);
	send_raw(fd, hdr, sizeof(hdr));
	assert_int_equal(read_until(fd, AETH__MSG_ERROR, &rx), 1);
	assert_int_equal(read_until(fd, AETH__MSG_ERROR, &rx), 0);
	close(fd);
	/* 3: a good header around a bad payload, an unknown type, a
	 * truncated frame: errors, and the stream stays usable. */
	aeth__proto_rx_reset(&rx);
	fd = connect_unix(sock);
	aeth__proto_header_encode(hdr, AETH__MSG_EXEC, 5, sizeof(bad_payload));
	send_raw(fd, hdr, sizeof(hdr));
	send_raw(fd, bad_payload, sizeof(bad_payload));
	assert_int_equal(read_until(fd, AETH__MSG_ERROR, &rx), 1);
	aeth__proto_header_encode(hdr, 250, 6, 0);
	send_raw(fd, hdr, sizeof(hdr));
	assert_int_equal(read_until(fd, AETH__MSG_ERROR, &rx), 1);
	aeth__proto_header_encode(hdr, AETH__MSG_PING, 7, 0);
	send_raw(fd, hdr, sizeof(hdr));
	assert_int_equal(read_until(fd, AETH__MSG_PONG, &rx), 1);
	aeth__proto_header_encode(hdr, AETH__MSG_PING, 8, 100);
	send_raw(fd, hdr, sizeof(hdr) - 3); /* and hang up mid-frame */
	close(fd);
	/* 4: a real client still works. */
	assert_int_equal(aeth__agent_open(&a, connect_unix(sock), "unix agent"), 0);
	assert_int_equal(aeth__agent_hello(a, 5000, NULL), 0);
	r = run(a, echo, NULL);
	assert_string_equal(r->stdout_data, "still here\n");
	aeth__exec_result_free(r);
	aeth__agent_free(a);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* alive */
	kill(pid, SIGTERM);
	reap(pid);
	aeth__proto_rx_free(&rx);
}

/* A new host connection + hello ends the old session's commands. */
static void test_new_hello_resets_session(void **state)
{
	char sock[128], pidfile[128], cmd[256], buf[32] = "";
	char *args[] = {"--listen-unix", sock, NULL};
	const char *argv[] = {"sh", "-c", cmd, NULL};
	aeth_exec_options o = AETH_EXEC_OPTIONS_INIT;
	aeth__agent *a1, *a2;
	aeth_exec_result *r = NULL;
	aeth_exec_stream s;
	const void *d;
	size_t n;
	aeth_exec *e;
	pid_t pid;
	FILE *fp;

	(void)state;
	snprintf(sock, sizeof(sock), "%s/agent2.sock", tmpdir);
	snprintf(pidfile, sizeof(pidfile), "%s/session.pid", tmpdir);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s; echo ready; exec sleep 100",
		 pidfile);
	pid = spawn_agent(args, -1);
	assert_int_equal(aeth__agent_open(&a1, connect_unix(sock), "old host"), 0);
	assert_int_equal(aeth__agent_hello(a1, 5000, NULL), 0);
	o.argv = argv;
	assert_int_equal(aeth__agent_exec_start(&e, a1, &o), 0);
	assert_int_equal(aeth__exec_next(e, &s, &d, &n, 5000), 1); /* ready */
	assert_int_equal(aeth__agent_open(&a2, connect_unix(sock), "new host"), 0);
	assert_int_equal(aeth__agent_hello(a2, 5000, NULL), 0);
	/* The old connection was replaced: its call fails, not hangs. */
	assert_int_equal(aeth__exec_wait(&r, e), AETH_EUNAVAILABLE);
	aeth__exec_free(e);
	aeth__agent_free(a1);
	fp = fopen(pidfile, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_true(pid_gone((pid_t)atoi(buf)));
	assert_int_equal(aeth__agent_ping(a2, 5000), 0);
	aeth__agent_free(a2);
	kill(pid, SIGTERM);
	reap(pid);
}

static void cleanup(void)
{
	for (int i = 0; i < nspawned; i++)
		if (kill(spawned[i], SIGKILL) == 0)
			waitpid(spawned[i], NULL, 0);
	if (tmpdir[0])
		aeth__rm_rf(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo_and_exit_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_env_cwd_shell, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_as_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_output_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_binary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pull_stdin_and_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_after_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_death, setup, teardown),
		cmocka_unit_test(test_bad_frames_then_reconnect),
		cmocka_unit_test(test_new_hello_resets_session),
	};

	agent_bin = getenv("AETH_AGENT_BIN");
	if (!agent_bin) {
		fprintf(stderr, "AETH_AGENT_BIN is not set: run through "
			"`meson test -C BUILD agent`\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/aeth-agent-test-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	atexit(cleanup);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
