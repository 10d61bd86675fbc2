/*
 * lib/config/keys.c - every configuration key with its type and default,
 * and the sections of named entries (images, network profiles, pools). Adding a
 * key is one line here plus a line in docs/config.md.
 */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "config/config_defaults.h"
#include "internal.h"
#include "jail/jail_rules.h"

const aeth__cfg_key aeth__cfg_keys[] = {
	{"database.url", AETH__CFG_STRING,
	 "postgresql://aetherium@127.0.0.1:5432/aetherium", 0, 0, NULL},
	{"redis.url", AETH__CFG_STRING, "redis://127.0.0.1:6379/0", 0, 0, NULL},
	{"queue.concurrency", AETH__CFG_INT, "10", 1, 256, NULL},
	{"vmm.backend", AETH__CFG_ENUM, "qemu", 0, 0, "qemu|firecracker"},
	{"vmm.accel", AETH__CFG_ENUM, "auto", 0, 0, "auto|kvm|tcg"},
	{"vmm.vcpus", AETH__CFG_INT, "1", 1, 64, NULL},
	{"vmm.memory_mb", AETH__CFG_INT, "256", 32, 1048576, NULL},
	{"vmm.image_dir", AETH__CFG_STRING, NULL, 0, 0, NULL},
	{"vmm.kernel", AETH__CFG_STRING, "", 0, 0, NULL},
	{"vmm.initrd", AETH__CFG_STRING, "", 0, 0, NULL},
	{"vmm.rootfs", AETH__CFG_STRING, "", 0, 0, NULL},
	{"vmm.use_rootfs", AETH__CFG_BOOL, "false", 0, 0, NULL},
	{"vmm.state_dir", AETH__CFG_STRING, NULL, 0, 0, NULL},
	{"vmm.boot_timeout_ms", AETH__CFG_INT, "60000", 100, 3600000, NULL},
	{"vmm.network", AETH__CFG_BOOL, "true", 0, 0, NULL},
	{"vmm.jail", AETH__CFG_ENUM, "auto", 0, 0, "auto|on|off"},
	{"vmm.jailer", AETH__CFG_STRING, "", 0, 0, NULL},
	{"vmm.jail_uid_base", AETH__CFG_INT, "1900000000", 1, 4000000000LL, NULL},
	{"vmm.jail_uid_count", AETH__CFG_INT, "65536", 1, 16777216, NULL},
	{"vmm.cgroups", AETH__CFG_BOOL, "true", 0, 0, NULL},
	{"vmm.cgroup_parent", AETH__CFG_STRING, "aetherium", 0, 0, NULL},
	{"vmm.overlay_dir", AETH__CFG_STRING, "", 0, 0, NULL},
	{"vmm.firecracker_jailer", AETH__CFG_STRING, "", 0, 0, NULL},
	{"vmm.firecracker_chroot_base", AETH__CFG_STRING, "/srv/jailer", 0, 0, NULL},
	{"vmm.snapshots", AETH__CFG_ENUM, "auto", 0, 0, "auto|off"},
	{"vmm.snapshot_dir", AETH__CFG_STRING, "", 0, 0, NULL},
	{"vmm.tcg_tb_mb", AETH__CFG_INT, "32", 1, 4096, NULL},
	{"network.taps", AETH__CFG_LIST, "", 0, 0, NULL},
	{"limits.vm_vcpus", AETH__CFG_INT, "8", 1, 64, NULL},
	{"limits.vm_memory_mb", AETH__CFG_INT, "8192", 32, 1048576, NULL},
	{"limits.vms", AETH__CFG_INT, "32", 1, 100000, NULL},
	{"limits.memory_mb", AETH__CFG_INT, "0", 0, 1073741824LL, NULL},
	{"limits.overlay_mb", AETH__CFG_INT, "0", 0, 1073741824LL, NULL},
	{"limits.ttl_s", AETH__CFG_INT, "3600", 0, 31536000, NULL},
	{"limits.ttl_max_s", AETH__CFG_INT, "86400", 1, 31536000, NULL},
	{"limits.exec_timeout_ms", AETH__CFG_INT, "600000", 100, 86400000, NULL},
	{"limits.exec_timeout_max_ms", AETH__CFG_INT, "86400000", 100, 86400000,
	 NULL},
	{"worker.id", AETH__CFG_STRING, "", 0, 0, NULL},
	{"worker.host_id", AETH__CFG_STRING, "", 0, 0, NULL},
	{"worker.host_dead_after_ms", AETH__CFG_INT, "300000", 1000, 604800000, NULL},
	{"worker.delete_vms_on_stop", AETH__CFG_BOOL, "false", 0, 0, NULL},
	{"worker.shutdown_timeout_ms", AETH__CFG_INT, "30000", 0, 86400000, NULL},
	{"ledger.interval_ms", AETH__CFG_INT, "30000", 0, 86400000, NULL},
	{"ledger.stray_after_ms", AETH__CFG_INT, "60000", 1000, 86400000, NULL},
	{"logging.level", AETH__CFG_ENUM, "info", 0, 0,
	 "debug|info|warn|error|off"},
	{"logging.format", AETH__CFG_ENUM, "text", 0, 0, "text|json"},
	{"gateway.listen", AETH__CFG_STRING, "127.0.0.1:8080", 0, 0, NULL},
	{"gateway.allow_remote", AETH__CFG_BOOL, "false", 0, 0, NULL},
	{"gateway.tls_cert", AETH__CFG_STRING, "", 0, 0, NULL},
	{"gateway.tls_key", AETH__CFG_STRING, "", 0, 0, NULL},
	{"gateway.max_body_bytes", AETH__CFG_INT, "1048576", 1024, 67108864, NULL},
	{"gateway.timeout_s", AETH__CFG_INT, "30", 1, 3600, NULL},
	{"gateway.max_conns", AETH__CFG_INT, "2048", 1, 100000, NULL},
	{"gateway.max_streams", AETH__CFG_INT, "64", 1, 10000, NULL},
	{"gateway.threads", AETH__CFG_INT, "2", 1, 64, NULL},
	{"gateway.connections", AETH__CFG_INT, "8", 1, 256, NULL},
	{"gateway.stream_connections", AETH__CFG_INT, "8", 1, 256, NULL},
	{"gateway.wait_max_s", AETH__CFG_INT, "3600", 1, 86400, NULL},
	{"gateway.quota_vms", AETH__CFG_INT, "10", 0, 100000, NULL},
	{"gateway.quota_vcpus", AETH__CFG_INT, "16", 0, 1000000, NULL},
	{"gateway.quota_memory_mb", AETH__CFG_INT, "8192", 0, 1073741824LL, NULL},
	{"gateway.quota_rps", AETH__CFG_INT, "50", 0, 1000000, NULL},
	{"gateway.tenant_max_streams", AETH__CFG_INT, "16", 1, 10000, NULL},
	{"gateway.unauthenticated_rps", AETH__CFG_INT, "5", 0, 1000000, NULL},
	{"metrics.listen", AETH__CFG_STRING, "", 0, 0, NULL},
	{"metrics.allow_remote", AETH__CFG_BOOL, "false", 0, 0, NULL},
};

