/*
 * lib/worker/infra_warnings.h - risky ways of reaching Redis and
 * PostgreSQL, which hold the keys to every VM: Redis over TCP without a
 * password, Redis over TCP to another host (hiredis 0.14 has no TLS),
 * PostgreSQL over TCP to another host without a verified TLS session, a
 * password in a config file that others may read. The worker logs them at
 * the start of aeth_worker_run(); aeth-worker -check shows them with their
 * fixes. None stops the worker: an operator may have reasons (a private
 * network, a tunnel this process cannot see).
 */
#ifndef AETH_WORKER_INFRA_WARNINGS_H
#define AETH_WORKER_INFRA_WARNINGS_H

/* One warning: a short subject ("redis access"), what was found, the fix.
 * The texts never hold a password. */
typedef void (*aeth__infra_warn_cb)(const char *what, const char *detail,
				    const char *fix, void *userdata);

/*
 * Call `cb` once per warning about these settings and return how many
 * there were. redis_url and database_url as the worker uses them (NULL:
 * the environment and defaults, as aeth_queue_open() and
 * aeth_store_open() resolve them); config_path is the file they came
 * from, or NULL. URLs that do not parse give no warning (opening them
 * fails and says why).
 */
int aeth__infra_warnings(const char *redis_url, const char *database_url,
			 const char *config_path, aeth__infra_warn_cb cb,
			 void *userdata);

#endif
