/*
 * A key that is accepted is honoured (docs/config.md): every key of the
 * table in lib/config/keys.c is set to a value that is not its default,
 * a worker is made from that configuration, and each value is looked for
 * where the worker hands it on: its own fields, its policy (images,
 * network, limits), the options of its VM manager. A key the table gains
 * without an entry here fails the test, so a new key cannot be accepted
 * and ignored. Keys the worker reads while it runs (ledger.*, the
 * dead-host rule, delete on stop) are read from the worker's own copy of
 * the configuration; that the copy carries them is checked here, what
 * they do by tests/worker/test_ledger.c and tests/cluster/test_hosts.py.
 *
 * The queue.weights map and the sections of named entries (images,
 * network profiles) are followed to the worker's sources, catalogue and
 * profiles too.
 *
 * Also: the defaults of the options structs are the table's (an
 * aeth_worker_options left at 0 gives the configured concurrency, grace,
 * vCPUs and memory; an aeth_vmm_options left at 0 the boot timeout).
 * No services, no guest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "config/config_internal.h"
#include "config/config_defaults.h"
#include "vm/backend.h"
#include "vm/vm_internal.h"
#include "worker/worker_internal.h"

static char dir[64];
static char path_kernel[128], path_initrd[128], path_rootfs[128];

typedef struct {
	aeth_worker *w;
	aeth_vmm_options vo;
} seen;

typedef bool (*observe_fn)(const seen *s, const char *value);

static bool str_is(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static int64_t cfg_int(const seen *s, const char *key)
{
	int64_t v = -1;

	aeth_config_get_int(&v, s->w->cfg, key);
	return v;
}

static bool cfg_str_is(const seen *s, const char *key, const char *want)
{
	const char *v = NULL;

	aeth_config_get_string(&v, s->w->cfg, key);
	return str_is(v, want);
}

static bool cfg_bool(const seen *s, const char *key)
{
	bool v = false;

	aeth_config_get_bool(&v, s->w->cfg, key);
	return v;
}

#define OBS(name, expr)                                                      \
	static bool name(const seen *s, const char *v)                      \
	{                                                                   \
		(void)v;                                                    \
		return (expr);                                              \
	}

OBS(o_database, str_is(s->w->database_url, v))
OBS(o_redis, str_is(s->w->redis_url, v))
OBS(o_concurrency, s->w->concurrency == 7)
OBS(o_backend, str_is(s->w->backend, v) && str_is(s->vo.backend, v))
OBS(o_accel, s->vo.accel == AETH_ACCEL_TCG)
OBS(o_vcpus, s->w->vcpus == 3)
OBS(o_memory, s->w->memory_mb == 333)
OBS(o_image_dir, str_is(s->vo.image_dir, v) &&
	strncmp(s->w->policy.images[0].kernel, v, strlen(v)) == 0)
OBS(o_kernel, str_is(s->vo.kernel_path, v) &&
	str_is(s->w->policy.images[0].kernel, v))
OBS(o_initrd, str_is(s->vo.initrd_path, v) &&
	str_is(s->w->policy.images[0].initrd, v))
OBS(o_rootfs, str_is(s->w->policy.images[0].rootfs, v))
OBS(o_use_rootfs, s->w->policy.use_rootfs)
OBS(o_state_dir, str_is(s->vo.state_dir, v))
OBS(o_boot_timeout, s->vo.boot_timeout_ms == 1234)
OBS(o_network, !s->w->policy.network)
OBS(o_jail, s->vo.jail == AETH_JAIL_OFF)
OBS(o_jailer, str_is(s->vo.jailer_binary, v))
OBS(o_uid_base, s->vo.jail_uid_base == 2000000)
OBS(o_uid_count, s->vo.jail_uid_count == 99)
OBS(o_cgroups, s->vo.no_cgroups)
OBS(o_cgroup_parent, str_is(s->vo.cgroup_parent, v))
OBS(o_overlay_dir, str_is(s->vo.overlay_dir, v))
OBS(o_fc_jailer, str_is(s->vo.firecracker_jailer, v))
OBS(o_fc_chroot, str_is(s->vo.firecracker_chroot_base, v))
OBS(o_taps, aeth__policy_tap_allowed(&s->w->policy, "tap8") &&
	!aeth__policy_tap_allowed(&s->w->policy, "tap9"))
OBS(o_vm_vcpus, s->w->policy.vm_vcpus == 5)
OBS(o_vm_memory, s->w->policy.vm_memory_mb == 4000)
OBS(o_vms, s->w->policy.vms == 9)
OBS(o_lim_memory, s->w->policy.memory_mb == 5000)
OBS(o_lim_overlay, s->w->policy.overlay_mb == 6000)
OBS(o_ttl, s->w->policy.ttl_s == 77)
OBS(o_ttl_max, s->w->policy.ttl_max_s == 88)
OBS(o_exec, s->w->policy.exec_timeout_ms == 4444)
OBS(o_exec_max, s->w->policy.exec_timeout_max_ms == 5555)
OBS(o_id, str_is(s->w->id, v) && str_is(s->w->own_queue, "worker:cfg-keys-w"))
OBS(o_host_id, str_is(s->w->host_id, v))
/* read from w->cfg while the worker runs (adopt.c, run.c, ledger.c) */
OBS(o_dead_after, cfg_int(s, "worker.host_dead_after_ms") == 123000)
OBS(o_delete_on_stop, cfg_bool(s, "worker.delete_vms_on_stop"))
OBS(o_grace, s->w->grace_ms == 2500)
OBS(o_ledger_interval, cfg_int(s, "ledger.interval_ms") == 4321)
OBS(o_ledger_stray, cfg_int(s, "ledger.stray_after_ms") == 9876)
OBS(o_snapshots, s->vo.snapshots == AETH_SNAPSHOTS_OFF)
OBS(o_snapshot_dir, str_is(s->vo.snapshot_dir, v))
OBS(o_tcg_tb, s->vo.tcg_tb_mb == 48)
/* read from w->cfg when the metrics endpoint starts (lib/worker/metrics.c;
 * what they do: tests/metrics) */