const size_t aeth__cfg_nkeys = sizeof(aeth__cfg_keys) / sizeof(aeth__cfg_keys[0]);

/* An image file: a name below vmm.image_dir, never a way out of it. */
static int check_image_file(const char *field, const char *v)
{
	if (!*v)
		return 0;
	if (v[0] == '/')
		return aeth__error_set(AETH_EINVALID, "field '%s': '%.80s' must be a "
				       "file name relative to vmm.image_dir, not an "
				       "absolute path", field, v);
	for (const char *p = v;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return aeth__error_set(AETH_EINVALID, "field '%s': '%.80s' "
					       "must stay inside vmm.image_dir (no "
					       "'..', '.' or empty parts)", field, v);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* A profile's rules: each one as lib/jail/jail_rules.h reads it. */
static int check_profile(const char *field, const char *v)
{
	char item[AETH__NET_RULE_LEN + 1];

	(void)field;
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");
		aeth__net_rule r;
		const char *why;

		if (n >= sizeof(item))
			return aeth__error_set(AETH_EINVALID, "rule '%.*s...' is too "
					       "long", 40, p);
		memcpy(item, p, n);
		item[n] = '\0';
		if (aeth__net_rule_parse(item, &r, &why) != 0)
			return aeth__error_set(AETH_EINVALID, "rule '%s': %s", item,
					       why);
		p += n + (p[n] == ',');
	}
	return 0;
}

static const aeth__cfg_key image_fields[] = {
	{"kernel", AETH__CFG_STRING, "vmlinux", 0, 0, NULL},
	{"initrd", AETH__CFG_STRING, "initrd.cpio", 0, 0, NULL},
	{"rootfs", AETH__CFG_STRING, "", 0, 0, NULL},
};

static const aeth__cfg_key profile_fields[] = {
	{"allow", AETH__CFG_LIST, "", 0, 0, NULL},
};

/* A pool's image and network name catalogue entries (checked against the
 * catalogue when the worker starts); a tap cannot be pooled. */
static int check_pool(const char *field, const char *v)
{
	if (strcmp(field, "image") != 0 && strcmp(field, "network") != 0)
		return 0;
	if (!*v || strlen(v) > 64 || strspn(v, "abcdefghijklmnopqrstuvwxyz"
					    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					    "0123456789_-") != strlen(v))
		return aeth__error_set(AETH_EINVALID, "field '%s': '%.80s' is not a "
				       "catalogue name (1 to 64 of letters, digits, "
				       "'_', '-')", field, v);
	if (!strcmp(field, "network") && !strcmp(v, "tap"))
		return aeth__error_set(AETH_EINVALID, "field 'network': a tap "
				       "device serves one VM, it cannot be pooled");
	return 0;
}

/* Warm pools (lib/worker/pool.c): 0 for vcpus and memory_mb means the
 * worker's vm:create defaults (vmm.vcpus, vmm.memory_mb). */
static const aeth__cfg_key pool_fields[] = {
	{"size", AETH__CFG_INT, "1", 0, 1000, NULL},
	{"vcpus", AETH__CFG_INT, "0", 0, 64, NULL},
	{"memory_mb", AETH__CFG_INT, "0", 0, 1048576, NULL},
	{"image", AETH__CFG_STRING, "default", 0, 0, NULL},
	{"network", AETH__CFG_STRING, "none", 0, 0, NULL},
	{"rootfs", AETH__CFG_BOOL, "false", 0, 0, NULL},
};

const aeth__cfg_section aeth__cfg_sections[] = {
	{"images", "image", image_fields, AETH__ARRAY_LEN(image_fields),
	 check_image_file},
	{"network.profiles", "network profile", profile_fields,
	 AETH__ARRAY_LEN(profile_fields), check_profile},
	{"pool", "pool", pool_fields, AETH__ARRAY_LEN(pool_fields), check_pool},
};

const size_t aeth__cfg_nsections =
	sizeof(aeth__cfg_sections) / sizeof(aeth__cfg_sections[0]);

unsigned int aeth__config_default_uint(const char *key)
{
	int i = aeth__cfg_find(key);
	unsigned long long v;

	if (i < 0 || aeth__cfg_keys[i].type != AETH__CFG_INT ||
	    !aeth__cfg_keys[i].def)
		abort(); /* a caller naming a key that is not in the table */
	v = strtoull(aeth__cfg_keys[i].def, NULL, 10);
	return v > 0xffffffffULL ? 0xffffffffU : (unsigned int)v;
}
