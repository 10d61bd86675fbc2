/* Unit tests of lib/config: defaults, file, environment, flags, errors. */
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

extern char **environ;

static char tmpdir[] = "/tmp/aeth-config-test.XXXXXX";
static char source_root[1024]; /* saved before the AETH_* variables go */

/* Tests must not see the developer's AETH_* settings. */
static void clear_aeth_env(void)
{
	for (;;) {
		char name[256];
		char **e;

		for (e = environ; *e; e++)
			if (strncmp(*e, "AETH_", 5) == 0)
				break;
		if (!*e)
			return;
		snprintf(name, sizeof(name), "%.*s",
			 (int)(strchr(*e, '=') - *e), *e);
		unsetenv(name);
	}
}

static int setup(void **state)
{
	(void)state;
	clear_aeth_env();
	setenv("HOME", "/home/tester", 1);
	return 0;
}

static char *write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static const char *str(const aeth_config *cfg, const char *key)
{
	const char *v = NULL;

	assert_int_equal(aeth_config_get_string(&v, cfg, key), 0);
	return v;
}

static int64_t num(const aeth_config *cfg, const char *key)
{
	int64_t v = -1;

	assert_int_equal(aeth_config_get_int(&v, cfg, key), 0);
	return v;
}

static void test_defaults(void **state)
{
	aeth_config *cfg;
	const char *name;
	int w;
	bool b = false;

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, NULL), 0);
	assert_null(aeth_config_path(cfg));
	assert_string_equal(str(cfg, "database.url"),
			    "postgresql://aetherium@127.0.0.1:5432/aetherium");
	assert_string_equal(str(cfg, "redis.url"), "redis://127.0.0.1:6379/0");
	assert_int_equal(num(cfg, "queue.concurrency"), 10);
	assert_string_equal(str(cfg, "vmm.backend"), "qemu");
	assert_string_equal(str(cfg, "vmm.accel"), "auto");
	assert_int_equal(num(cfg, "vmm.vcpus"), 1);
	assert_int_equal(num(cfg, "vmm.memory_mb"), 256);
	assert_string_equal(str(cfg, "vmm.image_dir"),
			    "/home/tester/.cache/aetherium/image");
	assert_string_equal(str(cfg, "vmm.kernel"),
			    "/home/tester/.cache/aetherium/image/vmlinux");
	assert_string_equal(str(cfg, "vmm.initrd"),
			    "/home/tester/.cache/aetherium/image/initrd.cpio");
	assert_int_equal(num(cfg, "vmm.boot_timeout_ms"), 60000);
	assert_int_equal(aeth_config_get_bool(&b, cfg, "vmm.network"), 0);
	assert_true(b);
	assert_string_equal(str(cfg, "worker.id"), "");
	assert_string_equal(str(cfg, "logging.level"), "info");
	assert_string_equal(str(cfg, "logging.format"), "text");

	assert_int_equal(aeth_config_queue_count(cfg), 4);
	static const char *const names[] = {"critical", "high", "default", "low"};
	static const int weights[] = {6, 5, 3, 1};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(aeth_config_queue_get(&name, &w, cfg, i), 0);
		assert_string_equal(name, names[i]);
		assert_int_equal(w, weights[i]);
	}
	assert_int_equal(aeth_config_queue_get(&name, &w, cfg,
					       4), AETH_EINVALID);
	aeth_config_free(cfg);
	aeth_config_free(NULL);
}

