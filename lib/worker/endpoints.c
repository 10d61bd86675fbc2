/*
 * lib/worker/endpoints.c - where Redis and PostgreSQL URLs lead; see
 * endpoints.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/queue_internal.h"
#include "store/store_internal.h"
#include "worker/endpoints.h"

bool aeth__host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!host || !*host)
		return false;
	if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost."))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return false;
}

static void set_endpoint(aeth__endpoint *ep, const char *host, size_t len,
			 unsigned int port)
{
	if (len >= sizeof(ep->host))
		len = sizeof(ep->host) - 1;
	memcpy(ep->host, host, len);
	ep->host[len] = '\0';
	ep->port = port;
	ep->loopback = aeth__host_is_loopback(ep->host);
}

bool aeth__redis_endpoint(const char *url, aeth__endpoint *ep)
{
	aeth__endpoint first;
	size_t n = 0;

	if (!aeth__redis_endpoints(url, &first, 1, &n))
		return false;
	if (ep)
		*ep = first;
	return true;
}

bool aeth__redis_endpoints(const char *url, aeth__endpoint *eps, size_t max,
			   size_t *n)
{
	aeth__redis_url u;
	size_t total = 0;

	*n = 0;
	if (aeth__redis_url_parse(aeth__redis_url_resolve(url), &u) != 0)
		return false;
	if (u.host && total++ < max)
		set_endpoint(&eps[total - 1], u.host, strlen(u.host), (unsigned int)u.port);
	for (size_t i = 0; i < u.nseeds; i++)
		if (total++ < max)
			set_endpoint(&eps[total - 1], u.seeds[i].host,
				     strlen(u.seeds[i].host), (unsigned int)u.seeds[i].port);
	aeth__redis_url_clear(&u);
	*n = total < max ? total : max;
	return total > 0;
}

/* Entries of a comma-separated list (libpq's host, hostaddr, port). */
static size_t list_count(const char *s)
{
	size_t n = 1;

	if (!s)
		return 0;
	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* Entry i of the list: its start into *item, its length returned. */
static size_t list_item(const char *s, size_t i, const char **item)
{
	while (i-- > 0)
		s = strchr(s, ',') + 1;
	*item = s;
	return strcspn(s, ",");
}

/* The port of entry i: one port for all, or one each; empty: 5432. */
static unsigned int port_of(const char *ports, size_t i)
{
	const char *p;
	size_t len, np = list_count(ports);
	char buf[8], *end;
	long v;

	if (np == 0)
		return 5432;
	len = list_item(ports, np == 1 ? 0 : i, &p);
	if (len == 0)
		return 5432;
	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, p, len);
	buf[len] = '\0';
	v = strtol(buf, &end, 10);
	return *end || v < 1 || v > 65535 ? 0 : (unsigned int)v;
}

bool aeth__pg_endpoints(const char *conninfo, aeth__endpoint *eps, size_t max,
			size_t *n)
{
	aeth__store_conninfo ci;
	const char *hosts, *addrs, *ports;
	size_t count, got = 0, tcp = 0;

	if (n)
		*n = 0;
	if (aeth__store_conninfo_read(&ci, conninfo) != 0)
		return false;
	hosts = ci.host;
	addrs = ci.hostaddr;
	ports = ci.port;
	/* libpq: with hostaddr, its list sets the number of entries */
	count = addrs ? list_count(addrs) : hosts ? list_count(hosts) : 1;
	for (size_t i = 0; i < count; i++) {
		const char *h = "", *a = "";
		size_t hl = 0, al = 0;

		if (hosts && i < list_count(hosts))
			hl = list_item(hosts, i, &h);
		if (addrs)
			al = list_item(addrs, i, &a);
		if (al == 0 && (hl == 0 || h[0] == '/' || h[0] == '@'))
			continue; /* a Unix socket directory (none: libpq's own) */
		tcp++;
		if (eps && got < max)
			set_endpoint(&eps[got++], al ? a : h, al ? al : hl,
				     port_of(ports, i));
	}
	aeth__store_conninfo_clear(&ci);
	if (n)
		*n = got;
	return tcp > 0;
}

const char *aeth__pg_sslmode(const char *conninfo)
{
	static const char *const modes[] = {
		"disable", "allow", "prefer", "require", "verify-ca", "verify-full",
	};
	aeth__store_conninfo ci;
	const char *mode, *found = NULL;

	if (aeth__store_conninfo_read(&ci, conninfo) != 0)
		return NULL;
	mode = ci.sslmode ? ci.sslmode : "prefer";
	for (size_t i = 0; i < AETH__ARRAY_LEN(modes); i++)
		if (!strcmp(mode, modes[i]))
			found = modes[i];
	aeth__store_conninfo_clear(&ci);
	return found;
}
