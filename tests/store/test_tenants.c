/*
 * Tenants in lib/store against a real PostgreSQL (migration 0007): rows
 * get the tenant they are written with ("default" otherwise), a get or
 * list scoped to a tenant never shows another's rows, API keys are found
 * by their hash only while not revoked, and a tenant's usage counts what
 * it holds. Each test gets a fresh database (tests/support/pg.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AETH_UNSTABLE
#include "aetherium/aetherium.h"
#include "aetherium/unstable/store.h"
#include "store/store_internal.h"
#include "expect.h"
#include "store_fixture.h"

typedef aeth_test_store fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	*state = f;
	return f ? aeth_test_store_open(f) : -1;
}

static int teardown(void **state)
{
	fixture *f = *state;

	if (f)
		aeth_test_store_close(f);
	free(f);
	return 0;
}

static void add_key(aeth_store *s, const char *tenant, const char *hash,
		    const char *prefix, bool op, aeth__apikey *k)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->tenant, sizeof(k->tenant), "%s", tenant);
	snprintf(k->prefix, sizeof(k->prefix), "%s", prefix);
	k->operator_ = op;
	if (aeth__store_key_insert(s, k, hash) != 0)
		fail_msg("%s", aeth_error_last());
}

static void add_vm(aeth_store *s, const char *tenant, const char *name,
		   int vcpus, char id[37])
{
	aeth_store_vm vm = AETH_STORE_VM_INIT;

	vm.name = (char *)name;
	vm.orchestrator = "qemu";
	vm.status = "running";
	vm.vcpu_count = vcpus;
	vm.memory_mb = 256;
	vm.tenant = (char *)tenant;
	if (aeth_store_vm_insert(s, &vm) != 0)
		fail_msg("%s", aeth_error_last());
	memcpy(id, vm.id, 37);
}

static void test_scoped_rows(void **state)
{
	fixture *f = *state;
	aeth__apikey k;
	aeth_store_filter flt = AETH_STORE_FILTER_INIT;
	aeth_store_vm *vm = NULL, **list = NULL;
	aeth_store_vm old = AETH_STORE_VM_INIT;
	char a[37], b[37];
	size_t n;

	add_key(f->store, "acme", "11", "aeth_acme", false, &k);
	add_key(f->store, "globex", "22", "aeth_glob", false, &k);
	add_vm(f->store, "acme", "a1", 1, a);
	add_vm(f->store, "globex", "g1", 1, b);

	/* scoped get: the owner sees it, the other tenant gets "not found" */
	assert_int_equal(aeth__store_vm_get_in(&vm, f->store, a, "acme"), 0);
	assert_string_equal(vm->tenant, "acme");
	aeth_store_vm_free(vm);
	vm = NULL;
	assert_int_equal(aeth__store_vm_get_in(&vm, f->store, a, "globex"),
			 AETH_ENOTFOUND);
	assert_null(vm);
	assert_int_equal(aeth__store_vm_get_in(&vm, f->store, a, NULL), 0);
	aeth_store_vm_free(vm);

	flt.tenant = "globex";
	assert_int_equal(aeth_store_vm_list(&list, &n, f->store, &flt), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->id, b);
	aeth_store_vm_list_free(list);

	/* a version-1 record (no tenant field) lands in "default" */
	old.version = 1;
	old.name = "old";
	old.orchestrator = "qemu";
	assert_int_equal(aeth_store_vm_insert(f->store, &old), 0);
	assert_int_equal(aeth_store_vm_get(&vm, f->store, old.id), 0);
	assert_string_equal(vm->tenant, "default");
	aeth_store_vm_free(vm);

	/* a tenant that does not exist cannot own a VM */
	{
		char id[37];
		aeth_store_vm v = AETH_STORE_VM_INIT;

		v.name = "x";
		v.orchestrator = "qemu";
		v.tenant = "nobody";
		assert_int_equal(aeth_store_vm_insert(f->store, &v), AETH_ENOTFOUND);
		expect_msg("tenant \"nobody\" does not exist");
		(void)id;
	}
}

static void test_tasks_and_executions(void **state)
{
	fixture *f = *state;
	aeth_store_task t = AETH_STORE_TASK_INIT, *got = NULL;
	aeth_store_execution e = AETH_STORE_EXECUTION_INIT, *ge = NULL;
	aeth__apikey k;
	char vm[37];

	add_key(f->store, "acme", "11", "aeth_acme", false, &k);
	add_vm(f->store, "acme", "a1", 1, vm);
	t.type = "vm:execute";
	t.payload = "{}";
	t.tenant = "acme";
	assert_int_equal(aeth_store_task_insert(f->store, &t), 0);
	assert_int_equal(aeth__store_task_get_in(&got, f->store, t.id, "acme"), 0);
	assert_string_equal(got->tenant, "acme");
	aeth_store_task_free(got);
	got = NULL;
	assert_int_equal(aeth__store_task_get_in(&got, f->store, t.id, "default"),
			 AETH_ENOTFOUND);

	memcpy(e.vm_id, vm, 37);
	memcpy(e.task_id, t.id, 37);
	e.command = "echo";
	e.tenant = "acme";
	assert_int_equal(aeth_store_execution_insert(f->store, &e), 0);
	assert_int_equal(aeth__store_execution_get_in(&ge, f->store, e.id,
						      "globex"), AETH_ENOTFOUND);
	assert_int_equal(aeth__store_execution_get_in(&ge, f->store, e.id,
						      "acme"), 0);
	assert_string_equal(ge->tenant, "acme");
	aeth_store_execution_free(ge);
}