OBS(o_metrics_listen, cfg_str_is(s, "metrics.listen", v))
OBS(o_metrics_remote, cfg_bool(s, "metrics.allow_remote"))

static const struct {
	const char *key;
	const char *value; /* "@k" etc.: a path made in setup */
	observe_fn observe;
} cases[] = {
	{"database.url", "postgresql://cfgtest@127.0.0.9:5999/x", o_database},
	{"redis.url", "redis://127.0.0.9:6999/3", o_redis},
	{"queue.concurrency", "7", o_concurrency},
	{"vmm.backend", "firecracker", o_backend},
	{"vmm.accel", "tcg", o_accel},
	{"vmm.vcpus", "3", o_vcpus},
	{"vmm.memory_mb", "333", o_memory},
	{"vmm.image_dir", "@dir", o_image_dir},
	{"vmm.kernel", "@kernel", o_kernel},
	{"vmm.initrd", "@initrd", o_initrd},
	{"vmm.rootfs", "@rootfs", o_rootfs},
	{"vmm.use_rootfs", "true", o_use_rootfs},
	{"vmm.state_dir", "/tmp/aeth-cfg-keys-state", o_state_dir},
	{"vmm.boot_timeout_ms", "1234", o_boot_timeout},
	{"vmm.network", "false", o_network},
	{"vmm.jail", "off", o_jail},
	{"vmm.jailer", "/opt/x/aeth-jailer", o_jailer},
	{"vmm.jail_uid_base", "2000000", o_uid_base},
	{"vmm.jail_uid_count", "99", o_uid_count},
	{"vmm.cgroups", "false", o_cgroups},
	{"vmm.cgroup_parent", "cfgkeys", o_cgroup_parent},
	{"vmm.overlay_dir", "/tmp/aeth-cfg-keys-overlay", o_overlay_dir},
	{"vmm.firecracker_jailer", "/opt/x/jailer", o_fc_jailer},
	{"vmm.firecracker_chroot_base", "/srv/cfgkeys", o_fc_chroot},
	{"network.taps", "tap7,tap8", o_taps},
	{"limits.vm_vcpus", "5", o_vm_vcpus},
	{"limits.vm_memory_mb", "4000", o_vm_memory},
	{"limits.vms", "9", o_vms},
	{"limits.memory_mb", "5000", o_lim_memory},
	{"limits.overlay_mb", "6000", o_lim_overlay},
	{"limits.ttl_s", "77", o_ttl},
	{"limits.ttl_max_s", "88", o_ttl_max},
	{"limits.exec_timeout_ms", "4444", o_exec},
	{"limits.exec_timeout_max_ms", "5555", o_exec_max},
	{"worker.id", "cfg-keys-w", o_id},
	{"worker.host_id", "cfg-keys-host", o_host_id},
	{"worker.host_dead_after_ms", "123000", o_dead_after},
	{"worker.delete_vms_on_stop", "true", o_delete_on_stop},
	{"worker.shutdown_timeout_ms", "2500", o_grace},
	{"ledger.interval_ms", "4321", o_ledger_interval},
	{"ledger.stray_after_ms", "9876", o_ledger_stray},
	{"vmm.snapshots", "off", o_snapshots},
	{"vmm.snapshot_dir", "/tmp/aeth-cfg-keys-snap", o_snapshot_dir},
	{"vmm.tcg_tb_mb", "48", o_tcg_tb},
	{"metrics.listen", "127.0.0.1:9999", o_metrics_listen},
	{"metrics.allow_remote", "true", o_metrics_remote},
};

