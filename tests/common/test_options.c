/*
 * The one version rule of the public structs (docs/api.md), at every entry
 * point that needs no server: versions 1..current are accepted, 0 and
 * current + 1 are refused with AETH_EINVALID and a message naming the
 * struct and the range; every options struct has an aeth_*_init() that
 * gives what its *_INIT macro gives and writes nothing past the version
 * asked for; a struct of an older version, allocated at exactly its size
 * against a page the process may not read, is taken without reading past
 * it. The entry points that need Redis or PostgreSQL are checked in their
 * own suites (queue_basic, store, client_submit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "internal.h"

static char state_dir[64];

/* AETH_EINVALID and a message that names `name` and "1..current". */
static void refused(int rc, const char *name, unsigned int current)
{
	char range[32];

	snprintf(range, sizeof(range), "knows versions 1..%u", current);
	assert_int_equal(rc, AETH_EINVALID);
	if (!strstr(aeth_error_last(), name) || !strstr(aeth_error_last(), range))
		fail_msg("message \"%s\" names neither %s nor %s", aeth_error_last(),
			 name, range);
}

/*
 * _init(opts, version) for every version: bytes up to `sizes[v - 1]` as
 * the macro's (`ref`), the rest untouched; 0 and current + 1 refused.
 */
typedef int (*init_fn)(void *opts, unsigned int version);

static void check_init(const char *name, init_fn init, const void *ref,
		       size_t size, const size_t *sizes, unsigned int current)
{
	unsigned char *buf = malloc(size), *want = malloc(size);

	assert_non_null(buf);
	assert_non_null(want);
	for (unsigned int v = 1; v <= current; v++) {
		memset(buf, 0xa5, size);
		memset(want, 0xa5, size);
		memcpy(want, ref, sizes[v - 1]);
		memcpy(want, &v, sizeof(v));
		assert_int_equal(init(buf, v), 0);
		if (memcmp(buf, want, size) != 0)
			fail_msg("%s_init(opts, %u) differs from the macro or wrote past "
				 "version %u's %zu bytes", name, v, v, sizes[v - 1]);
	}
	refused(init(buf, 0), name, current);
	refused(init(buf, current + 1), name, current);
	assert_int_equal(init(NULL, current), AETH_EINVALID);
	free(buf);
	free(want);
}

#define INIT_FN(f) ((init_fn)(void (*)(void))(f))
#define END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

