/*
 * lib/queue/url.c - parse the Redis URLs:
 *   redis://[user:password@]host[:port][/db]            one server
 *   unix:///path[?db=N&user=U&password=P]                one server, socket
 *   redis-cluster://[user:password@]host:port[,host:port...]
 *                                                        Redis Cluster seeds
 *   redis-sentinel://[user:password@]host:port[,host:port...]/MASTER
 *       [?db=N&sentinel_user=U&sentinel_password=P]      a primary found
 *                                                        through sentinels
 * The user and password are percent-decoded (as redis-py and libpq do),
 * so that a password may hold any character: %40 for '@', %2F for '/',
 * %3A for ':', %25 for '%'. In the seed forms they are those of the data
 * nodes; sentinels that want their own password take sentinel_password.
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
	for (size_t i = 0; i < u->nseeds; i++)
		free(u->seeds[i].host);
	free(u->seeds);
	free(u->master);
	free(u->sentinel_user);
	free(u->sentinel_password);
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
		"bad redis URL '%s': %s (use redis://[user:password@]host[:port][/db], "
		"unix:///path/to/redis.sock[?db=N&user=U&password=P], "
		"redis-cluster://[user:password@]host:port[,host:port...] or "
		"redis-sentinel://[user:password@]host:port[,host:port...]/MASTER"
		"[?db=N&sentinel_password=P]; docs/queue.md)", url, why);
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

/* "db=N&user=U&password=P" (unix://) or "db=N&sentinel_user=U&
 * sentinel_password=P" (redis-sentinel://). */
