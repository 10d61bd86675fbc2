/*
 * lib/vm/proc.c - VMM processes: detached spawn, liveness checked against
 * pid reuse, kill, and Unix socket connect. Shared by every backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "vm/backend.h"

/* Descriptors one spawn may place (3 ...). */
#define AETH__SPAWN_MAX_FDS 24

/* Read a small /proc file whole; returns bytes read or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -1;
	while ((size_t)total < size - 1 &&
	       (n = read(fd, buf + total, size - 1 - (size_t)total)) > 0)
		total += n;
	close(fd);
	buf[total] = '\0';
	return total;
}

uint64_t aeth__vm_pid_starttime(pid_t pid)
{
	char path[64], buf[1024];
	char *p;
	unsigned long long st = 0;
	int field = 2;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	/* comm may contain spaces: fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	while (*p && field < 22) {
		if (*p == ' ')
			field++;
		p++;
	}
	if (field != 22 || sscanf(p, "%llu", &st) != 1)
		return 0;
	return st;
}

static bool pid_is_zombie(pid_t pid)
{
	char path[64], buf[512];
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return true;
	p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

bool aeth__vm_pid_alive(pid_t pid, const char *id, uint64_t starttime)
{
	char path[64], buf[8192];
	ssize_t n;

	if (pid <= 0 || !id || !*id)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_small(path, buf, sizeof(buf));
	if (n <= 0) /* gone, or a zombie (empty cmdline) */
		return false;
	for (ssize_t i = 0; i < n; i++) /* NUL-separated argv -> one string */
		if (buf[i] == '\0')
			buf[i] = ' ';
	if (!strstr(buf, id))
		return false;
	if (pid_is_zombie(pid))
		return false;
	return starttime == 0 || aeth__vm_pid_starttime(pid) == starttime;
}

int aeth__vm_pid_wait_gone(pid_t pid, const char *id, uint64_t starttime,
			   int64_t deadline_ms)
{
	int step = 1;

	for (;;) {
		/* Reap it if it happens to be our child (tests, old layouts). */
		waitpid(pid, NULL, WNOHANG);
		if (!aeth__vm_pid_alive(pid, id, starttime))
			return 0;
		if (aeth__now_ms() >= deadline_ms)
			return AETH_ETIMEOUT;
		aeth__sleep_ms(step);
		if (step < 20)
			step *= 2;
	}
}

void aeth__vm_pid_kill(pid_t pid, const char *id, uint64_t starttime)
{
	if (!aeth__vm_pid_alive(pid, id, starttime))
		return;
	kill(pid, SIGKILL);
	if (aeth__vm_pid_wait_gone(pid, id, starttime, aeth__now_ms() + 2000) != 0)
		aeth__warn("VMM pid %d of VM %s survived SIGKILL for 2 s", (int)pid,
			   id);
}

/* Close every fd from `from` up except `keep` (async-signal-safe). */
static void close_from(int from, int keep)
{
	struct rlimit rl;
	long max = 65536;

	if ((keep <= from || close_range((unsigned int)from,
					 (unsigned int)keep - 1, 0) == 0) &&
	    close_range((unsigned int)(keep < from ? from : keep + 1), ~0u, 0) == 0)
		return;
	/* No close_range (kernel < 5.9): up to the fd limit, at most 65536. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (long i = from; i < max; i++)
		if (i != keep)
			close((int)i);
}

/*
 * In the grandchild: fds[i] to descriptor 3 + i (first all above the
 * target range, so that no source is overwritten before it is moved),
 * with the exec-error pipe kept above them. Returns the pipe's new fd,
 * or -1. Async-signal-safe.
 */
static int place_fds(const int *fds, size_t nfds, int errfd)
{
	int high = 3 + (int)nfds + 1, tmp[AETH__SPAWN_MAX_FDS];

	errfd = fcntl(errfd, F_DUPFD_CLOEXEC, high);
	if (errfd < 0)
		return -1;
	for (size_t i = 0; i < nfds; i++)
		if ((tmp[i] = fcntl(fds[i], F_DUPFD, errfd + 1)) < 0)
			return -1;
	for (size_t i = 0; i < nfds; i++)
		if (dup2(tmp[i], 3 + (int)i) < 0)
			return -1;
	close_from(3 + (int)nfds, errfd);
	return errfd;
}

/* In the grandchild: set up fds and exec; report errno through `errfd`. */
static void spawn_exec(char *const argv[], char *const envp[],
		       const char *log_path, const int *fds, size_t nfds,
		       int errfd)
{
	int fd, e;

	setsid();
	umask(077);
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	/* Everything else we inherited (agent sockets, DB connections...)
	 * must not stay open in a long-lived VMM, also fds above 1023. */
	if ((errfd = place_fds(fds, nfds, errfd)) < 0)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	if (envp)
		execvpe(argv[0], argv, envp);
	else
		execvp(argv[0], argv);
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

int aeth__vm_spawn(char *const argv[], char *const envp[], const char *log_path,
		   const int *fds, size_t nfds, pid_t *pid_out)
{
	int pfd[2], efd[2], status, e = 0;
	pid_t mid, vmm = 0;
	ssize_t n;

	*pid_out = 0;
	if (nfds > AETH__SPAWN_MAX_FDS)
		return aeth__error_set(AETH_EINVALID, "spawning %s: %zu descriptors, "
				       "at most %d", argv[0], nfds,
				       AETH__SPAWN_MAX_FDS);
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return aeth__error_errno(AETH_EIO, "pipe for spawning %s", argv[0]);
	if (pipe2(efd, O_CLOEXEC) != 0) {
		close(pfd[0]);
		close(pfd[1]);
		return aeth__error_errno(AETH_EIO, "pipe for spawning %s", argv[0]);
	}
	mid = fork();
	if (mid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		close(efd[0]);
		close(efd[1]);
		return aeth__error_errno(AETH_EIO, "fork for %s", argv[0]);
	}
	if (mid == 0) {
		/* Middle process: fork the VMM and exit, so that the VMM is
		 * re-parented to init and never becomes our zombie. */
		pid_t g = fork();

		if (g == 0)
			spawn_exec(argv, envp, log_path, fds, nfds, efd[1]);
		if (write(pfd[1], &g, sizeof(g)) < 0)
			_exit(1);
		_exit(g < 0 ? 1 : 0);
	}
	close(pfd[1]);
	close(efd[1]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	n = read(pfd[0], &vmm, sizeof(vmm));
	if (n != (ssize_t)sizeof(vmm) || vmm <= 0) {
		e = EAGAIN;
		vmm = 0;
	} else {
		/* EOF (exec closed the CLOEXEC pipe) = success; an int = errno. */
		while ((n = read(efd[0], &e, sizeof(e))) < 0 && errno == EINTR)
			;
		if (n != (ssize_t)sizeof(e))
			e = 0;
	}
	close(pfd[0]);
	close(efd[0]);
	if (vmm <= 0 || e) {
		errno = e ? e : EAGAIN;
		if (e == ENOENT)
			return aeth__error_set(AETH_ENOTFOUND,
					       "cannot run '%s': not found on PATH "
					       "(install it, e.g. apt-get install "
					       "qemu-system-x86, or set its path in "
					       "the options)", argv[0]);
		return aeth__error_errno(AETH_EIO, "cannot run '%s'", argv[0]);
	}
	*pid_out = vmm;
	return 0;
}

int aeth__vm_unix_connect(const char *path)
{
	struct sockaddr_un sa;
	size_t len = strlen(path);
	int fd, e;

	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}
