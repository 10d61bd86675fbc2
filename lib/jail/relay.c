/*
 * lib/jail/relay.c - the egress relay of one VM (jailer.h).
 *
 * Every connection the guest opens lands on a listener in the VMM's
 * network namespace (netns.c). The relay looks at where it was going
 * (getsockname: the address and port the guest dialled) and applies the
 * profile's rules (jail_rules.h): an allowed destination gets a connection
 * from the host's namespace and the two are spliced; anything else is
 * reset at once. "dns" relays UDP queries to the host's resolver only.
 *
 * It runs chrooted in an empty directory with the VMM's credentials and
 * no capabilities, and copies bytes without interpreting them. Bounded:
 * RELAY_MAX_CONNS connections (more are refused), RELAY_BUF bytes per
 * direction each, a connect deadline, RELAY_DNS_MAX queries in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jail/jailer.h"

#define RELAY_MAX_CONNS 128
#define RELAY_BUF 16384
#define RELAY_CONNECT_MS 10000
#define RELAY_DNS_MAX 32
#define RELAY_DNS_MS 5000
#define RELAY_MAX_SELF 32

typedef struct {
	int g, h;               /* the guest's side (accepted), the host's */
	bool connecting;
	long long deadline;     /* of the connect */
	size_t gl, hl;          /* bytes waiting: guest->host, host->guest */
	bool geof, heof;        /* that side sent its last byte */
	bool gshut, hshut;      /* we shut down writing to that side */
	char gh[RELAY_BUF];
	char hg[RELAY_BUF];
} conn;

typedef struct {
	int fd;                 /* connected to the resolver; -1 = free */
	struct sockaddr_in from;/* who asked, in the VMM's namespace */
	int listener;
	long long deadline;
} dns_query;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_on(uint32_t addr, uint16_t port, bool udp)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1;
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
				     SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    (!udp && listen(fd, 64) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The one address a rule names, or 0 (INADDR_ANY) when it takes a range:
 * a port whose rules all name single addresses gets listeners on exactly
 * those, so that a connection to any other address of that port is
 * refused by the kernel (not accepted, then reset). */
static uint32_t rule_addr(const aeth__net_rule *r)
{
	if (r->kind == AETH__RULE_HOST)
		return 0x7f000001u; /* where slirp takes the guest's 10.0.2.2 */
	if (r->kind == AETH__RULE_NET && r->mask == 0xffffffffu)
		return r->addr;
	return 0;
}

static bool port_needs_any(const jail_spec *s, uint16_t port)
{
	for (size_t i = 0; i < s->nrules; i++)
		if (s->rules[i].kind != AETH__RULE_DNS && s->rules[i].port == port &&
		    rule_addr(&s->rules[i]) == 0)
			return true;
	return false;
}

int relay_listen(const jail_spec *s, relay_listener *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nrules; i++) {
		const aeth__net_rule *r = &s->rules[i];
		bool udp = r->kind == AETH__RULE_DNS, dup = false;
		uint16_t port = udp ? 53 : r->port;
		uint32_t addr = udp || port_needs_any(s, port) ? 0 : rule_addr(r);

		for (size_t j = 0; j < n; j++)
			dup |= out[j].port == port && out[j].udp == udp &&
			       out[j].addr == addr;
		if (dup)
			continue;
		if (n == max) {
			errno = EMFILE;
			return -1;
		}
		out[n].fd = listen_on(addr, port, udp);
		if (out[n].fd < 0)
			return -1;
		out[n].port = port;
		out[n].addr = addr;
		out[n].udp = udp;
		n++;
	}
	return (int)n;
}

/* ---- the decision ---- */

static uint32_t self_addrs[RELAY_MAX_SELF];
static size_t nself;

