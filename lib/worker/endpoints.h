/*
 * lib/worker/endpoints.h - where a Redis or PostgreSQL connection string
 * leads: a Unix socket on this host, or TCP to which host and port, and
 * whether that host is this host's loopback.
 *
 * Whoever reaches Redis or PostgreSQL drives every VM, so the worker warns
 * about risky ways of reaching them (infra_warnings.c, shown at the start
 * of aeth_worker_run() and by aeth-worker -check). These helpers are the
 * one place that reads the URLs for that; a check that compares the
 * services' addresses with what a guest network profile allows should use
 * them too.
 *
 * Nothing here connects or resolves names: a host is classified as written
 * ("localhost" counts as loopback, any other name does not, whatever DNS
 * says today). A URL that does not parse is "not TCP" (false, nothing
 * filled): opening it fails with the parser's message anyway. The
 * helpers may set the thread's last error (aeth_error_last()) when a URL
 * does not parse.
 */
#ifndef AETH_WORKER_ENDPOINTS_H
#define AETH_WORKER_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>

/* One TCP destination. */
typedef struct {
	/* As written, without the brackets of an IPv6 address: a name, an
	 * IPv4 or an IPv6 address. For a libpq entry with hostaddr= it is
	 * that address (what is connected to; host= is then only the name
	 * TLS checks). */
	char host[256];
	unsigned int port;
	/* 127.0.0.0/8, ::1, ::ffff:127.x.y.z or the name "localhost": only
	 * processes of this host (or of a guest network that reaches the
	 * host's loopback) can connect. */
	bool loopback;
} aeth__endpoint;

/* Most hosts of one libpq connection string these helpers report. */
#define AETH__PG_HOSTS_MAX 16

/* Is `host` (as written, no brackets) this host's loopback? See above. */
bool aeth__host_is_loopback(const char *host);

/*
 * Does the Redis URL `url` (as aeth_queue_open() takes it; NULL:
 * $AETH_REDIS_URL, else the default redis://127.0.0.1:6379) connect over
 * TCP? true: *ep (may be NULL) names the host and port. false: a Unix
 * socket (unix:///path), or a URL that does not parse.
 */
bool aeth__redis_endpoint(const char *url, aeth__endpoint *ep);

/* Every TCP address of the Redis URL: the server, or the seeds of a
 * redis-cluster:// or redis-sentinel:// URL (the cluster's other nodes
 * and the primary the sentinels name are not known without asking),
 * into eps[0..max), their number into *n. false: none (a Unix socket, a
 * URL that does not parse). With max 1 this is aeth__redis_endpoint(). */
bool aeth__redis_endpoints(const char *url, aeth__endpoint *eps, size_t max,
			   size_t *n);

/*
 * Does the libpq connection string `conninfo` (a postgresql:// URI or
 * "key=value ..."; NULL: $AETH_DATABASE_URL, else the store's default)
 * reach PostgreSQL over TCP? libpq may try several hosts ("host=a,b
 * port=1,2", postgresql://a:1,b:2/db, hostaddr= lists): the TCP ones go
 * into eps[0..max) in order and their number into *n (either may be
 * NULL/0 to ask only). Entries that are Unix socket directories (a host
 * starting with '/' or '@', or no host at all: libpq's socket directory)
 * are left out. Settings missing from the string are taken from libpq's
 * environment variables (PGHOST, PGHOSTADDR, PGPORT) as libpq would; a
 * pg_service.conf entry (service=) is not read. true when at least one
 * entry is TCP.
 */
bool aeth__pg_endpoints(const char *conninfo, aeth__endpoint *eps, size_t max,
			size_t *n);

/*
 * The sslmode libpq will use for `conninfo` (NULL as above): from the
 * string, else $PGSSLMODE, else libpq's default "prefer". One of
 * "disable", "allow", "prefer", "require", "verify-ca", "verify-full"
 * (static text), or NULL when the string does not parse or names another
 * mode.
 */
const char *aeth__pg_sslmode(const char *conninfo);

#endif
