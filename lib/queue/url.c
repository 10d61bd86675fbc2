/*
 * lib/queue/url.c - parse redis://[user:password@]host[:port][/db] and
 * unix:///path[?db=N&user=U&password=P]. The user and password are
 * percent-decoded (as redis-py and libpq do), so that a password may hold
 * any character: %40 for '@', %2F for '/', %3A for ':', %25 for '%'.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

const char *aeth__redis_url_resolve(const char *url)
{
	if (!url)
		url = getenv("AETH_REDIS_URL");
	return url && *url ? url : "redis://127.0.0.1:6379";
}

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
		"bad redis URL '%s': %s (use redis://[user:password@]host[:port][/db] "
		"or unix:///path/to/redis.sock[?db=N&user=U&password=P])", url, why);
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s[0..len) with %XX decoded into *out (malloc'd); %00 is refused (hiredis
 * sends C strings). The message never shows the text: it may be a
 * password. */
static int decode(const char *url, const char *what, const char *s, size_t len,
		  char **out)
{
	char *d = malloc(len + 1), *p = d;

	if (!d)
		return aeth__error_oom();
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] != '%') {
			*p++ = s[i];
			continue;
		}
		if (i + 2 >= len) {
			free(d);
			return bad(url, what);
		}
		hi = hex(s[i + 1]);
		lo = hex(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(d);
			return bad(url, what);
		}
		*p++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*p = '\0';
	*out = d;
	return 0;
}

/* "db=N&user=U&password=P" */
static int parse_query(const char *url, const char *qs, aeth__redis_url *u)
{
	while (*qs) {
		size_t len = strcspn(qs, "&");
		long v;

		if (strncmp(qs, "db=", 3) == 0) {
			if (parse_int(qs + 3, len - 3, 0, 1000000, &v))
				return bad(url, "db must be a number");
			u->db = (int)v;
		} else if (strncmp(qs, "password=", 9) == 0 ||
			   strncmp(qs, "user=", 5) == 0) {
			bool pw = qs[0] == 'p';
			char **field = pw ? &u->password : &u->user;
			size_t key = pw ? 9 : 5;
			int rc;

			free(*field);
			*field = NULL;
			rc = decode(url, "bad %-escape in the user or password (use "
				    "%XX with two hex digits, not %00)", qs + key,
				    len - key, field);
			if (rc)
				return rc;
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
	const char *esc = "bad %-escape in the user or password (use %XX with "
			  "two hex digits, not %00)";
	int rc;

	if (!colon)
		return bad(url, "user info needs ':' before the password");
	if (colon > s && (rc = decode(url, esc, s, (size_t)(colon - s), &u->user)))
		return rc;
	return decode(url, esc, colon + 1, len - (size_t)(colon - s) - 1,
		      &u->password);
}

static int parse_tcp(const char *url, aeth__redis_url *u)
{
	const char *p = url + strlen("redis://");
	/* the user info ends at the last '@' before the path, so that a raw
	 * '@' in a password works too */
	const char *at = memrchr(p, '@', strcspn(p, "/"));
	const char *host, *end, *hend, *colon;
	long v;
	int rc;

	if (strchr(p + strcspn(p, "/"), '@'))
		return bad(url, "a '/' in the user or password must be written "
			   "%2F (and '%' as %25)");
	if (at) {
		rc = parse_userinfo(url, p, (size_t)(at - p), u);
		if (rc)
			return rc;
		p = at + 1;
	}
	host = p;
	end = host + strcspn(host, "/");
	if (*host == '[') { /* an IPv6 address: [::1]:6379 */
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close || (close + 1 != end && close[1] != ':'))
			return bad(url, "an IPv6 address needs its closing ']' "
				   "before the port: redis://[::1]:6379/0");
		host++;
		hend = close;
		colon = close + 1 != end ? close + 1 : NULL;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		hend = colon ? colon : end;
	}
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
	if (u->path) /* "%.0d" prints nothing for db 0 */
		u->display = aeth__sprintf("unix://%s%s%.0d%s%s", u->path,
					   u->db ? "?db=" : "", u->db,
					   u->user ? (u->db ? "&user=" : "?user=") : "",
					   u->user ? u->user : "");
	else
		u->display = aeth__sprintf("redis://%s%s%s%s%s:%d/%d",
					   u->user ? u->user : "", u->user ? "@" : "",
					   strchr(u->host, ':') ? "[" : "", u->host,
					   strchr(u->host, ':') ? "]" : "", u->port, u->db);
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
	if (rc == 0 && out->user && !out->password)
		rc = bad(url, "an ACL user needs its password (user=U&password=P)");
	if (rc == 0)
		rc = make_display(out);
	if (rc)
		aeth__redis_url_clear(out);
	return rc;
}
