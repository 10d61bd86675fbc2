/*
 * lib/jail/jailer.c - aeth-jailer: start one VMM confined, like
 * Firecracker's jailer does for Firecracker (jail.h has the contract).
 *
 * The order of things:
 *   1. join the VM's cgroups (so the VMM and the relay are counted there
 *      from their first page);
 *   2. not root: enter a user namespace mapping our own uid;
 *   3. new pid namespace for the next child, then fork the VMM-to-be:
 *      it is PID 1 of that namespace and sees no other process;
 *   4. the child: new network, mount, IPC and UTS namespaces; loopback up
 *      with every IPv4 address local, the relay's listeners opened there
 *      and handed to us; a new root holding only what the VMM needs;
 *      credentials dropped for good (uid/gid, no capabilities, no new
 *      privileges); exec the VMM (which then adds its own seccomp filter,
 *      -sandbox on);
 *   5. us: report "ok VMM_PID RELAY_PID" on the status fd, then either
 *      exit (no egress rules: the VMM is reparented to init and reaches
 *      nothing) or chroot into the empty root dir, drop the same
 *      credentials and relay the guest's allowed connections until the
 *      VMM exits.
 * Any failure before the exec is reported as "error ..." and nothing is
 * left running.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail/jailer.h"

extern char **environ;

static int status_fd = AETH__JAIL_STATUS_FD;

static void status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void status(const char *fmt, ...)
{
	char line[AETH__JAIL_STATUS_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (status_fd >= 0) {
		if (write(status_fd, line, (size_t)n) < 0) {
			/* the library is gone; nothing to tell */
		}
		close(status_fd);
		status_fd = -1;
	}
}

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	char msg[AETH__JAIL_STATUS_MAX - 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "aeth-jailer: %s\n", msg);
	status("error %s", msg);
	_exit(1); /* see the _exit in main */
}

static unsigned long number(const char *opt, const char *v, unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n > max)
		fail("%s: '%s' is not a number up to %lu", opt, v, max);
	return n;
}

static void add_groups(jail_spec *s, char *list)
{
	char *save = NULL;

	for (char *g = strtok_r(list, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
		if (s->ngroups == AETH__JAIL_MAX_GROUPS)
			fail("--groups: more than %d groups", AETH__JAIL_MAX_GROUPS);
		s->groups[s->ngroups++] = (gid_t)number("--groups", g, 0x7fffffff);
	}
}

static void add_rule(jail_spec *s, const char *text)
{
	const char *why;

	if (s->nrules == AETH__NET_RULE_MAX)
		fail("--allow: more than %d rules", AETH__NET_RULE_MAX);
	if (aeth__net_rule_parse(text, &s->rules[s->nrules], &why) != 0)
		fail("--allow '%s': %s", text, why);
	if (s->rules[s->nrules].kind == AETH__RULE_DNS)
		s->resolv_conf = true;
	s->nrules++;
}

static uint32_t ipv4(const char *opt, const char *v)
{
	aeth__net_rule r;
	char rule[AETH__NET_RULE_LEN];
	const char *why;

	/* the rule parser knows dotted quads: reuse it with a dummy port */
	if (snprintf(rule, sizeof(rule), "%s:1", v) >= (int)sizeof(rule) ||
	    aeth__net_rule_parse(rule, &r, &why) != 0 || r.kind != AETH__RULE_NET ||
	    r.mask != 0xffffffffu)
		fail("%s: '%s' is not an IPv4 address", opt, v);
	return r.addr;
}

static void parse_args(jail_spec *s, int argc, char **argv)
{
	bool have_uid = false, have_gid = false;
	int i;

	memset(s, 0, sizeof(*s));
	s->as_root = geteuid() == 0;
	for (i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--")) {
			i++;
			break;
		}
		if (!v)
			fail("%s needs a value", o);
		i++;
		if (!strcmp(o, "--id"))
			s->id = v;
		else if (!strcmp(o, "--exec"))
			s->exec = v;
		else if (!strcmp(o, "--root"))
			s->root = v;
		else if (!strcmp(o, "--tmp"))
			s->tmp = v;
		else if (!strcmp(o, "--vm-dir")) {
			if (snprintf(s->vm_dir_env, sizeof(s->vm_dir_env), "AETH_VM_DIR=%s",
				     v) >= (int)sizeof(s->vm_dir_env))
				fail("--vm-dir: too long");
		}
		else if (!strcmp(o, "--uid"))
			s->uid = (uid_t)number(o, v, 0xfffffffe), have_uid = true;
		else if (!strcmp(o, "--gid"))
			s->gid = (gid_t)number(o, v, 0xfffffffe), have_gid = true;
		else if (!strcmp(o, "--groups"))
			add_groups(s, argv[i]);
		else if (!strcmp(o, "--dev")) {
			if (s->ndevs == AETH__JAIL_MAX_DEVS || v[0] != '/')
				fail("--dev '%s': an absolute path, at most %d", v,
				     AETH__JAIL_MAX_DEVS);
			s->devs[s->ndevs++] = v;
		} else if (!strcmp(o, "--cgroup")) {
			if (s->ncgroups == AETH__JAIL_MAX_CGROUPS || v[0] != '/')
				fail("--cgroup '%s': an absolute path, at most %d", v,
				     AETH__JAIL_MAX_CGROUPS);
			s->cgroups[s->ncgroups++] = v;
		} else if (!strcmp(o, "--fds"))
			s->nfds = (int)number(o, v, AETH__JAIL_MAX_FDS);
		else if (!strcmp(o, "--allow"))
			add_rule(s, v);
		else if (!strcmp(o, "--resolver"))
			s->resolver = ipv4(o, v);
		else if (!strcmp(o, "--ram-discard")) {
			if (strcmp(v, "private"))
				fail("--ram-discard '%s': only 'private'", v);
			s->ram_discard_private = true;
		}
		else
			fail("unknown option %s", o);
	}
	if (i >= argc)
		fail("no VMM command line after --");
	s->argv = argv + i;
	if (!s->id || !s->exec || s->exec[0] != '/' || !s->root || !s->tmp)
		fail("--id, --exec (absolute), --root and --tmp are required");
	if (s->as_root && (!have_uid || !have_gid || s->uid == 0 || s->gid == 0))
		fail("running as root: --uid and --gid must name an unprivileged "
		     "user for the VMM");
	if (!s->as_root && (have_uid || have_gid))
		fail("--uid/--gid need root (not root: the VMM keeps the caller's "
		     "uid in a user namespace)");
}

