/*
 * tests/support/store_fixture.h - an aeth_store on a fresh, migrated
 * database of its own (pg.h), for cmocka setups. Header only: the support
 * library does not link libaetherium, the tests that include this do.
 */
#ifndef AETH_TEST_STORE_FIXTURE_H
#define AETH_TEST_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "aetherium/aetherium.h"
#include "pg.h"

typedef struct {
	char *url;          /* the database's, malloc'd */
	aeth_store *store;
} aeth_test_store;

/* 0, or -1 with the reason printed (a cmocka setup fails with it). */
static inline int aeth_test_store_open(aeth_test_store *t)
{
	if (aeth_test_pg_fresh(&t->url) != 0) {
		print_error("%s\n", aeth_test_pg_error());
		return -1;
	}
	if (aeth_store_open(&t->store, t->url) != 0 ||
	    aeth_store_migrate(t->store) != 0) {
		print_error("%s\n", aeth_error_last());
		return -1;
	}
	return 0;
}

/* Close the store and drop its database; also after a failed open. */
static inline void aeth_test_store_close(aeth_test_store *t)
{
	aeth_store_free(t->store);
	if (t->url)
		aeth_test_pg_drop(t->url);
	free(t->url);
	t->store = NULL;
	t->url = NULL;
}

#endif