/* Keys a program applies, not the worker: aeth-worker sets its log from
 * logging.* (cli/aeth-worker.c; tests/cli, tests/metrics), aeth-gateway
 * reads gateway.* (lib/gateway; tests/gateway). */
static const char *const applied_by_cli[] = {"logging.level", "logging.format"};
#define GATEWAY_PREFIX "gateway."


static const char *value_of(const char *v)
{
	if (!strcmp(v, "@dir"))
		return dir;
	if (!strcmp(v, "@kernel"))
		return path_kernel;
	if (!strcmp(v, "@initrd"))
		return path_initrd;
	if (!strcmp(v, "@rootfs"))
		return path_rootfs;
	return v;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/aeth-cfgkeys-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path_kernel, sizeof(path_kernel), "%s/k.bin", dir);
	snprintf(path_initrd, sizeof(path_initrd), "%s/i.cpio", dir);
	snprintf(path_rootfs, sizeof(path_rootfs), "%s/r.ext4", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

static void test_every_key_has_a_case(void **state)
{
	(void)state;
	for (size_t k = 0; k < aeth__cfg_nkeys; k++) {
		bool found = false;

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			found = found || !strcmp(cases[i].key, aeth__cfg_keys[k].key);
		for (size_t i = 0; i < 2; i++)
			found = found || !strcmp(applied_by_cli[i], aeth__cfg_keys[k].key);
		found = found || !strncmp(aeth__cfg_keys[k].key, GATEWAY_PREFIX,
					  strlen(GATEWAY_PREFIX));
		if (!found)
			fail_msg("key %s has no case in tests/worker/test_config_keys.c: "
				 "is it honoured anywhere?", aeth__cfg_keys[k].key);
	}
}

static void test_every_key_reaches_the_worker(void **state)
{
	aeth_config *cfg = NULL;
	seen s;

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, NULL), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *def = aeth__cfg_keys[aeth__cfg_find(cases[i].key)].def;

		assert_true(aeth__cfg_find(cases[i].key) >= 0);
		if (def && !strcmp(def, value_of(cases[i].value)))
			fail_msg("%s: the test value is the default", cases[i].key);
		if (aeth_config_set(cfg, cases[i].key, value_of(cases[i].value)) != 0)
			fail_msg("%s: %s", cases[i].key, aeth_error_last());
	}
	memset(&s, 0, sizeof(s));
	if (aeth_worker_new_from_config(&s.w, cfg, NULL) != 0)
		fail_msg("worker: %s", aeth_error_last());
	aeth__vmm_options_from_config(s.w->cfg, &s.vo);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!cases[i].observe(&s, value_of(cases[i].value)))
			fail_msg("key %s = %s is accepted but not honoured by the "
				 "worker", cases[i].key, value_of(cases[i].value));
	aeth_worker_free(s.w);
	aeth_config_free(cfg);
}

/* The map and the sections of named entries: queue.weights become the
 * worker's dequeue sources, images.NAME.* its catalogue, network.
 * profiles.NAME.allow its profiles. */