static void test_example_file_matches_defaults(void **state)
{
	char path[1100];
	aeth_config *def, *ex;
	(void)state;
	assert_true(source_root[0] != '\0');
	snprintf(path, sizeof(path), "%s/config/example.yaml", source_root);
	assert_int_equal(aeth_config_load(&def, NULL), 0);
	if (aeth_config_load(&ex, path) != 0)
		fail_msg("example.yaml: %s", aeth_error_last());
	assert_string_equal(aeth_config_path(ex), path);
	static const char *const keys[] = {
		"database.url", "redis.url", "queue.concurrency", "vmm.backend",
		"vmm.accel", "vmm.vcpus", "vmm.memory_mb", "vmm.kernel",
		"vmm.initrd", "vmm.rootfs", "vmm.state_dir", "vmm.boot_timeout_ms",
		"vmm.network", "vmm.jail", "vmm.jailer", "vmm.jail_uid_base",
		"vmm.jail_uid_count", "vmm.cgroups", "vmm.cgroup_parent",
		"vmm.overlay_dir", "vmm.firecracker_jailer",
		"vmm.firecracker_chroot_base", "vmm.snapshots", "vmm.snapshot_dir",
		"vmm.tcg_tb_mb", "network.taps", "limits.vm_vcpus",
		"limits.vm_memory_mb", "limits.vms", "limits.memory_mb",
		"limits.overlay_mb", "limits.ttl_s", "limits.ttl_max_s",
		"limits.exec_timeout_ms", "limits.exec_timeout_max_ms",
		"worker.id", "worker.host_id", "worker.delete_vms_on_stop",
		"worker.shutdown_timeout_ms",
		"ledger.interval_ms", "ledger.stray_after_ms",
		"logging.level", "logging.format"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_string_equal(str(def, keys[i]), str(ex, keys[i]));
	assert_int_equal(aeth_config_queue_count(ex), 4);
	aeth_config_free(def);
	aeth_config_free(ex);
}

static void test_file_values(void **state)
{
	aeth_config *cfg;
	const char *name;
	int w;
	bool b = true;
	const char *path = write_file("ok.yaml",
		"database:\n  url: postgresql:///x?host=/tmp/s\n"
		"queue:\n  concurrency: 3\n  weights:\n    fast: 9\n    slow: 2\n"
		"vmm:\n  backend: firecracker\n  accel: tcg\n  memory_mb: 512\n"
		"  kernel: /k/vmlinux\n  network: no\n"
		"worker:\n  id: w-1\n"
		"logging:\n  level: debug\n  format: json\n");

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, path), 0);
	assert_string_equal(str(cfg, "database.url"), "postgresql:///x?host=/tmp/s");
	assert_int_equal(num(cfg, "queue.concurrency"), 3);
	assert_string_equal(str(cfg, "vmm.backend"), "firecracker");
	assert_string_equal(str(cfg, "vmm.accel"), "tcg");
	assert_int_equal(num(cfg, "vmm.memory_mb"), 512);
	assert_string_equal(str(cfg, "vmm.kernel"), "/k/vmlinux");
	assert_int_equal(aeth_config_get_bool(&b, cfg, "vmm.network"), 0);
	assert_false(b);
	assert_string_equal(str(cfg, "worker.id"), "w-1");
	assert_string_equal(str(cfg, "logging.level"), "debug");
	/* The file's map replaces the default one. */
	assert_int_equal(aeth_config_queue_count(cfg), 2);
	assert_int_equal(aeth_config_queue_get(&name, &w, cfg, 0), 0);
	assert_string_equal(name, "fast");
	assert_int_equal(w, 9);
	/* Untouched keys keep their defaults. */
	assert_string_equal(str(cfg, "redis.url"), "redis://127.0.0.1:6379/0");
	aeth_config_free(cfg);

	/* An empty file is all defaults. */
	assert_int_equal(aeth_config_load(&cfg, write_file("empty.yaml", "")), 0);
	assert_int_equal(num(cfg, "vmm.memory_mb"), 256);
	aeth_config_free(cfg);
}

