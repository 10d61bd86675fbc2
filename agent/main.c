/*
 * agent/main.c - aeth-agent: arguments, the channel's connection state
 * and the poll() loop. See docs/protocol.md for what goes over the wire.
 *
 *   /init (PID 1)            mounts, modules, network, channel from
 *                            /proc/cmdline, powers off on shutdown
 *   aeth-agent --serve       the same channel, without PID 1 duties
 *   aeth-agent --stdio       speak on fds 0/1 (local tests)
 *   aeth-agent --fd N        speak on fd N (a socketpair end)
 *   aeth-agent --listen-unix PATH   accept host connections on PATH
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define MAX_POLL (3 + 3 * AGENT_MAX_EXECS)

int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void agent_log(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dprintf(2, "aeth-agent: %s\n", msg);
}

int agent_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_drop(struct agent *a)
{
	if (a->kind == CHAN_LISTEN && a->in_fd >= 0)
		close(a->in_fd);
	a->in_fd = a->out_fd = -1;
	a->out_len = 0;
	a->broken = false;
	aeth__proto_rx_reset(&a->rx);
	if (a->kind == CHAN_VPORT)
		a->backoff_until = agent_now_ms() + AGENT_BACKOFF_MS;
}

static void finish(struct agent *a, int code)
{
	agent_exec_kill_all(a, true);
	exit(code);
}

/* The host is gone for good (fd mode) or for now (the others). */
static void conn_lost(struct agent *a)
{
	if (a->kind == CHAN_FD)
		finish(a, 0);
	conn_drop(a);
}

static void accept_conn(struct agent *a)
{
	int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	/* A new host replaces the old one (library restart, reattach). */
	if (a->in_fd >= 0)
		conn_drop(a);
	a->in_fd = a->out_fd = fd;
}

static void bad_stream(struct agent *a, int rc)
{
	agent_send_error(a, 0, rc, "bad frame header (%s): closing the "
			 "stream; reconnect and say hello",
			 rc == AETH_ETOOBIG ? "length over 1 MiB"
					    : "magic, version or type");
	a->broken = true; /* ignore input until the host reconnects */
	aeth__proto_rx_reset(&a->rx);
}

static void read_conn(struct agent *a)
{
	aeth__proto_header h;
	const uint8_t *payload;
	uint8_t *p;
	ssize_t n;
	int rc;

	if (aeth__proto_rx_space(&a->rx, AETH__PROTO_CHUNK, &p) < 0)
		return;
	n = read(a->in_fd, p, AETH__PROTO_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_lost(a);
		return;
	}
	if (a->broken)
		return;
	aeth__proto_rx_commit(&a->rx, (size_t)n);
	while (a->in_fd >= 0 && !a->broken &&
	       (rc = aeth__proto_rx_next(&a->rx, &h, &payload)) != 0) {
		if (rc < 0) {
			bad_stream(a, rc);
			break;
		}
		agent_handle_frame(a, &h, payload);
	}
}

static void write_conn(struct agent *a)
{
	ssize_t n = write(a->out_fd, a->out, a->out_len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_lost(a);
		return;
	}
	memmove(a->out, a->out + n, a->out_len - (size_t)n);
	a->out_len -= (size_t)n;
	if (a->broken && a->out_len == 0 && a->kind == CHAN_LISTEN)
		conn_drop(a); /* the error went out; now close */
}

/* virtio-serial: POLLHUP means no host; look again after a pause. */
static void vport_probe(struct agent *a, int64_t now)
{
	struct pollfd p = {a->listen_fd, POLLIN, 0};

	if (a->in_fd >= 0 || now < a->backoff_until)
		return;
	if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP)) {
		a->in_fd = a->out_fd = a->listen_fd;
		return;
	}
	a->backoff_until = now + AGENT_BACKOFF_MS;
}

static int setup_signals(struct agent *a)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (!a->pid1) {
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
	}
	sigprocmask(SIG_BLOCK, &set, NULL);
	a->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return a->sig_fd;
}

static void on_signal(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			finish(a, 0);
	}
	agent_reap(a);
}

static size_t conn_pollfds(struct agent *a, struct pollfd *p)
{
	size_t n = 0;
	short ev = 0;

	if (a->kind == CHAN_LISTEN)
		p[n++] = (struct pollfd){a->listen_fd, POLLIN, 0};
	if (a->in_fd < 0)
		return n;
	if (!agent_out_full(a) && !a->shutdown)
		ev |= POLLIN;
	if (a->out_fd == a->in_fd) {
		if (a->out_len)
			ev |= POLLOUT;
		p[n++] = (struct pollfd){a->in_fd, ev, 0};
		return n;
	}
	p[n++] = (struct pollfd){a->in_fd, ev, 0};
	if (a->out_len)
		p[n++] = (struct pollfd){a->out_fd, POLLOUT, 0};
	return n;
}

