/*
 * tests/client/client_fixture.h - the set-up the client tests share: a
 * fresh PostgreSQL database (tests/support/pg.h), migrated, a Redis key
 * namespace of its own (tests/support/redis.h), a store, a client and a
 * queue handle on them; all removed by teardown, also after a failure.
 */
#ifndef AETH_TESTS_CLIENT_FIXTURE_H
#define AETH_TESTS_CLIENT_FIXTURE_H

#include <stdlib.h>

#include "aetherium/aetherium.h"
#include "pg.h"
#include "redis.h"

typedef struct {
	char *db_url;
	char *ns;
	aeth_store *store;
	aeth_client *client;
	aeth_queue *queue;
} fixture;

static int teardown(void **state)
{
	fixture *f = *state;

	if (!f)
		return 0;
	aeth_client_free(f->client);
	aeth_queue_free(f->queue);
	aeth_store_free(f->store);
	if (f->ns)
		aeth_test_redis_cleanup(aeth_test_redis_url(), f->ns);
	if (f->db_url)
		aeth_test_pg_drop(f->db_url);
	free(f->db_url);
	free(f->ns);
	free(f);
	return 0;
}

static int setup(void **state)
{
	aeth_client_options co = AETH_CLIENT_OPTIONS_INIT;
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	fixture *f = calloc(1, sizeof(*f));

	*state = f;
	if (!f || aeth_test_pg_fresh(&f->db_url) != 0) {
		print_error("%s\n", aeth_test_pg_error());
		return -1;
	}
	if (!aeth_test_redis_url() || !(f->ns = aeth_test_redis_prefix())) {
		print_error("no Redis to test against: scripts/services.sh start\n");
		return -1;
	}
	co.database_url = f->db_url;
	co.redis_url = qo.url = aeth_test_redis_url();
	co.redis_ns = qo.ns = f->ns;
	if (aeth_store_open(&f->store, f->db_url) != 0 ||
	    aeth_store_migrate(f->store) != 0 ||
	    aeth_client_open(&f->client, &co) != 0 ||
	    aeth_queue_open(&f->queue, &qo) != 0) {
		print_error("%s\n", aeth_error_last());
		return -1;
	}
	return 0;
}

#endif