/* "nameserver A.B.C.D" from /etc/resolv.conf, for the "dns" rule. */
static uint32_t default_resolver(void)
{
	FILE *f = fopen("/etc/resolv.conf", "re");
	char line[256], addr[64];
	uint32_t a = 0;

	if (!f)
		return 0;
	while (!a && fgets(line, sizeof(line), f)) {
		char rule[80];
		aeth__net_rule r;
		const char *why;

		if (sscanf(line, " nameserver %63s", addr) != 1)
			continue;
		snprintf(rule, sizeof(rule), "%s:53", addr);
		if (aeth__net_rule_parse(rule, &r, &why) == 0 &&
		    r.kind == AETH__RULE_NET && r.mask == 0xffffffffu)
			a = r.addr;
	}
	fclose(f);
	return a;
}

static void join_cgroups(const jail_spec *s)
{
	for (size_t i = 0; i < s->ncgroups; i++) {
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.procs", s->cgroups[i]);
		fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || write(fd, "0", 1) != 1)
			fail("cannot join cgroup %s: %s", s->cgroups[i],
			     strerror(errno));
		close(fd);
	}
}

/* Send the listener fds (and their ports) to the parent over `sock`. */
static void send_listeners(int sock, relay_listener *l, size_t n, int err)
{
	char cbuf[CMSG_SPACE(sizeof(int) * RELAY_MAX_LISTENERS)];
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *c;
	int fds[RELAY_MAX_LISTENERS];

	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = l;
	iov.iov_len = n * sizeof(*l);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	for (size_t i = 0; i < n; i++)
		fds[i] = l[i].fd;
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	if (sendmsg(sock, &mh, 0) < 0)
		jail_die(err, "passing the relay's listeners");
	for (size_t i = 0; i < n; i++)
		close(l[i].fd);
}

static size_t recv_listeners(int sock, relay_listener *l, size_t max)
{
	char cbuf[CMSG_SPACE(sizeof(int) * RELAY_MAX_LISTENERS)];
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *c;
	ssize_t got;
	size_t n;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = l;
	iov.iov_len = max * sizeof(*l);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	do
		got = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	if (got <= 0 || got % (ssize_t)sizeof(*l) != 0)
		return 0; /* the child failed: its error pipe says why */
	n = (size_t)got / sizeof(*l);
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int) * n))
		fail("the relay's listeners did not arrive");
	for (size_t i = 0; i < n; i++)
		memcpy(&l[i].fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	return n;
}

/* Put our descriptors where the VMM expects them: 0-2, then 4 .. 4+N-1;
 * everything else (status fd, pipes) is closed at exec. */