/* The host's own IPv4 addresses: "*:PORT" must not reach the host. */
static void find_self(void)
{
	struct ifaddrs *ifs, *i;

	if (getifaddrs(&ifs) != 0)
		return;
	for (i = ifs; i && nself < RELAY_MAX_SELF; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			self_addrs[nself++] = ntohl(
				((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
	freeifaddrs(ifs);
}

static bool is_self(uint32_t a)
{
	for (size_t i = 0; i < nself; i++)
		if (self_addrs[i] == a)
			return true;
	return false;
}

/*
 * Where a guest connection to dst:port may go on the host's side (0 and
 * *to set), or -1: refused. The guest's 10.0.2.2 (QEMU's name for the
 * host) arrives as 127.0.0.1, the namespace's loopback.
 */
static int decide(const jail_spec *s, uint32_t dst, uint16_t port,
		  uint32_t *to)
{
	bool loop = (dst & 0xff000000u) == 0x7f000000u;

	for (size_t i = 0; i < s->nrules; i++) {
		const aeth__net_rule *r = &s->rules[i];

		if (r->port != port)
			continue;
		if (r->kind == AETH__RULE_HOST && loop) {
			*to = 0x7f000001u;
			return 0;
		}
		if (r->kind == AETH__RULE_NET && (dst & r->mask) == r->addr) {
			*to = dst;
			return 0;
		}
		if (r->kind == AETH__RULE_PUBLIC && aeth__net_addr_public(dst) &&
		    !is_self(dst)) {
			*to = dst;
			return 0;
		}
	}
	return -1;
}

/* ---- TCP ---- */

static void reset(int fd)
{
	struct linger l = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void conn_close(conn **slot, bool abort)
{
	conn *c = *slot;

	if (abort) {
		reset(c->g);
		reset(c->h);
	} else {
		close(c->g);
		close(c->h);
	}
	free(c);
	*slot = NULL;
}

static void accept_one(const jail_spec *s, int lfd, conn **conns)
{
	struct sockaddr_in dst, to = {.sin_family = AF_INET};
	socklen_t len = sizeof(dst);
	uint32_t target;
	size_t i;
	int g = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), h;
	conn *c;

	if (g < 0)
		return;
	for (i = 0; i < RELAY_MAX_CONNS && conns[i]; i++)
		;
	if (i == RELAY_MAX_CONNS ||
	    getsockname(g, (struct sockaddr *)&dst, &len) != 0 ||
	    dst.sin_family != AF_INET ||
	    decide(s, ntohl(dst.sin_addr.s_addr), ntohs(dst.sin_port), &target) != 0) {
		reset(g);
		return;
	}
	h = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c = h >= 0 ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		if (h >= 0)
			close(h);
		reset(g);
		return;
	}
	to.sin_addr.s_addr = htonl(target);
	to.sin_port = dst.sin_port;
	c->g = g;
	c->h = h;
	c->connecting = true;
	c->deadline = now_ms() + RELAY_CONNECT_MS;
	if (connect(h, (struct sockaddr *)&to, sizeof(to)) != 0 &&
	    errno != EINPROGRESS) {
		reset(g);
		close(h);
		free(c);
		return;
	}
	conns[i] = c;
}

/* Move bytes from fd `from` into buf; false when the connection broke. */
static bool pull(int from, char *buf, size_t *len, bool *eof)
{
	ssize_t n = read(from, buf + *len, RELAY_BUF - *len);

	if (n > 0)
		*len += (size_t)n;
	else if (n == 0)
		*eof = true;
	else if (errno != EAGAIN && errno != EINTR)
		return false;
	return true;
}

static bool push(int to, char *buf, size_t *len)
{
	ssize_t n = send(to, buf, *len, MSG_NOSIGNAL);

	if (n > 0) {
		memmove(buf, buf + n, *len - (size_t)n);
		*len -= (size_t)n;
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		return false;
	}
	return true;
}

/* One connection's events (pg = guest fd's revents, ph = host's). */
static void step(conn **slot, short pg, short ph, long long now)
{
	conn *c = *slot;
	bool ok = true;

	if (c->connecting) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!ph && now < c->deadline)
			return;
		if (!ph || getsockopt(c->h, SOL_SOCKET, SO_ERROR, &err, &l) != 0 ||
		    err) {
			conn_close(slot, true);
			return;
		}
		c->connecting = false;
		ph = 0; /* POLLOUT of the connect; go on with a fresh poll */
	}
	if (pg & (POLLIN | POLLHUP | POLLERR))
		ok = ok && pull(c->g, c->gh, &c->gl, &c->geof);
	if (ph & (POLLIN | POLLHUP | POLLERR))
		ok = ok && pull(c->h, c->hg, &c->hl, &c->heof);
	if (ok && c->gl)
		ok = push(c->h, c->gh, &c->gl);
	if (ok && c->hl)
		ok = push(c->g, c->hg, &c->hl);
	if (!ok) {
		conn_close(slot, true);
		return;
	}
	if (c->geof && !c->gl && !c->hshut) {
		shutdown(c->h, SHUT_WR);
		c->hshut = true;
	}
	if (c->heof && !c->hl && !c->gshut) {
		shutdown(c->g, SHUT_WR);
		c->gshut = true;
	}
	if (c->gshut && c->hshut)
		conn_close(slot, false);
}

/* ---- DNS ---- */

static void dns_ask(const jail_spec *s, int lfd, dns_query *q)
{
	struct sockaddr_in r = {.sin_family = AF_INET, .sin_port = htons(53)};
	char buf[4096];
	socklen_t fl = sizeof(q->from);
	struct sockaddr_in from;
	ssize_t n;
	size_t i;

	n = recvfrom(lfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	if (n <= 0 || !s->resolver)
		return;
	for (i = 0; i < RELAY_DNS_MAX && q[i].fd >= 0; i++)
		;
	if (i == RELAY_DNS_MAX)
		return; /* too many in flight: the guest's resolver retries */
	r.sin_addr.s_addr = htonl(s->resolver);
	q[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q[i].fd < 0)
		return;
	if (connect(q[i].fd, (struct sockaddr *)&r, sizeof(r)) != 0 ||
	    send(q[i].fd, buf, (size_t)n, 0) != n) {
		close(q[i].fd);
		q[i].fd = -1;
		return;
	}
	q[i].from = from;
	q[i].listener = lfd;
	q[i].deadline = now_ms() + RELAY_DNS_MS;
}

static void dns_answer(dns_query *q)
{
	char buf[4096];
	ssize_t n = recv(q->fd, buf, sizeof(buf), 0);

	if (n > 0)
		sendto(q->listener, buf, (size_t)n, 0, (struct sockaddr *)&q->from,
		       sizeof(q->from));
	close(q->fd);
	q->fd = -1;
}

/* ---- the loop ---- */

static bool vmm_gone(pid_t pid)
{
	pid_t r = waitpid(pid, NULL, WNOHANG);

	return r == pid || (r < 0 && errno == ECHILD);
}

void relay_run(const jail_spec *s, relay_listener *l, size_t nl, pid_t vmm)
{
	enum { MAXP = RELAY_MAX_LISTENERS + RELAY_DNS_MAX + 2 * RELAY_MAX_CONNS + 1 };
	static conn *conns[RELAY_MAX_CONNS];
	static dns_query q[RELAY_DNS_MAX];
	struct pollfd p[MAXP];
	int pidfd = (int)syscall(SYS_pidfd_open, vmm, 0);

	find_self();
	for (size_t i = 0; i < RELAY_DNS_MAX; i++)
		q[i].fd = -1;
	for (;;) {
		size_t np = 0, lbase, qbase, cbase;
		long long now;

		if (pidfd >= 0)
			p[np++] = (struct pollfd){pidfd, POLLIN, 0};
		lbase = np;
		for (size_t i = 0; i < nl; i++)
			p[np++] = (struct pollfd){l[i].fd, POLLIN, 0};
		qbase = np;
		for (size_t i = 0; i < RELAY_DNS_MAX; i++)
			p[np++] = (struct pollfd){q[i].fd, POLLIN, 0};
		cbase = np;
		for (size_t i = 0; i < RELAY_MAX_CONNS; i++) {
			conn *c = conns[i];
			short eg = 0, eh = 0;

			if (c && c->connecting) {
				eh = POLLOUT;
			} else if (c) {
				if (!c->geof && c->gl < RELAY_BUF)
					eg |= POLLIN;
				if (!c->heof && c->hl < RELAY_BUF)
					eh |= POLLIN;
				if (c->gl)
					eh |= POLLOUT;
				if (c->hl)
					eg |= POLLOUT;
			}
			p[np++] = (struct pollfd){c ? c->g : -1, eg, 0};
			p[np++] = (struct pollfd){c ? c->h : -1, eh, 0};
		}
		if (poll(p, np, 1000) < 0 && errno != EINTR)
			_exit(1);
		if ((pidfd >= 0 && p[0].revents) || (pidfd < 0 && vmm_gone(vmm))) {
			waitpid(vmm, NULL, 0);
			_exit(0);
		}
		now = now_ms();
		for (size_t i = 0; i < nl; i++) {
			if (!p[lbase + i].revents)
				continue;
			if (l[i].udp)
				dns_ask(s, l[i].fd, q);
			else
				accept_one(s, l[i].fd, conns);
		}
		for (size_t i = 0; i < RELAY_DNS_MAX; i++) {
			if (q[i].fd < 0)
				continue;
			if (p[qbase + i].revents)
				dns_answer(&q[i]);
			else if (now >= q[i].deadline) {
				close(q[i].fd);
				q[i].fd = -1;
			}
		}
		for (size_t i = 0; i < RELAY_MAX_CONNS; i++)
			if (conns[i])
				step(&conns[i], p[cbase + 2 * i].revents,
				     p[cbase + 2 * i + 1].revents, now);
	}
}