static void test_precedence(void **state)
{
	aeth_config *cfg;
	const char *path = write_file("p.yaml",
		"database:\n  url: postgresql:///fromfile\n"
		"vmm:\n  memory_mb: 512\n  vcpus: 2\n");

	(void)state;
	setenv("AETH_DATABASE_URL", "postgresql:///fromenv", 1);
	setenv("AETH_REDIS_URL", "unix:///tmp/r.sock", 1);
	setenv("AETH_VMM_MEMORY_MB", "1024", 1);
	setenv("AETH_QUEUE_WEIGHTS", "a=2, b=1", 1);
	setenv("AETH_IMAGE_DIR", "/img", 1);
	assert_int_equal(aeth_config_load(&cfg, path), 0);
	assert_string_equal(str(cfg, "database.url"), "postgresql:///fromenv");
	assert_string_equal(str(cfg, "redis.url"), "unix:///tmp/r.sock");
	assert_int_equal(num(cfg, "vmm.memory_mb"), 1024); /* env over file */
	assert_int_equal(num(cfg, "vmm.vcpus"), 2);          /* file over default */
	assert_int_equal(aeth_config_queue_count(cfg), 2);
	assert_string_equal(str(cfg, "vmm.kernel"), "/img/vmlinux");

	/* Program flags win over everything. */
	assert_int_equal(aeth_config_set(cfg, "vmm.memory_mb", "2048"), 0);
	assert_int_equal(num(cfg, "vmm.memory_mb"), 2048);
	assert_int_equal(aeth_config_set(cfg, "vmm.image_dir", "/other"), 0);
	assert_string_equal(str(cfg, "vmm.rootfs"), "/other/rootfs.ext4");
	assert_int_equal(aeth_config_set(cfg, "queue.weights.c", "7"), 0);
	assert_int_equal(aeth_config_queue_count(cfg), 3);
	assert_int_equal(aeth_config_set(cfg, "queue.weights", "only=4"), 0);
	assert_int_equal(aeth_config_queue_count(cfg), 1);
	assert_int_equal(aeth_config_set(cfg, "vmm.memory_mb", "lots"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "vmm.memory_mb"));
	assert_int_equal(num(cfg, "vmm.memory_mb"), 2048); /* unchanged */
	assert_int_equal(aeth_config_set(cfg, "vmm.nope", "1"), AETH_ENOTFOUND);
	aeth_config_free(cfg);
	clear_aeth_env();
}

static void test_bad_env(void **state)
{
	aeth_config *cfg = (aeth_config *)1;

	(void)state;
	setenv("AETH_VMM_ACCEL", "warp", 1);
	assert_int_equal(aeth_config_load(&cfg, NULL), AETH_EINVALID);
	assert_null(cfg);
	assert_non_null(strstr(aeth_error_last(), "AETH_VMM_ACCEL"));
	assert_non_null(strstr(aeth_error_last(), "auto|kvm|tcg"));
	clear_aeth_env();
}

/* Load `text` and expect failure with every piece of `want` in the message. */
static void expect_bad(const char *text, const char *const *want)
{
	aeth_config *cfg = NULL;
	const char *path = write_file("bad.yaml", text);

	assert_int_equal(aeth_config_load(&cfg, path), AETH_EINVALID);
	assert_null(cfg);
	for (; *want; want++)
		if (!strstr(aeth_error_last(), *want))
			fail_msg("'%s' not in message: %s", *want, aeth_error_last());
}

static void test_bad_files(void **state)
{
	(void)state;
	expect_bad("# c\ndatabase:\n  url: x\nvmm:\n  memory_mb: lots\n",
		   (const char *const[]){"bad.yaml:5:", "vmm.memory_mb",
					 "expected an integer", "lots", NULL});
	expect_bad("vmm:\n  vcpus: 1\n  accel: warp\n",
		   (const char *const[]){"bad.yaml:3:", "vmm.accel",
					 "auto|kvm|tcg", NULL});
	expect_bad("vmm:\n  memry_mb: 1\n",
		   (const char *const[]){"bad.yaml:2:", "unknown key 'vmm.memry_mb'",
					 "memory_mb", NULL});
	expect_bad("database:\n  url: [a, b]\n",
		   (const char *const[]){"bad.yaml:2:", "database.url", "list", NULL});
	expect_bad("vmm:\n  network: maybe\n",
		   (const char *const[]){"vmm.network", "true or false", NULL});
	expect_bad("queue:\n  weights:\n    x: 0\n",
		   (const char *const[]){"bad.yaml:3:", "queue.weights.x", NULL});
	expect_bad("a: b\n", (const char *const[]){"unknown key 'a'", NULL});
	expect_bad("vmm: 3\n", (const char *const[]){"'vmm'", "mapping", NULL});
	expect_bad("- 1\n- 2\n", (const char *const[]){"bad.yaml:1:", NULL});
	expect_bad("x\nvmm:\n  vcpus: [\n",
		   (const char *const[]){"bad.yaml:", "YAML syntax error", NULL});
	expect_bad("database:\n  url: a\n vmm: 1\n",
		   (const char *const[]){"bad.yaml:3:", "YAML syntax error", NULL});
}

