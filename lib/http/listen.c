/*
 * lib/http/listen.c - listen specs ("127.0.0.1:9464", "[::1]:0",
 * "unix:/path") to a bound, listening socket, with the rule that plain
 * TCP off loopback needs the caller's explicit consent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http_internal.h"

int aeth__http_parse_listen(const char *spec, char **host, int *port,
			    char **unix_path)
{
	const char *colon, *h;
	size_t hlen;
	char *end;
	long p;

	*host = NULL;
	*unix_path = NULL;
	*port = 0;
	if (!spec || !*spec)
		return aeth__error_set(AETH_EINVALID,
				       "empty listen address: give HOST:PORT, "
				       "[V6]:PORT or unix:/path");
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] != '/' ||
		    strlen(spec + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return aeth__error_set(AETH_EINVALID,
					       "listen address '%s': a Unix socket needs an "
					       "absolute path of at most 107 bytes", spec);
		*unix_path = aeth__strdup(spec + 5);
		return *unix_path ? 0 : AETH_ENOMEM;
	}
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');
		if (!rb || rb[1] != ':')
			goto bad;
		h = spec + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || memchr(spec, ':', (size_t)(colon - spec)))
			goto bad;
		h = spec;
		hlen = (size_t)(colon - spec);
	}
	if (hlen == 0 || hlen > 255)
		goto bad;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
		goto bad;
	*host = strndup(h, hlen);
	if (!*host)
		return aeth__error_oom();
	*port = (int)p;
	return 0;
bad:
	return aeth__error_set(AETH_EINVALID,
			       "listen address '%s' is not HOST:PORT, [V6]:PORT "
			       "or unix:/path (e.g. 127.0.0.1:9464)", spec);
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static int listen_unix(const char *path, const char *what, int *fd_out)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* a stale socket of an earlier run is replaced; anything else at
	 * that path is the operator's and stays */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return aeth__error_set(AETH_EINVALID,
					       "%s: %s exists and is not a socket: "
					       "choose another path", what, path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return aeth__error_errno(AETH_EIO, "%s: socket", what);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    chmod(path, 0600) != 0 || listen(fd, 128) != 0) {
		int rc = aeth__error_errno(AETH_EUNAVAILABLE,
					   "%s: cannot listen on %s", what, path);
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static int listen_tcp(const char *host, int port, bool allow_remote,
		      const char *what, int *fd_out, int *port_out)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char portstr[8];
	int fd, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &ai)) != 0 || !ai)
		return aeth__error_set(AETH_EINVALID,
				       "%s: cannot resolve listen host '%s': %s",
				       what, host, gai_strerror(rc));
	if (!allow_remote && !is_loopback(ai->ai_addr)) {
		freeaddrinfo(ai);
		return aeth__error_set(AETH_EINVALID,
				       "%s: %s:%d is not a loopback address; plain "
				       "HTTP off this host must be allowed explicitly "
				       "(gateway.allow_remote or metrics.allow_remote: "
				       "true; the gateway serves any address with "
				       "gateway.tls_cert and tls_key), or listen on "
				       "127.0.0.1, [::1] or unix:/path",
				       what, host, port);
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return aeth__error_errno(AETH_EIO, "%s: socket", what);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		rc = aeth__error_errno(errno == EADDRINUSE ? AETH_EBUSY
							    : AETH_EUNAVAILABLE,
				       "%s: cannot listen on %s:%d (is another "
				       "process using it?)", what, host, port);
		freeaddrinfo(ai);
		close(fd);
		return rc;
	}
	freeaddrinfo(ai);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*port_out = ntohs(ss.ss_family == AF_INET6
				  ? ((struct sockaddr_in6 *)&ss)->sin6_port
				  : ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
}

int aeth__http_listen(const char *spec, bool allow_remote, const char *what,
		      int *fd, int *port, char **unix_path)
{
	char *host = NULL;
	int rc, p;

	*fd = -1;
	*port = 0;
	rc = aeth__http_parse_listen(spec, &host, &p, unix_path);
	if (rc < 0)
		return aeth__error_wrap(rc, "%s", what);
	if (*unix_path)
		rc = listen_unix(*unix_path, what, fd);
	else
		rc = listen_tcp(host, p, allow_remote, what, fd, port);
	free(host);
	if (rc < 0) {
		free(*unix_path);
		*unix_path = NULL;
	}
	return rc;
}