static void vmm_fds(const jail_spec *s, int err)
{
	unsigned int last = AETH__JAIL_FIRST_FD + (unsigned int)s->nfds;

	if (syscall(SYS_close_range, last, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) != 0)
		for (int fd = (int)last; fd < 1024; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (fcntl(AETH__JAIL_STATUS_FD, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF)
		jail_die(err, "closing the status pipe for the VMM");
}

/* The VMM-to-be: PID 1 of its pid namespace. Never returns. */
static void child(const jail_spec *s, int err, int sock)
{
	relay_listener l[RELAY_MAX_LISTENERS];
	const char *what = "";
	int n = 0;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0)
		jail_die(err, "unshare (network, mount, IPC, UTS namespaces)");
	if (jail_netns_setup() != 0)
		jail_die(err, "setting up the VMM's network namespace");
	if (s->nrules && (n = relay_listen(s, l, RELAY_MAX_LISTENERS)) < 0)
		jail_die(err, "opening the relay's listeners");
	if (n > 0)
		send_listeners(sock, l, (size_t)n, err);
	close(sock);
	if (sethostname("aetherium", 9) != 0)
		jail_die(err, "sethostname");
	if (jail_build_root(s, &what) != 0 ||
	    jail_drop_privileges(s, s->as_root, &what) != 0 ||
	    (s->ram_discard_private && jail_ram_discard_filter(&what) != 0))
		jail_die(err, what);
	vmm_fds(s, err);
	execve(s->exec, s->argv, (char *const[]){"TMPDIR=/var/tmp",
						 "PATH=/usr/bin:/bin",
						 (char *)s->vm_dir_env, NULL});
	jail_die(err, s->exec);
}

/* The child's setup error, or "" once its exec closed the pipe. */
static void read_child_error(int fd, char *buf, size_t size)
{
	size_t got = 0;
	ssize_t n;

	while (got < size - 1 &&
	       ((n = read(fd, buf + got, size - 1 - got)) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	buf[got] = '\0';
	while (got && (buf[got - 1] == '\n'))
		buf[--got] = '\0';
}

int main(int argc, char **argv)
{
	relay_listener l[RELAY_MAX_LISTENERS];
	jail_spec s;
	int errp[2], sp[2];
	char why[AETH__JAIL_STATUS_MAX - 64];
	const char *what = "";
	size_t n = 0;
	pid_t pid;

	/* nothing of the caller's environment stays in the relay (not even
	 * in the memory /proc/PID/environ shows: the strings are wiped) or
	 * reaches the VMM (which gets its own, fixed one) */
	for (char **e = environ; e && *e; e++)
		explicit_bzero(*e, strlen(*e));
	clearenv();
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(status_fd, F_GETFD) < 0)
		status_fd = -1; /* run by hand: errors go to stderr only */
	else
		fcntl(status_fd, F_SETFD, FD_CLOEXEC);
	parse_args(&s, argc, argv);
	if (s.vm_dir_env[0])
		putenv(s.vm_dir_env);
	if (s.resolv_conf && !s.resolver && !(s.resolver = default_resolver()))
		fail("the \"dns\" rule needs a resolver: no IPv4 nameserver in "
		     "/etc/resolv.conf (pass --resolver)");
	join_cgroups(&s);
	if (!s.as_root && jail_enter_userns(&what) != 0)
		fail("%s: %s: this host does not let an unprivileged process "
		     "confine the VMM; run the worker as root or set vmm.jail: "
		     "off", what, strerror(errno));
	if (unshare(CLONE_NEWPID) != 0)
		fail("cannot create a pid namespace: %s", strerror(errno));
	if (pipe2(errp, O_CLOEXEC) != 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
		fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(errp[0]);
		close(sp[0]);
		child(&s, errp[1], sp[1]);
	}
	close(errp[1]);
	close(sp[1]);
	/* the VMM's descriptors are its own now: a listening socket we held
	 * would keep answering after the VMM died */
	for (int fd = AETH__JAIL_FIRST_FD; fd < AETH__JAIL_FIRST_FD + s.nfds; fd++)
		close(fd);
	if (s.nrules)
		n = recv_listeners(sp[0], l, RELAY_MAX_LISTENERS);
	close(sp[0]);
	read_child_error(errp[0], why, sizeof(why));
	close(errp[0]);
	if (why[0]) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail("%s", why);
	}
	if (!s.nrules) {
		status("ok %d 0", (int)pid);
		/* The VMM is reparented to init; nothing to relay. _exit, not
		 * exit: our children are born in the VMM's pid namespace, and
		 * an exit handler that forks (LeakSanitizer's) would spin
		 * once the VMM, its PID 1, is gone. */
		_exit(0);
	}
	if (n == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail("the relay's listeners did not arrive");
	}
	/* Give up root before touching a byte from the guest: an empty
	 * root, the VMM's credentials, no capabilities. */
	if (chroot(s.root) != 0 || chdir("/") != 0) {
		kill(pid, SIGKILL);
		fail("chroot %s for the relay: %s", s.root, strerror(errno));
	}
	if (jail_drop_privileges(&s, s.as_root, &what) != 0) {
		kill(pid, SIGKILL);
		fail("relay: %s: %s", what, strerror(errno));
	}
	status("ok %d %d", (int)pid, (int)getpid());
	relay_run(&s, l, n, pid);
}
