/*
 * tests/support/redis.h - Redis for integration tests.
 *
 * aeth_test_redis_url() gives the URL tests use: $AETH_TEST_REDIS_URL when
 * set (scripts/services.sh env exports it), else a private redis-server
 * started on first use in a temp dir (Unix socket, no TCP port, no
 * persistence) and stopped at exit. Each test takes its own key
 * namespace from aeth_test_redis_prefix() and deletes it afterwards with
 * aeth_test_redis_cleanup(), so tests never see each other's keys.
 *
 * A private server is a child of the test process with PR_SET_PDEATHSIG,
 * and a small watchdog process removes its directory, so that a test
 * that crashes or is killed leaves nothing running.
 */
#ifndef AETH_TEST_REDIS_H
#define AETH_TEST_REDIS_H

typedef struct aeth_test_redis aeth_test_redis;

/* Start a private redis-server. 0 or -1 (the reason printed on stderr). */
int aeth_test_redis_start(aeth_test_redis **out);
/*
 * The same, also listening on 127.0.0.1 on a free TCP port
 * (aeth_test_redis_port()), with `conf` (redis.conf text, e.g. ACL "user"
 * lines and "user default off") read first: for tests of passwords and
 * ACLs over TCP. Its Unix socket stays (aeth_test_redis_server_url()),
 * under the same users. A URL with credentials,
 * redis://user:password@127.0.0.1:PORT, works in aeth_test_redis_cmd().
 */
int aeth_test_redis_start_tcp(aeth_test_redis **out, const char *conf);
/* The TCP port of a server from aeth_test_redis_start_tcp(), else 0. */
int aeth_test_redis_port(const aeth_test_redis *r);
/* unix:///tmp/aeth-redis-XXXXXX/redis.sock (borrowed). */
const char *aeth_test_redis_server_url(const aeth_test_redis *r);
/* Stop the server (SIGTERM, wait); its directory and socket path stay. */
int aeth_test_redis_stop(aeth_test_redis *r);
/* Start it again on the same socket (after aeth_test_redis_stop()). */
int aeth_test_redis_restart(aeth_test_redis *r);
/* Stop the server and remove its directory. NULL is accepted. */
void aeth_test_redis_free(aeth_test_redis *r);

/* The URL to test against (see above); NULL if no server could start. */
const char *aeth_test_redis_url(void);
/* A fresh key namespace for one test ("aetht<pid>x<random>"); malloc'd. */
char *aeth_test_redis_prefix(void);
/* Delete every key of namespace `prefix` on `url`. */
void aeth_test_redis_cleanup(const char *url, const char *prefix);
/* Run one command on `url` (printf-like, hiredis format), for checks such
 * as INFO commandstats. Returns a malloc'd copy of a string/status reply,
 * the integer in text for an integer reply, or NULL. */
char *aeth_test_redis_cmd(const char *url, const char *fmt, ...);

#endif