/* YAML corner cases: each is refused with FILE:LINE and what was wrong. */
static void test_yaml_edge_cases(void **state)
{
	(void)state;
	/* a NUL inside a quoted scalar must not silently cut the value */
	expect_bad("database:\n  url: \"abc\\0def\"\n",
		   (const char *const[]){"bad.yaml:2:", "database.url", "NUL", NULL});
	/* a second document is not ignored */
	expect_bad("vmm:\n  vcpus: 2\n---\nvmm:\n  vcpus: 3\n",
		   (const char *const[]){"bad.yaml:3:", "document", NULL});
	expect_bad("vmm:\n  vcpus: 2\n---\n[\n",
		   (const char *const[]){"bad.yaml:", "YAML syntax error", NULL});
	/* duplicate keys, sections and queues */
	expect_bad("vmm:\n  vcpus: 2\n  vcpus: 3\n",
		   (const char *const[]){"bad.yaml:3:", "vmm.vcpus", "duplicate", NULL});
	expect_bad("vmm:\n  vcpus: 2\nvmm:\n  memory_mb: 64\n",
		   (const char *const[]){"bad.yaml:3:", "'vmm'", "duplicate", NULL});
	expect_bad("queue:\n  weights:\n    a: 1\n    a: 2\n",
		   (const char *const[]){"bad.yaml:4:", "queue.weights.a",
					 "duplicate", NULL});
	/* what was given instead of what was expected */
	expect_bad("vmm:\n  vcpus:\n    a: 1\n",
		   (const char *const[]){"bad.yaml:3:", "key 'vmm.vcpus'",
					 "expected a single value, got a mapping", NULL});
	expect_bad("database:\n  - url\n",
		   (const char *const[]){"bad.yaml:2:", "key 'database'",
					 "expected a mapping", "got a list", NULL});
	expect_bad("- 1\n- 2\n",
		   (const char *const[]){"bad.yaml:1:", "got a list", NULL});
	/* invalid UTF-8 on line 3: the line is right */
	expect_bad("database:\n  url: x\nredis:\n  url: \xff\xfe\n",
		   (const char *const[]){"bad.yaml:4", "UTF-8", NULL});
	/* numbers */
	expect_bad("queue:\n  concurrency: 0\n",
		   (const char *const[]){"bad.yaml:2:", "queue.concurrency",
					 "from 1 to", "got '0'", NULL});
	expect_bad("vmm:\n  memory_mb: 1000000000000\n",
		   (const char *const[]){"bad.yaml:2:", "vmm.memory_mb", NULL});
	expect_bad("vmm:\n  vcpus: 99999999999999999999999\n",
		   (const char *const[]){"bad.yaml:2:", "vmm.vcpus", NULL});
	expect_bad("worker:\n  shutdown_timeout_ms: 9223372036854775807\n",
		   (const char *const[]){"bad.yaml:2:", "worker.shutdown_timeout_ms",
					 NULL});
}

/* An empty section ("logging:" with its keys commented out) is no error. */
static void test_empty_section(void **state)
{
	aeth_config *cfg = NULL;
	const char *path = write_file("empty.yaml", "logging:\n#  level: info\n"
				      "vmm:\n  vcpus: 2\n");

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, path), 0);
	aeth_config_free(cfg);
}

static void expect_file_error(const char *yaml, const char *needle)
{
	aeth_config *cfg = NULL;
	const char *path = write_file("bad-section.yaml", yaml);

	assert_int_equal(aeth_config_load(&cfg, path), AETH_EINVALID);
	if (!strstr(aeth_error_last(), needle))
		fail_msg("wanted '%s' in: %s", needle, aeth_error_last());
}

/* images: and network.profiles: sections, a list key, their checks, and
 * aeth_config_names() / aeth_config_dup(). */
