/*
 * lib/vm/firecracker_vsock.c - the CONNECT handshake of Firecracker's
 * hybrid vsock, retried while the guest is not listening yet.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "vm/backend.h"
#include "vm/firecracker_api.h"
#include "vm/firecracker_vsock.h"

/* The answer is "OK <u32>\n": anything longer is not Firecracker. */
#define FC_LINE_MAX 32
/* A single attempt waits at most this long for the answer: Firecracker
 * answers at once when the guest is running; a connection made before
 * InstanceStart waits in its backlog, and trying again costs little. */
#define FC_ATTEMPT_MS 2000

#define FC_NO_ATTEMPT "no attempt made"

enum attempt { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FAIL };

/* Read one '\n'-terminated line byte by byte (so that nothing after it,
 * the agent's first bytes, is consumed). Returns its length, 0 on EOF,
 * -1 on timeout or error (errno), -2 when too long. */
static int read_line(int fd, char *line, size_t cap, int64_t until_ms)
{
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = until_ms - aeth__now_ms();
		ssize_t r;
		int pr;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			if (pr == 0)
				errno = ETIMEDOUT;
			return -1;
		}
		r = read(fd, line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == ECONNRESET ? 0 : -1;
		if (r == 0)
			return 0;
		if (line[n++] == '\n') {
			line[n] = '\0';
			return (int)n;
		}
	}
	return -2;
}

static bool is_ok_line(const char *line)
{
	const char *p = line + 3;

	if (strncmp(line, "OK ", 3) != 0 || *p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	return strcmp(p, "\n") == 0;
}

/* One connect + CONNECT + answer. `why` gets what a retry is for. */
static enum attempt attempt(const char *uds_path, unsigned int port,
			    int64_t deadline_ms, int *fd_out, char *why,
			    size_t why_len, int *err)
{
	char req[32], line[FC_LINE_MAX];
	int64_t until = aeth__now_ms() + FC_ATTEMPT_MS;
	int fd, n, len;

	fd = aeth__fc_unix_connect(uds_path);
	if (fd == -ENAMETOOLONG) {
		*err = aeth__error_set(AETH_ETOOBIG,
				       "vsock socket path %s is too long for a Unix socket (max 107 bytes): use a shorter state dir",
				       uds_path);
		return ATTEMPT_FAIL;
	}
	if (fd < 0) {
		snprintf(why, why_len, "connect: %s", strerror(-fd));
		return ATTEMPT_RETRY;
	}
	len = snprintf(req, sizeof(req), "CONNECT %u\n", port);
	if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		snprintf(why, why_len, "sending CONNECT: %s", strerror(errno));
		close(fd);
		return ATTEMPT_RETRY;
	}
	n = read_line(fd, line, sizeof(line), until < deadline_ms ? until : deadline_ms);
	if (n > 0 && is_ok_line(line)) {
		*fd_out = fd;
		return ATTEMPT_OK;
	}
	close(fd);
	if (n == 0) {
		snprintf(why, why_len, "closed without a reply (nothing listening on guest port %u yet)",
			 port);
		return ATTEMPT_RETRY;
	}
	if (n == -1) {
		/* An attempt cut short by the overall deadline says less than
		 * the one before it: keep that one's reason. */
		if (aeth__now_ms() < deadline_ms || strcmp(why, FC_NO_ATTEMPT) == 0)
			snprintf(why, why_len, "no reply: %s", strerror(errno));
		return ATTEMPT_RETRY;
	}
	line[sizeof(line) - 1] = '\0';
	line[strcspn(line, "\n")] = '\0';
	*err = aeth__error_set(AETH_EPROTO,
			       "hybrid vsock at %s: CONNECT %u got \"%s\" instead of \"OK <port>\": is this a Firecracker vsock socket?",
			       uds_path, port, line);
	return ATTEMPT_FAIL;
}

int aeth__fc_vsock_connect(const char *uds_path, unsigned int port,
			   int64_t deadline_ms, aeth__fc_alive_fn alive,
			   void *userdata, int *fd_out)
{
	char why[160] = FC_NO_ATTEMPT;
	int64_t backoff = 5, start = aeth__now_ms();
	unsigned int attempts = 0;
	int err = 0;

	*fd_out = -1;
	for (;;) {
		int64_t left;

		if (alive && !alive(userdata))
			return aeth__error_set(AETH_EUNAVAILABLE,
					       "hybrid vsock at %s: the firecracker process exited while waiting for the guest agent on vsock port %u (last attempt: %s)",
					       uds_path, port, why);
		attempts++;
		switch (attempt(uds_path, port, deadline_ms, fd_out, why, sizeof(why), &err)) {
		case ATTEMPT_OK:
			aeth__debug("hybrid vsock %s: port %u connected after %u attempt(s), %lld ms",
				    uds_path, port, attempts,
				    (long long)(aeth__now_ms() - start));
			return 0;
		case ATTEMPT_FAIL:
			return err;
		case ATTEMPT_RETRY:
			break;
		}
		left = deadline_ms - aeth__now_ms();
		if (left <= 0)
			return aeth__error_set(AETH_ETIMEOUT,
					       "hybrid vsock at %s: the guest did not accept on vsock port %u within %lld ms (%u attempts, last: %s): is the agent listening on AF_VSOCK (aeth.channel=vsock aeth.port=%u)? see the serial log",
					       uds_path, port, (long long)(aeth__now_ms() - start),
					       attempts, why, port);
		aeth__sleep_ms(backoff < left ? backoff : left);
		if (backoff < 100)
			backoff *= 2;
	}
}