static void test_keys(void **state)
{
	fixture *f = *state;
	aeth__apikey k, got, *list = NULL;
	char hash[65];
	size_t n;

	memset(hash, 'a', 64);
	hash[64] = 0;
	add_key(f->store, "acme", hash, "aeth_abcd", false, &k);
	assert_int_equal(aeth__store_key_find(f->store, hash, &got), 0);
	assert_string_equal(got.tenant, "acme");
	assert_false(got.operator_);
	assert_int_equal(got.revoked_at_ms, 0);

	/* a second key with the same prefix: revoking by prefix is refused */
	add_key(f->store, "acme", "bb", "aeth_abcd", true, &k);
	assert_int_equal(aeth__store_key_revoke(f->store, "aeth_abcd", NULL),
			 AETH_EINVALID);
	expect_msg("2 keys have the prefix");
	assert_int_equal(aeth__store_key_revoke(f->store, got.id, &k), 0);
	assert_true(k.revoked_at_ms > 0);
	assert_int_equal(aeth__store_key_find(f->store, hash, &got),
			 AETH_ENOTFOUND);
	assert_int_equal(aeth__store_key_revoke(f->store, "nonexistent", NULL),
			 AETH_ENOTFOUND);

	assert_int_equal(aeth__store_key_list(f->store, &list, &n), 0);
	assert_int_equal(n, 2);
	free(list);

	/* names the table refuses */
	memset(&k, 0, sizeof(k));
	snprintf(k.tenant, sizeof(k.tenant), "Bad Name");
	assert_int_equal(aeth__store_key_insert(f->store, &k, "cc"), AETH_EINVALID);
}

static void test_usage_and_limits(void **state)
{
	fixture *f = *state;
	aeth_store_task t = AETH_STORE_TASK_INIT;
	aeth__tenant_usage u;
	aeth__tenant_limits l = {2, -1, 1024, 5}, got;
	aeth__apikey k;
	char vm[37];

	add_key(f->store, "acme", "11", "aeth_acme", false, &k);
	add_vm(f->store, "acme", "a1", 2, vm);
	add_vm(f->store, "default", "d1", 4, vm);
	t.type = "vm:create";
	t.payload = "{\"name\":\"x\",\"vcpus\":3}";
	t.tenant = "acme";
	assert_int_equal(aeth_store_task_insert(f->store, &t), 0);
	assert_int_equal(aeth__store_tenant_usage(f->store, "acme", 1, 256, &u), 0);
	assert_int_equal(u.vms, 2);
	assert_int_equal(u.vcpus, 5);
	assert_int_equal(u.memory_mb, 512);

	assert_int_equal(aeth__store_tenant_set_limits(f->store, "acme", &l), 0);
	assert_int_equal(aeth__store_tenant_limits(f->store, "acme", &got), 0);
	assert_int_equal(got.max_vms, 2);
	assert_int_equal(got.max_vcpus, -1);
	assert_int_equal(got.max_memory_mb, 1024);
	assert_int_equal(got.max_rps, 5);
	assert_int_equal(aeth__store_tenant_limits(f->store, "nobody", &got),
			 AETH_ENOTFOUND);
}

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The quota lock (aeth__store_quota_lock): one session at a time per
 * tenant, a wait that ends at its deadline (AETH_ETIMEOUT), other tenants
 * not held up, free again once unlocked; and a session that holds it is
 * pinned (its lock_timeout was LOCAL: the next wait is its own). */
static void test_quota_lock(void **state)
{
	fixture *f = *state;
	aeth_store *other = NULL;
	int64_t t0;

	assert_int_equal(aeth_store_open(&other, f->url), 0);
	assert_int_equal(aeth__store_quota_lock(f->store, "acme", 1000), 0);
	t0 = ms_now();
	assert_int_equal(aeth__store_quota_lock(other, "acme", 200), AETH_ETIMEOUT);
	assert_true(ms_now() - t0 >= 150 && ms_now() - t0 < 2000);
	assert_non_null(strstr(aeth_error_last(), "quota lock of tenant acme"));
	assert_int_equal(aeth__store_quota_lock(other, "globex", 200), 0);
	aeth__store_quota_unlock(other, "globex");
	aeth__store_quota_unlock(f->store, "acme");
	assert_int_equal(aeth__store_quota_lock(other, "acme", 200), 0);
	aeth__store_quota_unlock(other, "acme");
	/* unlock twice, or without the lock: nothing happens */
	aeth__store_quota_unlock(other, "acme");
	aeth_store_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scoped_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks_and_executions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_and_limits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_quota_lock, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
