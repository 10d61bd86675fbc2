/* tests/support/pgcluster.c - a private PostgreSQL cluster; see pgcluster.h. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcluster.h"

struct aeth_test_pgc {
	char dir[64];
	char bindir[512];
	bool started;
	pid_t owner;      /* the process that made it (a fork does not free it) */
	int watchdog_fd;  /* its end closes when the test process ends */
	uid_t uid;        /* the cluster's owner */
	gid_t gid;
};

static int find_bindir(aeth_test_pgc *c)
{
	glob_t g;

	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0) {
		fprintf(stderr, "FAIL: PostgreSQL's initdb not found under "
			"/usr/lib/postgresql/*/bin: run scripts/setup.sh\n");
		return -1;
	}
	/* the newest version: glob sorts, so the last one */
	snprintf(c->bindir, sizeof(c->bindir), "%.*s",
		 (int)(strlen(g.gl_pathv[g.gl_pathc - 1]) - strlen("/initdb")),
		 g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	return 0;
}

int aeth_test_pgc_run(aeth_test_pgc *c, const char *args)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "cd / && %s%s/%s >>%s/cmd.log 2>&1",
		 getuid() == 0 ? "runuser -u postgres -- " : "", c->bindir, args,
		 c->dir);
	return system(cmd);
}

static void stop_and_remove(aeth_test_pgc *c)
{
	char cmd[700];

	if (c->started) {
		snprintf(cmd, sizeof(cmd), "pg_ctl stop -D %s/data -m immediate -w",
			 c->dir);
		aeth_test_pgc_run(c, cmd);
		c->started = false;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", c->dir);
}

/* A child that waits for the test process to end (its pipe reaches EOF),
 * then stops the server if it still runs and removes the directory. */
static int start_watchdog(aeth_test_pgc *c)
{
	int p[2];
	pid_t w;

	if (pipe2(p, O_CLOEXEC) != 0 || (w = fork()) < 0)
		return -1;
	if (w == 0) {
		char ch;

		close(p[1]);
		setsid(); /* out of the test's process group: survives its kill */
		while (read(p[0], &ch, 1) < 0 && errno == EINTR)
			;
		if (access(c->dir, F_OK) == 0) { /* not freed by the test */
			c->started = true; /* whatever the parent knew */
			stop_and_remove(c);
		}
		_exit(0);
	}
	close(p[0]);
	c->watchdog_fd = p[1];
	return 0;
}

static int append(const char *path, const char *mode, const char *text)
{
	FILE *f = fopen(path, mode);
	bool ok;

	if (!f)
		return -1;
	ok = fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	return ok ? 0 : -1;
}

int aeth_test_pgc_init(aeth_test_pgc **out, const char *tag)
{
	aeth_test_pgc *c = calloc(1, sizeof(*c));
	char args[1024], conf[256];

	*out = NULL;
	if (!c)
		return -1;
	c->owner = getpid();
	c->watchdog_fd = -1;
	c->uid = getuid();
	c->gid = getgid();
	snprintf(c->dir, sizeof(c->dir), "/tmp/aeth-%.20s.XXXXXX", tag);
	if (find_bindir(c) != 0 || !mkdtemp(c->dir)) {
		free(c);
		return -1;
	}
	if (getuid() == 0) {
		struct passwd *pw = getpwnam("postgres");

		if (!pw || chown(c->dir, pw->pw_uid, pw->pw_gid) != 0) {
			fprintf(stderr, "FAIL: running as root needs the user "
				"'postgres' (PostgreSQL refuses root)\n");
			rmdir(c->dir);
			free(c);
			return -1;
		}
		c->uid = pw->pw_uid;
		c->gid = pw->pw_gid;
	}
	if (start_watchdog(c) != 0) {
		aeth_test_pgc_free(c);
		return -1;
	}
	snprintf(args, sizeof(args), "initdb -D %s/data -U postgres --auth=trust "
		 "-E UTF8 --locale=C.UTF-8", c->dir);
	if (aeth_test_pgc_run(c, args) != 0) {
		fprintf(stderr, "FAIL: initdb failed; see %s/cmd.log\n", c->dir);
		aeth_test_pgc_free(c);
		return -1;
	}
	snprintf(conf, sizeof(conf), "listen_addresses = ''\n"
		 "unix_socket_directories = '%s'\nfsync = off\n"
		 "max_connections = 20\n", c->dir);
	if (aeth_test_pgc_conf(c, conf) != 0) {
		aeth_test_pgc_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

const char *aeth_test_pgc_dir(const aeth_test_pgc *c)
{
	return c->dir;
}

int aeth_test_pgc_conf(aeth_test_pgc *c, const char *text)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/data/postgresql.conf", c->dir);
	return append(path, "a", text);
}

int aeth_test_pgc_hba(aeth_test_pgc *c, const char *text)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/data/pg_hba.conf", c->dir);
	return append(path, "w", text);
}

int aeth_test_pgc_install(aeth_test_pgc *c, const char *src, const char *name,
			  mode_t mode)
{
	char dst[256], buf[8192];
	FILE *in = fopen(src, "rb"), *out;
	size_t n;
	bool ok = true;

	snprintf(dst, sizeof(dst), "%s/data/%s", c->dir, name);
	if (!in || !(out = fopen(dst, "wb"))) {
		if (in)
			fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ok = ok && fwrite(buf, 1, n, out) == n;
	fclose(in);
	ok = fclose(out) == 0 && ok;
	return ok && chown(dst, c->uid, c->gid) == 0 && chmod(dst, mode) == 0 ? 0 : -1;
}

int aeth_test_pgc_ctl(aeth_test_pgc *c, const char *verb, const char *mode)
{
	char args[1024];

	snprintf(args, sizeof(args), "pg_ctl %s -D %s/data -l %s/server.log -m %s "
		 "-w -t 60", verb, c->dir, c->dir, mode);
	if (aeth_test_pgc_run(c, args) != 0) {
		fprintf(stderr, "pg_ctl %s failed; see %s/cmd.log and %s/server.log\n",
			verb, c->dir, c->dir);
		return -1;
	}
	c->started = strcmp(verb, "stop") != 0;
	return 0;
}

void aeth_test_pgc_free(aeth_test_pgc *c)
{
	if (!c)
		return;
	if (getpid() == c->owner) {
		stop_and_remove(c);
		if (c->watchdog_fd >= 0)
			close(c->watchdog_fd);
	}
	free(c);
}