static void test_init_functions(void **state)
{
	(void)state;
	{
		static const aeth_vmm_options ref = AETH_VMM_OPTIONS_INIT;
		const size_t s[] = {END(aeth_vmm_options, boot_timeout_ms),
				    END(aeth_vmm_options, overlay_dir),
				    END(aeth_vmm_options, firecracker_chroot_base),
				    sizeof(ref)};
		check_init("aeth_vmm_options", INIT_FN(aeth_vmm_options_init), &ref,
			   sizeof(ref), s, AETH_VMM_OPTIONS_VERSION);
	}
	{
		static const aeth_vm_options ref = AETH_VM_OPTIONS_INIT;
		const size_t s[] = {END(aeth_vm_options, boot_timeout_ms), sizeof(ref)};
		check_init("aeth_vm_options", INIT_FN(aeth_vm_options_init), &ref,
			   sizeof(ref), s, AETH_VM_OPTIONS_VERSION);
	}
	{
		static const aeth_worker_options ref = AETH_WORKER_OPTIONS_INIT;
		const size_t s[] = {END(aeth_worker_options, migrate),
				    END(aeth_worker_options, deny_network), sizeof(ref)};
		check_init("aeth_worker_options", INIT_FN(aeth_worker_options_init),
			   &ref, sizeof(ref), s, AETH_WORKER_OPTIONS_VERSION);
	}
	{
		static const aeth_exec_options ref = AETH_EXEC_OPTIONS_INIT;
		const size_t s[] = {END(aeth_exec_options, keep_stdin_open), sizeof(ref)};
		check_init("aeth_exec_options", INIT_FN(aeth_exec_options_init),
			   &ref, sizeof(ref), s, AETH_EXEC_OPTIONS_VERSION);
	}
	{
		static const aeth_create_options ref = AETH_CREATE_OPTIONS_INIT;
		const size_t s[] = {END(aeth_create_options, rootfs), sizeof(ref)};
		check_init("aeth_create_options", INIT_FN(aeth_create_options_init),
			   &ref, sizeof(ref), s, AETH_CREATE_OPTIONS_VERSION);
	}
#define ONE(T, M)                                                          \
	{                                                                  \
		static const T ref = M##_INIT;                             \
		const size_t s[] = {sizeof(ref)};                          \
		check_init(#T, INIT_FN(T##_init), &ref, sizeof(ref), s,    \
			   M##_VERSION);                                   \
	}
	ONE(aeth_queue_options, AETH_QUEUE_OPTIONS)
	ONE(aeth_queue_enqueue_options, AETH_QUEUE_ENQUEUE_OPTIONS)
	ONE(aeth_client_options, AETH_CLIENT_OPTIONS)
#define TWO(T, M, last1)                                                   \
	{                                                                  \
		static const T ref = M##_INIT;                             \
		const size_t s[] = {END(T, last1), sizeof(ref)};           \
		check_init(#T, INIT_FN(T##_init), &ref, sizeof(ref), s,    \
			   M##_VERSION);                                   \
	}
	/* version 2 appended the tenant (docs/gateway.md) */
	TWO(aeth_submit_options, AETH_SUBMIT_OPTIONS, priority)
	TWO(aeth_store_filter, AETH_STORE_FILTER, limit)
	/* version 2 appended live_output */
	TWO(aeth_execute_options, AETH_EXECUTE_OPTIONS, idempotency_key)
	/* records and array elements the caller allocates */
	TWO(aeth_store_vm, AETH_STORE_VM, error)
	TWO(aeth_store_task, AETH_STORE_TASK, timeout_ms)
	TWO(aeth_store_execution, AETH_STORE_EXECUTION, metadata)
#undef TWO
	ONE(aeth_queue_batch_task, AETH_QUEUE_BATCH_TASK)
	ONE(aeth_queue_source, AETH_QUEUE_SOURCE)
	ONE(aeth_queue_counts, AETH_QUEUE_COUNTS)
#undef ONE
}

/*
 * `n` bytes ending where an unreadable page begins: a library that reads
 * past an old caller's struct dies here (SIGSEGV) rather than go unnoticed.
 * n is rounded up to the struct's alignment (8), as an old program's
 * sizeof would be, so that the struct is aligned.
 */
static void *page_end(size_t n, void **map)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *p = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	assert_int_equal(mprotect(p + page, (size_t)page, PROT_NONE), 0);
	*map = p;
	return p + page - ((n + 7) & ~(size_t)7);
}

static void page_free(void *map)
{
	munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
}

static void test_vm_versions(void **state)
{
	aeth_vmm_options mo = AETH_VMM_OPTIONS_INIT;
	aeth_vm_options vo = AETH_VM_OPTIONS_INIT;
	aeth_vmm *m = NULL;
	aeth_vm *vm = NULL;
	void *map;

	(void)state;
	mo.version = 0;
	refused(aeth_vmm_open(&m, &mo), "aeth_vmm_options", AETH_VMM_OPTIONS_VERSION);
	mo.version = AETH_VMM_OPTIONS_VERSION + 1;
	refused(aeth_vmm_open(&m, &mo), "aeth_vmm_options", AETH_VMM_OPTIONS_VERSION);
	assert_null(m);

	/* a version 1 caller: its struct ends at boot_timeout_ms */
	{
		size_t n = END(aeth_vmm_options, boot_timeout_ms);
		aeth_vmm_options *old = page_end(n, &map);

		memcpy(old, &mo, n);
		old->version = 1;
		old->state_dir = state_dir;
		old->accel = AETH_ACCEL_TCG;
		assert_int_equal(aeth_vmm_open(&m, old), 0);
		page_free(map);
		assert_string_equal(aeth_vmm_state_dir(m), state_dir);
	}

	vo.version = 0;
	refused(aeth_vm_create(&vm, m, &vo), "aeth_vm_options", AETH_VM_OPTIONS_VERSION);
	vo.version = AETH_VM_OPTIONS_VERSION + 1;
	refused(aeth_vm_create(&vm, m, &vo), "aeth_vm_options", AETH_VM_OPTIONS_VERSION);
	{
		size_t n = END(aeth_vm_options, boot_timeout_ms);
		aeth_vm_options *old = page_end(n, &map);

		aeth_vm_options_init(old, 1);
		old->name = "old-caller";
		old->memory_mb = 128;
		assert_int_equal(aeth_vm_create(&vm, m, old), 0);
		page_free(map);
		assert_string_equal(aeth_vm_name(vm), "old-caller");
		assert_int_equal(aeth_vm_memory_mb(vm), 128);
		assert_int_equal(aeth_vm_expires_ms(vm), 0); /* ttl_s: version 2 */
	}

	/* exec options are checked before the VM (not started) is asked */
	{
		const char *argv[] = {"true", NULL};
		aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
		aeth_exec_result *r = NULL;
		aeth_exec *e = NULL;

		eo.argv = argv;
		eo.version = AETH_EXEC_OPTIONS_VERSION + 1;
		refused(aeth_vm_exec(&r, vm, &eo), "aeth_exec_options",
			AETH_EXEC_OPTIONS_VERSION);
		refused(aeth_exec_start(&e, vm, &eo), "aeth_exec_options",
			AETH_EXEC_OPTIONS_VERSION);
		eo.version = 0;
		refused(aeth_vm_exec_stream(NULL, vm, &eo, NULL, NULL),
			"aeth_exec_options", AETH_EXEC_OPTIONS_VERSION);
		eo.version = AETH_EXEC_OPTIONS_VERSION;
		assert_int_equal(aeth_vm_exec(&r, vm, &eo), AETH_ESTATE);
	}
	assert_int_equal(aeth_vm_delete(vm), 0);
	aeth_vm_free(vm);
	aeth_vmm_free(m);
}

static void test_other_entry_points(void **state)
{
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	aeth_client_options co = AETH_CLIENT_OPTIONS_INIT;
	aeth_worker_options wo = AETH_WORKER_OPTIONS_INIT;
	aeth_accel_info info;
	aeth_queue *q = NULL;
	aeth_client *c = NULL;
	aeth_worker *w = NULL;
	void *map;

	(void)state;
	/* checked before anything connects: no server is needed */
	qo.version = AETH_QUEUE_OPTIONS_VERSION + 1;
	refused(aeth_queue_open(&q, &qo), "aeth_queue_options",
		AETH_QUEUE_OPTIONS_VERSION);
	co.version = 0;
	refused(aeth_client_open(&c, &co), "aeth_client_options",
		AETH_CLIENT_OPTIONS_VERSION);
	co.version = AETH_CLIENT_OPTIONS_VERSION + 1;
	refused(aeth_client_open(&c, &co), "aeth_client_options",
		AETH_CLIENT_OPTIONS_VERSION);
	wo.version = AETH_WORKER_OPTIONS_VERSION + 1;
	refused(aeth_worker_new(&w, &wo), "aeth_worker_options",
		AETH_WORKER_OPTIONS_VERSION);
	refused(aeth_worker_new_from_config(&w, NULL, &wo), "aeth_worker_options",
		AETH_WORKER_OPTIONS_VERSION);
	info.version = AETH_ACCEL_INFO_VERSION + 1;
	refused(aeth_accel_probe(&info, NULL), "aeth_accel_info",
		AETH_ACCEL_INFO_VERSION);
	assert_null(q);
	assert_null(c);
	assert_null(w);

	/* a worker of version 1 (no rootfs_path ... no config) */
	for (int from_config = 0; from_config < 2; from_config++) {
		size_t n = END(aeth_worker_options, migrate);
		aeth_worker_options *old = page_end(n, &map);

		assert_int_equal(aeth_worker_options_init(old, 1), 0);
		old->id = "old-worker";
		old->state_dir = state_dir;
		assert_int_equal(from_config ? aeth_worker_new_from_config(&w, NULL, old)
					     : aeth_worker_new(&w, old), 0);
		page_free(map);
		assert_string_equal(aeth_worker_id(w), "old-worker");
		aeth_worker_free(w);
		w = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_functions),
		cmocka_unit_test(test_vm_versions),
		cmocka_unit_test(test_other_entry_points),
	};
	int rc;

	snprintf(state_dir, sizeof(state_dir), "/tmp/aeth-opts-XXXXXX");
	if (!mkdtemp(state_dir)) {
		perror("mkdtemp");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	aeth__rm_rf(state_dir);
	return rc;
}