static void test_sections(void **state)
{
	aeth_config *cfg = NULL, *copy = NULL;
	char **names = NULL;
	const char *path = write_file("sections.yaml",
		"images:\n  debian: {rootfs: d/debian.ext4}\n  small:\n"
		"    kernel: k\n    initrd: i\n"
		"network:\n  taps: [tap0, \" tap1 \"]\n  profiles:\n"
		"    git: {allow: [\"host:9418\", \"10.1.0.0/16:443\", dns]}\n"
		"    web:\n      allow: \"*:80,*:443\"\n");

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, path), 0);
	assert_string_equal(str(cfg, "images.debian.rootfs"), "d/debian.ext4");
	assert_string_equal(str(cfg, "images.debian.kernel"), "vmlinux");
	assert_string_equal(str(cfg, "images.small.initrd"), "i");
	assert_string_equal(str(cfg, "images.small.rootfs"), "");
	assert_string_equal(str(cfg, "network.taps"), "tap0,tap1");
	assert_string_equal(str(cfg, "network.profiles.git.allow"),
			    "host:9418,10.1.0.0/16:443,dns");
	assert_string_equal(str(cfg, "network.profiles.web.allow"), "*:80,*:443");
	assert_int_equal(aeth_config_names(&names, cfg, "images"), 0);
	assert_string_equal(names[0], "debian");
	assert_string_equal(names[1], "small");
	assert_null(names[2]);
	aeth_strarray_free(names);
	assert_int_equal(aeth_config_names(&names, cfg,
					   "volumes"), AETH_ENOTFOUND);
	/* set, checked like the file */
	assert_int_equal(aeth_config_set(cfg, "images.x.kernel", "../../etc/shadow"),
			 AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "inside vmm.image_dir"));
	assert_int_equal(aeth_config_set(cfg, "images.x.rootfs", "/dev/sda"),
			 AETH_EINVALID);
	assert_int_equal(aeth_config_set(cfg, "network.profiles.p.allow",
					 "0.0.0.0/0:22"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "use *:PORT"));
	assert_int_equal(aeth_config_set(cfg, "images.x.cmdline", "a"),
			 AETH_ENOTFOUND);
	assert_int_equal(aeth_config_set(cfg, "images.x.rootfs", "x.ext4"), 0);
	assert_int_equal(aeth_config_get_string(&(const char *){NULL}, cfg,
						"images.none.kernel"),
			 AETH_ENOTFOUND);
	/* a copy is whole and separate */
	assert_int_equal(aeth_config_dup(&copy, cfg), 0);
	aeth_config_free(cfg);
	assert_string_equal(str(copy, "images.x.rootfs"), "x.ext4");
	assert_string_equal(str(copy, "network.profiles.git.allow"),
			    "host:9418,10.1.0.0/16:443,dns");
	assert_string_equal(aeth_config_path(copy), path);
	aeth_config_free(copy);

	expect_file_error("images:\n  x: {kernel: /boot/vmlinuz}\n",
			  "not an absolute path");
	expect_file_error("network:\n  profiles:\n    p: {allow: [\"host:0\"]}\n",
			  "port must be a number");
	expect_file_error("network:\n  profiles:\n    \"a b\": {allow: []}\n",
			  "network profile name");
	expect_file_error("images:\n  x: {kernel: a}\n  x: {kernel: b}\n",
			  "duplicate key");
	expect_file_error("network:\n  taps: [a, [b]]\n", "list of single values");
}

/* pool: named warm pools, each field typed and defaulted; a tap or a
 * name that is not a catalogue name is refused. */
static void test_pool_section(void **state)
{
	aeth_config *cfg = NULL;
	char **names = NULL;
	const char *path = write_file("pool.yaml",
		"pool:\n  small: {size: 3}\n  git:\n    size: 2\n"
		"    vcpus: 2\n    memory_mb: 512\n    network: git\n"
		"    rootfs: yes\n");

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, path), 0);
	assert_string_equal(str(cfg, "pool.small.size"), "3");
	assert_string_equal(str(cfg, "pool.small.vcpus"), "0");
	assert_string_equal(str(cfg, "pool.small.memory_mb"), "0");
	assert_string_equal(str(cfg, "pool.small.image"), "default");
	assert_string_equal(str(cfg, "pool.small.network"), "none");
	assert_string_equal(str(cfg, "pool.small.rootfs"), "false");
	assert_string_equal(str(cfg, "pool.git.memory_mb"), "512");
	assert_string_equal(str(cfg, "pool.git.rootfs"), "true");
	assert_int_equal(aeth_config_names(&names, cfg, "pool"), 0);
	assert_string_equal(names[0], "small");
	assert_string_equal(names[1], "git");
	assert_null(names[2]);
	aeth_strarray_free(names);
	assert_int_equal(aeth_config_set(cfg, "pool.x.network", "tap"),
			 AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "cannot be pooled"));
	assert_int_equal(aeth_config_set(cfg, "pool.x.image", "../x"),
			 AETH_EINVALID);
	assert_int_equal(aeth_config_set(cfg, "pool.x.size", "1001"),
			 AETH_EINVALID);
	assert_int_equal(aeth_config_set(cfg, "pool.x.shape", "1"),
			 AETH_ENOTFOUND);
	aeth_config_free(cfg);
	expect_file_error("pool:\n  p: {size: -1}\n", "size");
	expect_file_error("pool:\n  p: [1]\n", "mapping");
}