static void test_maps_and_sections_reach_the_worker(void **state)
{
	aeth_config *cfg = NULL;
	aeth_worker *w = NULL;
	const aeth__image *img;
	const aeth__profile *prof;
	bool hi = false, lo = false;

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, NULL), 0);
	assert_int_equal(aeth_config_set(cfg, "vmm.image_dir", dir), 0);
	assert_int_equal(aeth_config_set(cfg, "queue.weights", "hi=7,lo=2"), 0);
	assert_int_equal(aeth_config_set(cfg, "images.alt.kernel", "alt/k"), 0);
	assert_int_equal(aeth_config_set(cfg, "images.alt.initrd", "alt/i"), 0);
	assert_int_equal(aeth_config_set(cfg, "images.alt.rootfs", "alt/r"), 0);
	assert_int_equal(aeth_config_set(cfg, "network.profiles.web.allow",
					 "*:443,dns"), 0);
	if (aeth_worker_new_from_config(&w, cfg, NULL) != 0)
		fail_msg("worker: %s", aeth_error_last());
	for (size_t i = 0; i < w->nsources; i++) {
		hi = hi || (!strcmp(w->sources[i].name, "hi") && w->sources[i].weight == 7);
		lo = lo || (!strcmp(w->sources[i].name, "lo") && w->sources[i].weight == 2);
	}
	assert_true(hi && lo);
	assert_non_null(img = aeth__policy_image(&w->policy, "alt"));
	assert_non_null(strstr(img->kernel, "/alt/k"));
	assert_non_null(strstr(img->initrd, "/alt/i"));
	assert_non_null(img->rootfs);
	assert_non_null(strstr(img->rootfs, "/alt/r"));
	assert_non_null(prof = aeth__policy_profile(&w->policy, "web"));
	assert_string_equal(prof->allow[0], "*:443");
	assert_string_equal(prof->allow[1], "dns");
	assert_null(prof->allow[2]);
	aeth_worker_free(w);
	aeth_config_free(cfg);
}

/* A worker made with aeth_worker_new() and 0 fields gets the defaults a
 * configuration without a file has: one table, one default each. */
static void test_option_defaults_are_the_config_defaults(void **state)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	aeth_worker *w = NULL;

	(void)state;
	unsetenv("AETH_QUEUE_CONCURRENCY");
	unsetenv("AETH_WORKER_SHUTDOWN_TIMEOUT_MS");
	unsetenv("AETH_VMM_VCPUS");
	unsetenv("AETH_VMM_MEMORY_MB");
	o.id = "cfg-defaults";
	assert_int_equal(aeth_worker_new(&w, &o), 0);
	assert_int_equal(w->concurrency,
			 aeth__config_default_uint("queue.concurrency"));
	assert_int_equal(w->concurrency, 10);
	assert_int_equal(w->grace_ms,
			 aeth__config_default_uint("worker.shutdown_timeout_ms"));
	assert_int_equal(w->vcpus, aeth__config_default_uint("vmm.vcpus"));
	assert_int_equal(w->memory_mb, aeth__config_default_uint("vmm.memory_mb"));
	aeth_worker_free(w);

	/* an option field wins over the configuration, and is checked by
	 * the key's range */
	o.concurrency = 3;
	assert_int_equal(aeth_worker_new(&w, &o), 0);
	assert_int_equal(w->concurrency, 3);
	aeth_worker_free(w);
	o.concurrency = 300;
	assert_int_equal(aeth_worker_new(&w, &o), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "queue.concurrency"));
	assert_non_null(strstr(aeth_error_last(), "from 1 to 256"));
}

/* The VM manager's boot timeout default is vmm.boot_timeout_ms's. */
static void test_vmm_boot_timeout_default(void **state)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vm_options vo = AETH_VM_OPTIONS_INIT;
	char sdir[96];
	aeth_vmm *m = NULL;
	aeth_vm *vm = NULL;

	(void)state;
	snprintf(sdir, sizeof(sdir), "%s/state", dir);
	o.state_dir = sdir;
	o.image_dir = dir;
	o.jail = AETH_JAIL_OFF;
	o.no_cgroups = 1;
	assert_int_equal(aeth_vmm_open(&m, &o), 0);
	assert_int_equal(aeth_vm_create(&vm, m, &vo), 0);
	assert_int_equal(aeth__vm_record_of(vm)->boot_timeout_ms,
			 aeth__config_default_uint("vmm.boot_timeout_ms"));
	assert_int_equal(aeth_vm_vcpus(vm), aeth__config_default_uint("vmm.vcpus"));
	assert_int_equal(aeth_vm_memory_mb(vm),
			 aeth__config_default_uint("vmm.memory_mb"));
	assert_int_equal(aeth_vm_delete(vm), 0);
	aeth_vm_free(vm);
	aeth_vmm_free(m);
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sdir);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_has_a_case),
		cmocka_unit_test(test_every_key_reaches_the_worker),
		cmocka_unit_test(test_maps_and_sections_reach_the_worker),
		cmocka_unit_test(test_option_defaults_are_the_config_defaults),
		cmocka_unit_test(test_vmm_boot_timeout_default),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
