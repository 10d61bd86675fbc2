/*
 * lib/queue/url.c - parse redis://[user:password@]host[:port][/db] and
 * unix:///path[?db=N&password=P].
 */
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

void aeth__redis_url_clear(aeth__redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	free(u->password);
	free(u->display);
	memset(u, 0, sizeof(*u));
}

static int parse_int(const char *s, size_t len, long min, long max, long *out)
{
	char buf[16], *end;
	long v;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	v = strtol(buf, &end, 10);
	if (*end || buf[0] == '-' || buf[0] == '+' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int bad(const char *url, const char *why)
{
	/* Never copy a password into a message. */
	if (strchr(url, '@') || strstr(url, "password="))
		url = "(URL with a password)";
	return aeth__error_set(AETH_EINVALID,
		"bad redis URL '%s': %s (use redis://[:password@]host[:port][/db] "
		"or unix:///path/to/redis.sock[?db=N])", url, why);
}

/* "db=N&password=P" */
static int parse_query(const char *url, const char *qs, aeth__redis_url *u)
{
	while (*qs) {
		size_t len = strcspn(qs, "&");
		long v;

		if (strncmp(qs, "db=", 3) == 0) {
			if (parse_int(qs + 3, len - 3, 0, 1000000, &v))
				return bad(url, "db must be a number");
			u->db = (int)v;
		} else if (strncmp(qs, "password=", 9) == 0) {
			free(u->password);
			u->password = strndup(qs + 9, len - 9);
			if (!u->password)
				return aeth__error_oom();
		} else {
			return bad(url, "unknown query parameter");
		}
		qs += len;
		if (*qs == '&')
			qs++;
	}
	return 0;
}

static int parse_unix(const char *url, aeth__redis_url *u)
{
	const char *p = url + strlen("unix://");
	size_t plen = strcspn(p, "?");

	if (plen == 0 || p[0] != '/')
		return bad(url, "the socket path must be absolute");
	u->path = strndup(p, plen);
	if (!u->path)
		return aeth__error_oom();
	if (p[plen] == '?')
		return parse_query(url, p + plen + 1, u);
	return 0;
}

static int parse_userinfo(const char *url, const char *s, size_t len,
			  aeth__redis_url *u)
{
	const char *colon = memchr(s, ':', len);

	if (!colon)
		return bad(url, "user info needs ':' before the password");
	if (colon > s) {
		u->user = strndup(s, (size_t)(colon - s));
		if (!u->user)
			return aeth__error_oom();
	}
	u->password = strndup(colon + 1, len - (size_t)(colon - s) - 1);
	return u->password ? 0 : aeth__error_oom();
}

static int parse_tcp(const char *url, aeth__redis_url *u)
{
	const char *p = url + strlen("redis://");
	size_t auth_len = strcspn(p, "@/");
	const char *host, *end;
	long v;
	int rc;

	if (p[auth_len] == '@') {
		rc = parse_userinfo(url, p, auth_len, u);
		if (rc)
			return rc;
		p += auth_len + 1;
	}
	host = p;
	end = host + strcspn(host, "/");
	const char *colon = memchr(host, ':', (size_t)(end - host));
	const char *hend = colon ? colon : end;
	if (hend == host)
		return bad(url, "missing host");
	u->host = strndup(host, (size_t)(hend - host));
	if (!u->host)
		return aeth__error_oom();
	u->port = 6379;
	if (colon) {
		if (parse_int(colon + 1, (size_t)(end - colon - 1), 1, 65535, &v))
			return bad(url, "port must be 1..65535");
		u->port = (int)v;
	}
	if (*end == '/' && end[1]) {
		if (parse_int(end + 1, strlen(end + 1), 0, 1000000, &v))
			return bad(url, "db must be a number");
		u->db = (int)v;
	}
	return 0;
}

static int make_display(aeth__redis_url *u)
{
	if (u->path)
		u->display = u->db ? aeth__sprintf("unix://%s?db=%d", u->path, u->db)
				   : aeth__sprintf("unix://%s", u->path);
	else
		u->display = aeth__sprintf("redis://%s:%d/%d", u->host, u->port,
					   u->db);
	return u->display ? 0 : AETH_ENOMEM;
}

int aeth__redis_url_parse(const char *url, aeth__redis_url *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!url || !*url)
		return bad("", "empty");
	if (strlen(url) > 4096)
		return bad("(too long)", "longer than 4096 bytes");
	if (strncmp(url, "unix://", 7) == 0)
		rc = parse_unix(url, out);
	else if (strncmp(url, "redis://", 8) == 0)
		rc = parse_tcp(url, out);
	else
		rc = bad(url, "unknown scheme");
	if (rc == 0)
		rc = make_display(out);
	if (rc)
		aeth__redis_url_clear(out);
	return rc;
}