/* Deeply nested flow collections are refused quickly: libyaml's scanner
 * is quadratic in the nesting depth (100k levels: minutes). */
static void test_deep_nesting(void **state)
{
	enum { DEPTH = 100000 };
	char *text = malloc(2 * DEPTH + 16), path[512];
	aeth_config *cfg = NULL;
	FILE *f;

	(void)state;
	assert_non_null(text);
	memcpy(text, "vmm: ", 5);
	memset(text + 5, '[', DEPTH);
	memset(text + 5 + DEPTH, ']', DEPTH);
	text[5 + 2 * DEPTH] = '\0';
	snprintf(path, sizeof(path), "%s/deep.yaml", tmpdir);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	free(text);
	assert_int_equal(aeth_config_load(&cfg, path), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "deep.yaml:1:"));
	assert_non_null(strstr(aeth_error_last(), "nest"));
}

/* A failed aeth_config_set() leaves the configuration as it was. */
static void test_failed_set_changes_nothing(void **state)
{
	aeth_config *cfg = NULL;
	const char *name;
	int w;

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, NULL), 0);
	assert_int_equal(aeth_config_queue_count(cfg), 4);
	assert_int_equal(aeth_config_set(cfg, "queue.weights", "a=2,b=x"),
			 AETH_EINVALID);
	assert_int_equal(aeth_config_queue_count(cfg), 4);
	assert_int_equal(aeth_config_set(cfg, "queue.weights", ""), AETH_EINVALID);
	assert_int_equal(aeth_config_queue_count(cfg), 4);
	assert_int_equal(aeth_config_queue_get(&name, &w, cfg, 0), 0);
	assert_string_equal(name, "critical");
	assert_int_equal(w, 6);
	assert_int_equal(aeth_config_set(cfg, "queue.weights", "a=2,b=1"), 0);
	assert_int_equal(aeth_config_queue_count(cfg), 2);
	aeth_config_free(cfg);
}

static void test_missing_file_and_getters(void **state)
{
	aeth_config *cfg;
	int64_t v;
	bool b;
	const char *s;

	(void)state;
	assert_int_equal(aeth_config_load(&cfg, "/nonexistent/a.yaml"), AETH_ENOTFOUND);
	assert_non_null(strstr(aeth_error_last(), "/nonexistent/a.yaml"));
	assert_int_equal(aeth_config_load(&cfg, NULL), 0);
	assert_int_equal(aeth_config_get_int(&v, cfg,
					     "database.url"), AETH_EINVALID);
	assert_int_equal(aeth_config_get_bool(&b, cfg,
					      "vmm.vcpus"), AETH_EINVALID);
	assert_int_equal(aeth_config_get_string(&s, cfg,
						"no.such"), AETH_ENOTFOUND);
	assert_non_null(strstr(aeth_error_last(), "no.such"));
	aeth_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_example_file_matches_defaults, setup),
		cmocka_unit_test_setup(test_file_values, setup),
		cmocka_unit_test_setup(test_precedence, setup),
		cmocka_unit_test_setup(test_bad_env, setup),
		cmocka_unit_test_setup(test_bad_files, setup),
		cmocka_unit_test_setup(test_missing_file_and_getters, setup),
		cmocka_unit_test_setup(test_yaml_edge_cases, setup),
		cmocka_unit_test_setup(test_empty_section, setup),
		cmocka_unit_test_setup(test_sections, setup),
		cmocka_unit_test_setup(test_pool_section, setup),
		cmocka_unit_test_setup(test_deep_nesting, setup),
		cmocka_unit_test_setup(test_failed_set_changes_nothing, setup),
	};
	char cmd[128];
	int rc;

	if (getenv("AETH_SOURCE_ROOT"))
		snprintf(source_root, sizeof(source_root), "%s",
			 getenv("AETH_SOURCE_ROOT"));
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return rc;
}