static void conn_events(struct agent *a, struct pollfd *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		if (a->kind == CHAN_LISTEN && p[i].fd == a->listen_fd) {
			accept_conn(a);
			return; /* fds changed: the others are stale */
		}
		if (p[i].fd == a->out_fd && (p[i].revents & POLLOUT))
			write_conn(a);
		if (a->in_fd >= 0 && p[i].fd == a->in_fd &&
		    (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			read_conn(a);
	}
}

static int next_timeout(struct agent *a, int64_t now, int t)
{
	if (a->kind == CHAN_VPORT && a->in_fd < 0) {
		int b = a->backoff_until > now ? (int)(a->backoff_until - now) : 0;

		if (t < 0 || b < t)
			t = b;
	}
	return t;
}

static void run(struct agent *a)
{
	for (;;) {
		struct pollfd p[MAX_POLL];
		int64_t now = agent_now_ms();
		size_t nc, n;
		int t;

		if (a->kind == CHAN_VPORT)
			vport_probe(a, now);
		t = next_timeout(a, now, agent_exec_timers(a, now));
		p[0] = (struct pollfd){a->sig_fd, POLLIN, 0};
		nc = 1 + conn_pollfds(a, p + 1);
		n = nc + agent_exec_pollfds(a, p + nc, MAX_POLL - nc);
		if (poll(p, n, t) < 0 && errno != EINTR)
			agent_log("poll: %s", strerror(errno));
		if (p[0].revents)
			on_signal(a);
		conn_events(a, p + 1, nc - 1);
		agent_exec_events(a, p + nc, n - nc);
		agent_files_pump(a);
		if (a->shutdown && (a->out_len == 0 || a->in_fd < 0)) {
			if (a->pid1 || a->serve)
				agent_poweroff(a);
			finish(a, 0);
		}
	}
}

static int usage(void)
{
	fprintf(stderr,
		"usage: aeth-agent [--serve | --stdio | --fd N | "
		"--listen-unix PATH]\n"
		"  (no option as PID 1: initramfs init; see docs/protocol.md)\n");
	return 2;
}

static int parse_args(struct agent *a, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];

		if (strcmp(o, "--version") == 0) {
			printf("aeth-agent %s protocol %d\n", AGENT_VERSION,
			       AETH__PROTO_LEVEL);
			exit(0);
		} else if (strcmp(o, "--serve") == 0) {
			a->serve = true;
		} else if (strcmp(o, "--stdio") == 0) {
			a->kind = CHAN_FD;
			a->in_fd = 0;
			a->out_fd = 1;
		} else if (strcmp(o, "--fd") == 0 && i + 1 < argc) {
			a->kind = CHAN_FD;
			a->in_fd = a->out_fd = atoi(argv[++i]);
		} else if (strcmp(o, "--listen-unix") == 0 && i + 1 < argc) {
			if (agent_listen_unix(a, argv[++i]) < 0)
				return 1;
		} else if (!a->pid1) { /* PID 1 gets stray kernel arguments */
			return usage();
		}
	}
	if (!a->pid1 && !a->serve && a->in_fd < 0 && a->listen_fd < 0)
		return usage();
	return 0;
}

/* PID 1 must never exit: without a channel, retry instead. */
static void open_guest_channel(struct agent *a, char **argv)
{
	char *cmdline = agent_read_cmdline();

	if (a->pid1 && !getenv("AETH_ROOTED")) {
		agent_load_modules("/etc/aeth/modules", cmdline ? cmdline : "");
		/* busybox `ip` lives in the initramfs: before the switch */
		agent_network_setup(cmdline ? cmdline : "");
		agent_switch_root(cmdline ? cmdline : "", argv); /* may exec */
	} else if (a->pid1) {
		agent_write_resolv(cmdline ? cmdline : "");
	}
	while (agent_channel_open(a, cmdline ? cmdline : "") < 0) {
		if (!a->pid1)
			exit(1);
		sleep(1);
	}
	free(cmdline);
}

int main(int argc, char **argv)
{
	static struct agent a = {.listen_fd = -1, .in_fd = -1, .out_fd = -1,
				 .kind = CHAN_FD};
	int rc;

	a.boot_ms = agent_now_ms();
	a.pid1 = getpid() == 1;
	rc = parse_args(&a, argc, argv);
	if (rc)
		return rc;
	if (a.pid1 && !getenv("AETH_ROOTED"))
		agent_pid1_setup();
	else if (a.pid1 || a.serve)
		agent_pid1_env();
	if (setup_signals(&a) < 0) {
		agent_log("signalfd: %s", strerror(errno));
		if (!a.pid1)
			return 1;
	}
	if ((a.pid1 || a.serve) && a.in_fd < 0 && a.listen_fd < 0)
		open_guest_channel(&a, argv);
	if (a.in_fd >= 0) {
		agent_set_nonblock(a.in_fd);
		agent_set_nonblock(a.out_fd);
	}
	run(&a);
	return 0;
}