static int parse_query(const char *url, const char *qs, aeth__redis_url *u)
{
	bool sentinel = u->kind == AETH__REDIS_SENTINEL;

	while (*qs) {
		size_t len = strcspn(qs, "&");
		const char *eq = memchr(qs, '=', len);
		size_t klen = eq ? (size_t)(eq - qs) : len;
		char **field = NULL;
		long v;

		if (klen == 2 && !strncmp(qs, "db", 2) && eq) {
			if (parse_int(eq + 1, len - 3, 0, 1000000, &v))
				return bad(url, "db must be a number");
			u->db = (int)v;
		} else if (!sentinel && klen == 8 && !strncmp(qs, "password", 8)) {
			field = &u->password;
		} else if (!sentinel && klen == 4 && !strncmp(qs, "user", 4)) {
			field = &u->user;
		} else if (sentinel && klen == 17 && !strncmp(qs, "sentinel_password", 17)) {
			field = &u->sentinel_password;
		} else if (sentinel && klen == 13 && !strncmp(qs, "sentinel_user", 13)) {
			field = &u->sentinel_user;
		} else {
			return bad(url, "unknown query parameter");
		}
		if (field) {
			int rc;

			if (!eq)
				return bad(url, "a query parameter needs '='");
			free(*field);
			*field = NULL;
			rc = decode(url, "bad %-escape in the user or password (use "
				    "%XX with two hex digits, not %00)", eq + 1,
				    len - klen - 1, field);
			if (rc)
				return rc;
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

/* host[:port] or [v6][:port] in s[0..len) into *host (malloc'd), *port. */
static int parse_hostport(const char *url, const char *s, size_t len, int defport,
			  char **host, int *port)
{
	const char *end = s + len, *hend, *colon;
	long v;

	if (len > 0 && *s == '[') { /* an IPv6 address: [::1]:6379 */
		const char *close = memchr(s, ']', len);

		if (!close || (close + 1 != end && close[1] != ':'))
			return bad(url, "an IPv6 address needs its closing ']' "
				   "before the port: redis://[::1]:6379/0");
		s++;
		hend = close;
		colon = close + 1 != end ? close + 1 : NULL;
	} else {
		colon = memchr(s, ':', len);
		hend = colon ? colon : end;
	}
	if (hend == s)
		return bad(url, "missing host");
	if (memchr(s, '@', (size_t)(hend - s)) || memchr(s, '?', (size_t)(hend - s)))
		return bad(url, "a host name has no '@' or '?'");
	*port = defport;
	if (colon) {
		if (parse_int(colon + 1, (size_t)(end - colon - 1), 1, 65535, &v))
			return bad(url, "port must be 1..65535");
		*port = (int)v;
	}
	*host = strndup(s, (size_t)(hend - s));
	return *host ? 0 : aeth__error_oom();
}

/* The user info, when there is one, of p[0..len) (len: up to the path);
 * *rest is what follows it. */
static int take_userinfo(const char *url, const char *p, size_t len,
			 aeth__redis_url *u, const char **rest)
{
	/* the user info ends at the last '@' before the path, so that a raw
	 * '@' in a password works too */
	const char *at = memrchr(p, '@', len);
	int rc;

	*rest = p;
	if (strchr(p + len, '@'))
		return bad(url, "a '/' in the user or password must be written "
			   "%2F (and '%' as %25)");
	if (!at)
		return 0;
	if ((rc = parse_userinfo(url, p, (size_t)(at - p), u)))
		return rc;
	*rest = at + 1;
	return 0;
}

static int parse_tcp(const char *url, aeth__redis_url *u)
{
	const char *p = url + strlen("redis://"), *host, *end;
	long v;
	int rc;

	if ((rc = take_userinfo(url, p, strcspn(p, "/"), u, &host)))
		return rc;
	end = host + strcspn(host, "/");
	if ((rc = parse_hostport(url, host, (size_t)(end - host), 6379, &u->host,
				 &u->port)))
		return rc;
	if (*end == '/' && end[1]) {
		if (parse_int(end + 1, strlen(end + 1), 0, 1000000, &v))
			return bad(url, "db must be a number");
		u->db = (int)v;
	}
	return 0;
}

/* "host:port,host:port" in s[0..len) into u->seeds. */
static int parse_seeds(const char *url, const char *s, size_t len, int defport,
		       aeth__redis_url *u)
{
	const char *end = s + len;

	if (len == 0)
		return bad(url, "missing host");
	for (const char *p = s; p <= end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
		int rc;

		if (u->nseeds == AETH__REDIS_SEEDS_MAX)
			return bad(url, "more than 64 hosts");
		if (!u->seeds && !(u->seeds = calloc(AETH__REDIS_SEEDS_MAX,
						     sizeof(*u->seeds))))
			return aeth__error_oom();
		if ((rc = parse_hostport(url, p, n, defport, &u->seeds[u->nseeds].host,
					 &u->seeds[u->nseeds].port)))
			return rc;
		u->nseeds++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

/* redis-cluster://[user:password@]host:port[,host:port...][/0] */
static int parse_cluster(const char *url, aeth__redis_url *u)
{
	const char *p = url + strlen("redis-cluster://"), *hosts, *end;
	int rc;

	u->kind = AETH__REDIS_CLUSTER;
	if ((rc = take_userinfo(url, p, strcspn(p, "/"), u, &hosts)))
		return rc;
	end = hosts + strcspn(hosts, "/");
	if ((rc = parse_seeds(url, hosts, (size_t)(end - hosts), 6379, u)))
		return rc;
	if (*end == '/' && end[1] && strcmp(end, "/0") != 0)
		return bad(url, "a Redis Cluster has only database 0");
	return 0;
}

/* redis-sentinel://[user:password@]host:port[,...]/MASTER[?query] */
static int parse_sentinel(const char *url, aeth__redis_url *u)
{
	const char *p = url + strlen("redis-sentinel://"), *hosts, *end, *name;
	size_t nlen;
	int rc;

	u->kind = AETH__REDIS_SENTINEL;
	if ((rc = take_userinfo(url, p, strcspn(p, "/"), u, &hosts)))
		return rc;
	end = hosts + strcspn(hosts, "/");
	if ((rc = parse_seeds(url, hosts, (size_t)(end - hosts), 26379, u)))
		return rc;
	if (*end != '/')
		return bad(url, "the primary's name (as in the sentinels' "
			   "'sentinel monitor NAME ...') must follow the hosts: "
			   "redis-sentinel://host:26379/mymaster");
	name = end + 1;
	nlen = strcspn(name, "?");
	if (nlen == 0 || nlen > 64 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789_.-") != nlen)
		return bad(url, "the primary's name must be 1..64 characters of "
			   "[A-Za-z0-9_.-]");
	if (!(u->master = strndup(name, nlen)))
		return aeth__error_oom();
	if (name[nlen] == '?')
		return parse_query(url, name + nlen + 1, u);
	return 0;
}

/* The seeds as "host:port,host:port" (IPv6 in brackets). */
static char *seed_list(const aeth__redis_url *u)
{
	char *out = aeth__strdup("");

	for (size_t i = 0; out && i < u->nseeds; i++) {
		const char *h = u->seeds[i].host;
		bool v6 = strchr(h, ':') != NULL;
		char *next = aeth__sprintf("%s%s%s%s%s:%d", out, i ? "," : "",
					   v6 ? "[" : "", h, v6 ? "]" : "",
					   u->seeds[i].port);

		free(out);
		out = next;
	}
	return out;
}

static int make_display(aeth__redis_url *u)
{
	char *seeds;

	if (u->kind != AETH__REDIS_SINGLE) {
		if (!(seeds = seed_list(u)))
			return AETH_ENOMEM;
		if (u->kind == AETH__REDIS_CLUSTER)
			u->display = aeth__sprintf("redis-cluster://%s%s%s",
						   u->user ? u->user : "",
						   u->user ? "@" : "", seeds);
		else
			u->display = aeth__sprintf("redis-sentinel://%s%s%s/%s%s%.0d",
						   u->user ? u->user : "",
						   u->user ? "@" : "", seeds, u->master,
						   u->db ? "?db=" : "", u->db);
		free(seeds);
	} else if (u->path) { /* "%.0d" prints nothing for db 0 */
		u->display = aeth__sprintf("unix://%s%s%.0d%s%s", u->path,
					   u->db ? "?db=" : "", u->db,
					   u->user ? (u->db ? "&user=" : "?user=") : "",
					   u->user ? u->user : "");
	} else {
		u->display = aeth__sprintf("redis://%s%s%s%s%s:%d/%d",
					   u->user ? u->user : "", u->user ? "@" : "",
					   strchr(u->host, ':') ? "[" : "", u->host,
					   strchr(u->host, ':') ? "]" : "", u->port, u->db);
	}
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
	else if (strncmp(url, "redis-cluster://", 16) == 0)
		rc = parse_cluster(url, out);
	else if (strncmp(url, "redis-sentinel://", 17) == 0)
		rc = parse_sentinel(url, out);
	else
		rc = bad(url, "unknown scheme");
	if (rc == 0 && out->user && !out->password)
		rc = bad(url, "an ACL user needs its password (user=U&password=P)");
	if (rc == 0 && out->sentinel_user && !out->sentinel_password)
		rc = bad(url, "sentinel_user needs its sentinel_password");
	if (rc == 0)
		rc = make_display(out);
	if (rc)
		aeth__redis_url_clear(out);
	return rc;
}
