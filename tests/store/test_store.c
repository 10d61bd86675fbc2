/*
 * Integration tests of lib/store against a real PostgreSQL: each test gets
 * a fresh database (tests/support/pg.h). Needs AETH_TEST_DATABASE_URL
 * (scripts/test.sh sets it); fails, never skips, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "aetherium/aetherium.h"
/* the writers (unstable API) and the single-column ones (internal) */
#include "store/sql.h"
#include "expect.h"
#include "pg.h"

typedef struct {
	char *url;
	aeth_store *store;
} fixture;

static int setup_fresh(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	*state = f;
	if (!f || aeth_test_pg_fresh(&f->url) != 0) {
		print_error("%s\n", aeth_test_pg_error());
		return -1;
	}
	return 0;
}

static int setup_migrated(void **state)
{
	fixture *f;

	if (setup_fresh(state) != 0)
		return -1;
	f = *state;
	if (aeth_store_open(&f->store, f->url) != 0 ||
	    aeth_store_migrate(f->store) != 0) {
		print_error("%s\n", aeth_error_last());
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	if (!f)
		return 0;
	aeth_store_free(f->store);
	aeth_test_pg_drop(f->url);
	free(f->url);
	free(f);
	return 0;
}

/* One number from SQL, straight through libpq. */
static long query_long(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQexec(c, sql);
	long v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	v = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return v;
}

static void test_migrate_idempotent(void **state)
{
	fixture *f = *state;
	int v = -1;

	OK(aeth_store_open(&f->store, f->url));
	OK(aeth_store_schema_version(&v, f->store));
	assert_int_equal(v, 0);
	OK(aeth_store_migrate(f->store));
	OK(aeth_store_schema_version(&v, f->store));
	assert_true(v >= 1);
	OK(aeth_store_migrate(f->store));
	OK(aeth_store_migrate(f->store));
	assert_int_equal(query_long(f->url, "SELECT count(*) FROM schema_migrations"), v);
	assert_int_equal(query_long(f->url, "SELECT count(*) FROM vms"), 0);
}

typedef struct {
	const char *url;
	pthread_barrier_t *go;
	int rc;
	char msg[256];
} racer;

static void *migrate_thread(void *arg)
{
	racer *r = arg;
	aeth_store *s = NULL;

	r->rc = aeth_store_open(&s, r->url);
	pthread_barrier_wait(r->go);
	if (r->rc == 0)
		r->rc = aeth_store_migrate(s);
	snprintf(r->msg, sizeof(r->msg), "%s", aeth_error_last());
	aeth_store_free(s);
	return NULL;
}

/* Four threads and a child process migrate one fresh database at once. */
static void test_migrate_concurrent(void **state)
{
	fixture *f = *state;
	enum { N = 4 };
	pthread_t th[N];
	racer rs[N];
	pthread_barrier_t go;
	pid_t child;
	int status, v = 0;

	pthread_barrier_init(&go, NULL, N);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		aeth_store *s = NULL;
		int rc = aeth_store_open(&s, f->url);

		if (rc == 0)
			rc = aeth_store_migrate(s);
		if (rc != 0)
			fprintf(stderr, "child: %s\n", aeth_error_last());
		aeth_store_free(s);
		_exit(rc == 0 ? 0 : 1);
	}
	for (int i = 0; i < N; i++) {
		rs[i] = (racer){f->url, &go, -1, ""};
		pthread_create(&th[i], NULL, migrate_thread, &rs[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (rs[i].rc != 0)
			fail_msg("thread %d: %s", i, rs[i].msg);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	pthread_barrier_destroy(&go);
	OK(aeth_store_open(&f->store, f->url));
	OK(aeth_store_schema_version(&v, f->store));
	assert_true(v >= 1);
	assert_int_equal(query_long(f->url, "SELECT count(*) FROM schema_migrations"), v);
	assert_int_equal(query_long(f->url, "SELECT count(DISTINCT version) "
					    "FROM schema_migrations"), v);
}

static void insert_vm(aeth_store *s, aeth_store_vm *vm, const char *name,
		      const char *owner)
{
	aeth_store_vm_init(vm, AETH_STORE_VM_VERSION);
	vm->name = (char *)name;
	vm->orchestrator = (char *)"qemu";
	vm->owner_worker = (char *)owner;
	OK(aeth_store_vm_insert(s, vm));
}

static void test_vm_round_trip(void **state)
{
	fixture *f = *state;
	aeth_store_vm in = AETH_STORE_VM_INIT, *out = NULL;

	in.name = (char *)"demo-vm";
	in.orchestrator = (char *)"qemu";
	in.kernel_path = (char *)"/img/vmlinux";
	in.rootfs_path = (char *)"/img/rootfs.ext4";
	in.socket_path = (char *)"/run/a/agent.sock";
	in.vcpu_count = 2;
	in.memory_mb = 512;
	in.metadata = (char *)"{\"accel\": \"tcg\"}";
	in.owner_worker = (char *)"host-1:42";
	OK(aeth_store_vm_insert(f->store, &in));
	assert_int_equal(strlen(in.id), 36);
	assert_true(in.created_at_ms > 0);

	OK(aeth_store_vm_get(&out, f->store, in.id));
	assert_string_equal(out->id, in.id);
	assert_string_equal(out->name, "demo-vm");
	assert_string_equal(out->orchestrator, "qemu");
	assert_string_equal(out->status, "creating");
	assert_string_equal(out->kernel_path, "/img/vmlinux");
	assert_string_equal(out->rootfs_path, "/img/rootfs.ext4");
	assert_string_equal(out->socket_path, "/run/a/agent.sock");
	assert_int_equal(out->vcpu_count, 2);
	assert_int_equal(out->memory_mb, 512);
	assert_string_equal(out->metadata, "{\"accel\": \"tcg\"}");
	assert_string_equal(out->owner_worker, "host-1:42");
	assert_null(out->error);
	assert_int_equal(out->created_at_ms, in.created_at_ms);
	assert_int_equal(out->started_at_ms, 0);
	assert_int_equal(out->stopped_at_ms, 0);
	/* The clocks agree to within a minute: times are UTC. */
	assert_true(llabs(out->created_at_ms - (long long)time(NULL) * 1000) < 60000);
	aeth_store_vm_free(out);

	/* Update the descriptive columns. */
	in.socket_path = NULL;
	in.memory_mb = 1024;
	in.name = (char *)"renamed";
	in.owner_worker = (char *)"host-2:7";
	OK(aeth_store_vm_update(f->store, &in));
	OK(aeth_store_vm_get(&out, f->store, in.id));
	assert_string_equal(out->name, "renamed");
	assert_null(out->socket_path);
	assert_int_equal(out->memory_mb, 1024);
	assert_string_equal(out->owner_worker, "host-2:7");
	assert_true(out->updated_at_ms >= out->created_at_ms);
	aeth_store_vm_free(out);

	/* Duplicate id. */
	assert_int_equal(aeth_store_vm_insert(f->store, &in), AETH_EEXISTS);
	expect_msg("already exists");
}

static void test_vm_status_times(void **state)
{
	fixture *f = *state;
	aeth_store_vm vm, *out;
	int64_t stopped;

	insert_vm(f->store, &vm, "t", "w1");
	OK(aeth_store_vm_set_status(f->store, vm.id, "running", NULL));
	OK(aeth_store_vm_get(&out, f->store, vm.id));
	assert_int_equal(out->version, AETH_STORE_VM_VERSION); /* docs/api.md */
	assert_string_equal(out->status, "running");
	assert_true(out->started_at_ms >= out->created_at_ms);
	assert_int_equal(out->stopped_at_ms, 0);
	aeth_store_vm_free(out);

	OK(aeth_store_vm_set_status(f->store, vm.id, "stopped", NULL));
	OK(aeth_store_vm_get(&out, f->store, vm.id));
	assert_string_equal(out->status, "stopped");
	assert_true(out->stopped_at_ms >= out->started_at_ms);
	stopped = out->stopped_at_ms;
	aeth_store_vm_free(out);

	usleep(20000);
	OK(aeth_store_vm_set_status(f->store, vm.id, "deleted", NULL));
	OK(aeth_store_vm_get(&out, f->store, vm.id));
	assert_string_equal(out->status, "deleted");
	assert_int_equal(out->stopped_at_ms, stopped); /* kept */
	aeth_store_vm_free(out);

	insert_vm(f->store, &vm, "t2", "w1");
	OK(aeth_store_vm_set_status(f->store, vm.id, "failed", "boot timed out"));
	OK(aeth_store_vm_get(&out, f->store, vm.id));
	assert_string_equal(out->status, "failed");
	assert_string_equal(out->error, "boot timed out");
	assert_true(out->stopped_at_ms > 0);
	aeth_store_vm_free(out);

	assert_int_equal(aeth_store_vm_set_status(f->store, vm.id, "exploded", NULL),
			 AETH_EINVALID);
	expect_msg("creating|running|stopped|failed|deleted");
}

static void test_vm_list(void **state)
{
	fixture *f = *state;
	aeth_store_filter flt = AETH_STORE_FILTER_INIT;
	aeth_store_vm a, b, c, **list;
	size_t n;

	insert_vm(f->store, &a, "a", "w1");
	insert_vm(f->store, &b, "b", "w2");
	insert_vm(f->store, &c, "c", "w1");
	OK(aeth_store_vm_set_status(f->store, b.id, "running", NULL));

	OK(aeth_store_vm_list(&list, &n, f->store, NULL));
	assert_int_equal(n, 3);
	assert_null(list[3]);
	aeth_store_vm_list_free(list);

	flt.worker = "w1";
	OK(aeth_store_vm_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 2);
	aeth_store_vm_list_free(list);

	/* the one version rule (docs/api.md): 1..current, else refused */
	flt.version = AETH_STORE_FILTER_VERSION + 1;
	assert_int_equal(aeth_store_vm_list(&list, &n, f->store,
					    &flt), AETH_EINVALID);
	expect_msg("aeth_store_filter.version is 2; this library");
	expect_msg("knows versions 1..1");
	flt.version = 0;
	assert_int_equal(aeth_store_vm_list(&list, &n, f->store,
					    &flt), AETH_EINVALID);
	assert_int_equal(aeth_store_filter_init(&flt, AETH_STORE_FILTER_VERSION), 0);
	flt.worker = "w1";

	flt.worker = NULL;
	flt.status = "running";
	OK(aeth_store_vm_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->id, b.id);
	aeth_store_vm_list_free(list);

	flt.status = NULL;
	flt.limit = 2;
	OK(aeth_store_vm_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 2);
	aeth_store_vm_list_free(list);
}

static void make_task(aeth_store_task *t, const char *type, const char *vm_id)
{
	aeth_store_task_init(t, AETH_STORE_TASK_VERSION);
	t->type = (char *)type;
	t->payload = (char *)"{\"name\": \"demo-vm\", \"vcpus\": 1}";
	t->max_retries = 3;
	t->queue = (char *)"default";
	t->timeout_ms = 60000;
	t->priority = 5;
	if (vm_id)
		snprintf(t->vm_id, sizeof(t->vm_id), "%s", vm_id);
}

static void test_task_round_trip(void **state)
{
	fixture *f = *state;
	aeth_store_vm vm;
	aeth_store_task in, *out;

	insert_vm(f->store, &vm, "v", "w1");
	make_task(&in, "vm:execute", vm.id);
	in.metadata = (char *)"{\"submitted_by\": \"test\"}";
	OK(aeth_store_task_insert(f->store, &in));
	assert_true(in.created_at_ms > 0);
	assert_true(in.scheduled_at_ms > 0);

	OK(aeth_store_task_get(&out, f->store, in.id));
	assert_string_equal(out->id, in.id);
	assert_string_equal(out->type, "vm:execute");
	assert_string_equal(out->status, "pending");
	assert_int_equal(out->priority, 5);
	assert_string_equal(out->payload, "{\"name\": \"demo-vm\", \"vcpus\": 1}");
	assert_null(out->result);
	assert_null(out->error);
	assert_string_equal(out->vm_id, vm.id);
	assert_null(out->worker_id);
	assert_int_equal(out->max_retries, 3);
	assert_int_equal(out->retry_count, 0);
	assert_string_equal(out->metadata, "{\"submitted_by\": \"test\"}");
	assert_string_equal(out->queue, "default");
	assert_int_equal(out->timeout_ms, 60000);
	assert_int_equal(out->started_at_ms, 0);
	assert_int_equal(out->completed_at_ms, 0);
	aeth_store_task_free(out);

	/* The writes the worker makes: an attempt starts, then ends. */
	OK(aeth_store_task_start(f->store, in.id, "host-1:1", 2));
	OK(aeth_store_task_finish(f->store, in.id, "failed", "{\"exit_code\": 0}",
				  "boom"));
	OK(aeth_store_task_get(&out, f->store, in.id));
	assert_string_equal(out->worker_id, "host-1:1");
	assert_int_equal(out->retry_count, 2);
	assert_string_equal(out->result, "{\"exit_code\": 0}");
	assert_string_equal(out->error, "boom");
	assert_string_equal(out->vm_id, vm.id);
	aeth_store_task_free(out);

	/* A task without a VM (vm:create) and with a given id. */
	make_task(&in, "vm:create", NULL);
	snprintf(in.id, sizeof(in.id), "%s", "0b5e6f5e-1111-4222-8333-444455556666");
	OK(aeth_store_task_insert(f->store, &in));
	OK(aeth_store_task_get(&out, f->store,
			       "0b5e6f5e-1111-4222-8333-444455556666"));
	assert_string_equal(out->vm_id, "");
	aeth_store_task_free(out);
	assert_int_equal(aeth_store_task_insert(f->store, &in), AETH_EEXISTS);
}

static void test_task_status_times(void **state)
{
	fixture *f = *state;
	aeth_store_task t, *out;

	make_task(&t, "vm:create", NULL);
	OK(aeth_store_task_insert(f->store, &t));
	OK(aeth_store_task_start(f->store, t.id, "host-1:9", 1));
	OK(aeth_store_task_get(&out, f->store, t.id));
	assert_string_equal(out->status, "running");
	assert_string_equal(out->worker_id, "host-1:9");
	assert_int_equal(out->retry_count, 1);
	assert_true(out->started_at_ms >= out->created_at_ms);
	assert_int_equal(out->completed_at_ms, 0);
	aeth_store_task_free(out);

	OK(aeth_store_task_finish(f->store, t.id, "retrying", NULL, "agent gone"));
	OK(aeth_store_task_get(&out, f->store, t.id));
	assert_string_equal(out->status, "retrying");
	assert_string_equal(out->error, "agent gone");
	assert_int_equal(out->completed_at_ms, 0);
	aeth_store_task_free(out);

	OK(aeth_store_task_finish(f->store, t.id, "completed",
				  "{\"vm_id\": \"x\", \"status\": \"running\"}", NULL));
	OK(aeth_store_task_get(&out, f->store, t.id));
	assert_string_equal(out->status, "completed");
	assert_null(out->error);
	assert_non_null(strstr(out->result, "\"status\": \"running\""));
	assert_true(out->completed_at_ms >= out->started_at_ms);
	aeth_store_task_free(out);

	/* the worker's single-column status write (internal) */
	make_task(&t, "vm:delete", NULL);
	OK(aeth_store_task_insert(f->store, &t));
	OK(aeth__store_task_set_status(f->store, t.id, "running"));
	OK(aeth__store_task_set_status(f->store, t.id, "dead"));
	OK(aeth_store_task_get(&out, f->store, t.id));
	assert_true(out->started_at_ms > 0);
	assert_true(out->completed_at_ms > 0);
	aeth_store_task_free(out);
	assert_int_equal(aeth__store_task_set_status(f->store, t.id, "done"),
			 AETH_EINVALID);
	expect_msg("pending|running|completed|failed|retrying|dead");
}

static void test_task_list(void **state)
{
	fixture *f = *state;
	aeth_store_filter flt = AETH_STORE_FILTER_INIT;
	aeth_store_task t[4], **list;
	aeth_store_vm vm;
	size_t n;

	insert_vm(f->store, &vm, "v", "w1");
	make_task(&t[0], "vm:create", NULL);
	make_task(&t[1], "vm:execute", vm.id);
	make_task(&t[2], "vm:execute", vm.id);
	make_task(&t[3], "vm:delete", vm.id);
	for (int i = 0; i < 4; i++)
		OK(aeth_store_task_insert(f->store, &t[i]));
	OK(aeth_store_task_start(f->store, t[1].id, "w9", 0));

	flt.type = "vm:execute";
	OK(aeth_store_task_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 2);
	aeth_store_task_list_free(list);
	flt.type = NULL;
	flt.vm_id = vm.id;
	OK(aeth_store_task_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 3);
	aeth_store_task_list_free(list);
	flt.vm_id = NULL;
	flt.worker = "w9";
	OK(aeth_store_task_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->id, t[1].id);
	aeth_store_task_list_free(list);
	flt.worker = NULL;
	flt.status = "pending";
	flt.limit = 2;
	OK(aeth_store_task_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 2);
	aeth_store_task_list_free(list);
	OK(aeth_store_task_list(&list, NULL, f->store, NULL));
	assert_non_null(list[3]);
	assert_null(list[4]);
	aeth_store_task_list_free(list);
}

static void test_task_set_queue(void **state)
{
	fixture *f = *state;
	const char *unknown = "7d0c1a52-9a0e-4c1e-9d1f-0123456789ab";
	aeth_store_task t, *out;
	char big[102];
	int64_t before;

	make_task(&t, "vm:execute", NULL);
	OK(aeth_store_task_insert(f->store, &t));
	OK(aeth_store_task_get(&out, f->store, t.id));
	before = out->updated_at_ms;
	aeth_store_task_free(out);

	OK(aeth__store_task_set_queue(f->store, t.id, "worker:host-2:7"));
	OK(aeth_store_task_get(&out, f->store, t.id));
	assert_string_equal(out->queue, "worker:host-2:7");
	assert_string_equal(out->status, "pending"); /* nothing else changes */
	assert_string_equal(out->type, "vm:execute");
	assert_true(out->updated_at_ms >= before);
	aeth_store_task_free(out);
	OK(aeth__store_task_set_queue(f->store, t.id, NULL));
	OK(aeth_store_task_get(&out, f->store, t.id));
	assert_null(out->queue);
	aeth_store_task_free(out);

	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(aeth__store_task_set_queue(f->store, t.id, big),
			 AETH_EINVALID);
	expect_msg("task queue is 101 characters long, more than the limit of 100");
	assert_int_equal(aeth__store_task_set_queue(f->store, unknown, "q"),
			 AETH_ENOTFOUND);
	expect_msg("task 7d0c1a52-9a0e-4c1e-9d1f-0123456789ab not found");
	assert_int_equal(aeth__store_task_set_queue(f->store, "nope", "q"),
			 AETH_ENOTFOUND);
}

/* Several filter fields at once are ANDed; values that cannot match are
 * refused before the query, naming the field. */
static void test_list_filters_combined(void **state)
{
	fixture *f = *state;
	aeth_store_filter flt = AETH_STORE_FILTER_INIT;
	aeth_store_task t[3], **list = NULL;
	aeth_store_execution **elist = NULL;
	aeth_store_vm vm;
	size_t n = 99;

	insert_vm(f->store, &vm, "v", "w1");
	make_task(&t[0], "vm:execute", vm.id);
	make_task(&t[1], "vm:execute", vm.id);
	make_task(&t[2], "vm:delete", vm.id);
	for (int i = 0; i < 3; i++)
		OK(aeth_store_task_insert(f->store, &t[i]));
	OK(aeth_store_task_start(f->store, t[1].id, "w9", 0));

	flt.type = "vm:execute";
	flt.vm_id = vm.id;
	flt.status = "pending";
	OK(aeth_store_task_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->id, t[0].id);
	aeth_store_task_list_free(list);
	flt.status = "running";
	flt.worker = "w9";
	OK(aeth_store_task_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 1);
	assert_string_equal(list[0]->id, t[1].id);
	aeth_store_task_list_free(list);
	flt.vm_id = "";  /* empty: no filter */
	flt.worker = "nobody";
	OK(aeth_store_task_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 0);
	assert_null(list[0]);
	aeth_store_task_list_free(list);

	flt.vm_id = "not-a-uuid";
	assert_int_equal(aeth_store_task_list(&list, &n, f->store, &flt),
			 AETH_ENOTFOUND);
	assert_null(list);
	assert_int_equal(n, 0);
	expect_msg("vm not-a-uuid not found");
	flt.vm_id = NULL;
	flt.status = "done";
	assert_int_equal(aeth_store_task_list(&list, &n, f->store, &flt),
			 AETH_EINVALID);
	expect_msg("pending|running|completed|failed|retrying|dead");
	flt = (aeth_store_filter)AETH_STORE_FILTER_INIT;
	flt.task_id = "1234";
	assert_int_equal(aeth_store_execution_list(&elist, NULL, f->store,
						   &flt),
			 AETH_ENOTFOUND);
	expect_msg("task 1234 not found");
	assert_int_equal(aeth_store_task_list(NULL, NULL, f->store, NULL),
			 AETH_EINVALID);
	expect_msg("aeth_store_task_list: out is NULL");
}

static void test_execution_round_trip(void **state)
{
	fixture *f = *state;
	aeth_store_vm vm;
	aeth_store_task t;
	aeth_store_execution e = AETH_STORE_EXECUTION_INIT, *out, **list;
	aeth_store_filter flt = AETH_STORE_FILTER_INIT;
	size_t n;

	insert_vm(f->store, &vm, "v", "w1");
	make_task(&t, "vm:execute", vm.id);
	OK(aeth_store_task_insert(f->store, &t));
	snprintf(e.vm_id, sizeof(e.vm_id), "%s", vm.id);
	snprintf(e.task_id, sizeof(e.task_id), "%s", t.id);
	e.command = (char *)"echo";
	e.args = (char *)"[\"Hello from VM\"]";
	e.env = (char *)"{\"LANG\": \"C\"}";
	OK(aeth_store_execution_insert(f->store, &e));
	assert_true(e.started_at_ms > 0);
	OK(aeth_store_execution_get(&out, f->store, e.id));
	assert_string_equal(out->command, "echo");
	assert_string_equal(out->args, "[\"Hello from VM\"]");
	assert_string_equal(out->env, "{\"LANG\": \"C\"}");
	assert_int_equal(out->has_exit_code, 0);
	assert_null(out->stdout_data);
	assert_int_equal(out->completed_at_ms, 0);
	assert_string_equal(out->job_id, "");
	aeth_store_execution_free(out);

	usleep(30000);
	OK(aeth_store_execution_finish(f->store, e.id, 1, 0, "Hello from VM\n", "",
				       NULL));
	OK(aeth_store_execution_get(&out, f->store, e.id));
	assert_int_equal(out->has_exit_code, 1);
	assert_int_equal(out->exit_code, 0);
	assert_string_equal(out->stdout_data, "Hello from VM\n");
	assert_string_equal(out->stderr_data, "");
	assert_true(out->completed_at_ms >= out->started_at_ms);
	assert_true(out->duration_ms >= 20);
	assert_string_equal(out->vm_id, vm.id);
	assert_string_equal(out->task_id, t.id);
	aeth_store_execution_free(out);

	/* A complete record in one insert, exit code 127. */
	aeth_store_execution_init(&e, AETH_STORE_EXECUTION_VERSION);
	snprintf(e.vm_id, sizeof(e.vm_id), "%s", vm.id);
	e.command = (char *)"nope";
	e.has_exit_code = 1;
	e.exit_code = 127;
	e.stderr_data = (char *)"nope: not found";
	e.started_at_ms = 1700000000000;
	e.completed_at_ms = 1700000000250;
	e.duration_ms = 250;
	OK(aeth_store_execution_insert(f->store, &e));
	OK(aeth_store_execution_get(&out, f->store, e.id));
	assert_int_equal(out->exit_code, 127);
	assert_int_equal(out->started_at_ms, 1700000000000);
	assert_int_equal(out->completed_at_ms, 1700000000250);
	assert_int_equal(out->duration_ms, 250);
	aeth_store_execution_free(out);

	flt.vm_id = vm.id;
	OK(aeth_store_execution_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 2);
	assert_string_equal(list[0]->command, "nope"); /* oldest first */
	aeth_store_execution_list_free(list);
	flt.vm_id = NULL;
	flt.task_id = t.id;
	OK(aeth_store_execution_list(&list, &n, f->store, &flt));
	assert_int_equal(n, 1);
	aeth_store_execution_list_free(list);
}

static void test_bad_input(void **state)
{
	fixture *f = *state;
	const char *unknown = "7d0c1a52-9a0e-4c1e-9d1f-0123456789ab";
	aeth_store_vm vm = AETH_STORE_VM_INIT, *vout = (aeth_store_vm *)1;
	aeth_store_task t, *tout;
	aeth_store_execution e = AETH_STORE_EXECUTION_INIT;
	char big[600];

	assert_int_equal(aeth_store_vm_get(&vout, f->store,
					   unknown), AETH_ENOTFOUND);
	assert_null(vout);
	expect_msg("vm 7d0c1a52-9a0e-4c1e-9d1f-0123456789ab not found");
	assert_int_equal(aeth_store_vm_get(&vout, f->store,
					   "1234"), AETH_ENOTFOUND);
	expect_msg("vm 1234 not found");
	assert_int_equal(aeth_store_vm_set_status(f->store, unknown, "running", NULL),
			 AETH_ENOTFOUND);
	expect_msg("not found");
	assert_int_equal(aeth_store_task_get(&tout, f->store,
					     unknown), AETH_ENOTFOUND);
	expect_msg("task 7d0c1a52");
	assert_int_equal(aeth__store_task_set_status(f->store, unknown, "running"),
			 AETH_ENOTFOUND);

	/* A task naming a VM that does not exist. */
	make_task(&t, "vm:execute", unknown);
	assert_int_equal(aeth_store_task_insert(f->store, &t), AETH_ENOTFOUND);
	expect_msg("vm 7d0c1a52-9a0e-4c1e-9d1f-0123456789ab not found");
	make_task(&t, "vm:execute", "not-a-uuid");
	assert_int_equal(aeth_store_task_insert(f->store, &t), AETH_ENOTFOUND);
	expect_msg("vm not-a-uuid not found");

	/* Invalid JSON. */
	make_task(&t, "vm:create", NULL);
	t.payload = (char *)"{\"name\": ";
	assert_int_equal(aeth_store_task_insert(f->store, &t), AETH_EINVALID);
	expect_msg("task payload is not valid JSON");
	t.payload = NULL;
	assert_int_equal(aeth_store_task_insert(f->store, &t), AETH_EINVALID);
	expect_msg("task payload is required");
	make_task(&t, "vm:create", NULL);
	OK(aeth_store_task_insert(f->store, &t));
	assert_int_equal(aeth_store_task_finish(f->store, t.id, "completed", "nope",
						NULL), AETH_EINVALID);
	expect_msg("task result is not valid JSON");

	/* Oversized fields. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[256] = '\0';
	vm.name = big;
	vm.orchestrator = (char *)"qemu";
	assert_int_equal(aeth_store_vm_insert(f->store, &vm), AETH_EINVALID);
	expect_msg("vm name is 256 characters long, more than the limit of 255");
	big[256] = 'x';
	e.command = big;
	assert_int_equal(aeth_store_execution_insert(f->store, &e), AETH_EINVALID);
	expect_msg("execution command is 599 characters long, more than the limit of 500");
	vm.name = (char *)"ok";
	vm.orchestrator = big;
	assert_int_equal(aeth_store_vm_insert(f->store, &vm), AETH_EINVALID);
	expect_msg("vm orchestrator");
	vm.orchestrator = NULL;
	assert_int_equal(aeth_store_vm_insert(f->store, &vm), AETH_EINVALID);
	expect_msg("vm orchestrator is required");

	/* Nothing bad reached the tables. */
	assert_int_equal(query_long(f->url, "SELECT count(*) FROM vms"), 0);
	assert_int_equal(query_long(f->url, "SELECT count(*) FROM tasks"), 1);
}

/* A migration this library does not know: a newer aetherium ran. */
static void test_newer_migration(void **state)
{
	fixture *f = *state;
	PGconn *c = PQconnectdb(f->url);
	PGresult *r;

	r = PQexec(c, "INSERT INTO schema_migrations (version, name) "
		      "VALUES (999, '0999_from_the_future')");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	assert_int_equal(aeth_store_migrate(f->store), AETH_ESTATE);
	expect_msg("migration 999 (0999_from_the_future)");
	expect_msg("newer than this library");
	expect_msg("upgrade");
	/* the lock was given back: another session can take it at once */
	assert_int_equal(query_long(f->url, "SELECT pg_try_advisory_lock(7245531900)::int"), 1);
}

/* One statement straight through libpq. */
static void exec_sql(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* The worker's batch write of completed rows (migration 0005's function)
 * is all HOT updates when it covers every row of their pages in one
 * transaction: the table leaves room for that (migration 0004). A non-HOT
 * update inserts into every index of the table. */
static void test_batch_update_hot(void **state)
{
	fixture *f = *state;

	exec_sql(f->url, "INSERT INTO tasks (id, type, status, payload, queue, "
		 "max_retries, retry_count, created_at, updated_at) SELECT "
		 "gen_random_uuid(), 'noop', 'pending', '{}', 'default', 3, 0, "
		 "now(), now() FROM generate_series(1, 300)");
	/* one implicit transaction: the update, then its own counts */
	assert_int_equal(query_long(f->url,
		"SELECT count(*) FROM aeth_task_rows_completed((SELECT array_agg(id) "
		"FROM tasks), array_fill('{\"ok\": true}'::text, ARRAY[300]), "
		"array_fill(1790000000000::bigint, ARRAY[300]), array_fill(0, ARRAY[300]), "
		"'host-12345-0123abcd');"
		"SELECT pg_stat_get_xact_tuples_updated('tasks'::regclass) * 1000 + "
		"pg_stat_get_xact_tuples_hot_updated('tasks'::regclass)"), 300300);
	assert_int_equal(query_long(f->url, "SELECT count(*) FROM tasks WHERE "
				    "status = 'completed' AND result = '{\"ok\": true}'"), 300);
}

/* Each applied migration keeps a checksum of its text: one changed after
 * it was applied is refused by name; a row without one (applied before
 * checksums) gets it. */
static void test_migration_changed(void **state)
{
	fixture *f = *state;

	assert_int_equal(query_long(f->url, "SELECT count(*) FROM schema_migrations "
				    "WHERE checksum ~ '^[0-9a-f]{16}$'"),
			 query_long(f->url, "SELECT count(*) FROM schema_migrations"));
	exec_sql(f->url, "UPDATE schema_migrations SET checksum = NULL WHERE version = 1");
	OK(aeth_store_migrate(f->store));
	assert_int_equal(query_long(f->url, "SELECT count(*) FROM schema_migrations "
				    "WHERE checksum IS NULL"), 0);
	exec_sql(f->url, "UPDATE schema_migrations SET checksum = '0123456789abcdef' "
		 "WHERE version = 1");
	assert_int_equal(aeth_store_migrate(f->store), AETH_ESTATE);
	expect_msg("migration 1 (0001_init) was changed after");
	expect_msg("checksum 0123456789abcdef there");
	expect_msg("new migration file");
	/* the lock was given back */
	assert_int_equal(query_long(f->url, "SELECT pg_try_advisory_lock(7245531900)::int"), 1);
}

/* The server closes our idle session (as a restart does): the next call
 * reconnects and works, since nothing had been sent. */
/* Until the terminated session has exited (and so sent its FATAL). */
static void wait_session_gone(const char *url)
{
	for (int i = 0; i < 3000; i++) {
		if (query_long(url, "SELECT count(*) FROM pg_stat_activity WHERE "
			       "application_name = 'aetherium' AND "
			       "datname = current_database()") == 0)
			return;
		usleep(10 * 1000);
	}
	fail_msg("the terminated session was still there after 30 s");
}

static void test_idle_session_killed(void **state)
{
	fixture *f = *state;
	aeth_store_vm vm, *out = NULL;
	char sql[160];

	insert_vm(f->store, &vm, "before", "w1");
	snprintf(sql, sizeof(sql), "SELECT count(pg_terminate_backend(pid)) FROM "
		 "pg_stat_activity WHERE application_name = 'aetherium' AND "
		 "datname = current_database()");
	assert_int_equal(query_long(f->url, sql), 1);
	wait_session_gone(f->url);
	OK(aeth_store_vm_get(&out, f->store, vm.id));
	assert_string_equal(out->name, "before");
	aeth_store_vm_free(out);
	/* the same for the plain statements of aeth_store_migrate() */
	assert_int_equal(query_long(f->url, sql), 1);
	wait_session_gone(f->url);
	OK(aeth_store_migrate(f->store));
}

static void test_unreachable(void **state)
{
	char dir[] = "/tmp/aeth-nopg.XXXXXX", url[128];
	aeth_store *s = (aeth_store *)1;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "postgresql:///aetherium?host=%s&user=postgres", dir);
	assert_int_equal(aeth_store_open(&s, url), AETH_EUNAVAILABLE);
	assert_null(s);
	expect_msg("cannot connect to PostgreSQL at unix socket ");
	expect_msg(dir);
	expect_msg("/.s.PGSQL.5432");
	expect_msg("scripts/services.sh start");
	rmdir(dir);

	assert_int_equal(aeth_store_open(&s, "postgresql://%zz"), AETH_EINVALID);
	expect_msg("invalid database URL");
}

static void test_not_migrated(void **state)
{
	fixture *f = *state;
	aeth_store_vm *out;

	OK(aeth_store_open(&f->store, f->url));
	assert_int_equal(aeth_store_vm_get(&out, f->store,
					   "7d0c1a52-9a0e-4c1e-9d1f-0123456789ab"), AETH_ESTATE);
	expect_msg("aeth_store_migrate");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_idempotent, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_concurrent, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_vm_round_trip, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_vm_status_times, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_vm_list, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_task_round_trip, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_task_status_times, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_task_list, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_list_filters_combined, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_task_set_queue, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_execution_round_trip, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_batch_update_hot, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_migration_changed, setup_migrated,
						teardown),
		cmocka_unit_test_setup_teardown(test_newer_migration, setup_migrated, teardown),
		cmocka_unit_test_setup_teardown(test_idle_session_killed, setup_migrated, teardown),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test_setup_teardown(test_not_migrated, setup_fresh, teardown),
	};

	char *probe = NULL;

	/* One clear failure, not twelve, when the server is missing. */
	if (aeth_test_pg_fresh(&probe) != 0) {
		fprintf(stderr, "FAIL: %s\n", aeth_test_pg_error());
		return 1;
	}
	aeth_test_pg_drop(probe);
	free(probe);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
