/*
 * lib/config/keys.c - every configuration key with its type and default.
 * Adding a key is one line here plus a line in docs/config.md.
 */
#include "config_internal.h"

const aeth__cfg_key aeth__cfg_keys[] = {
	{"database.url", AETH__CFG_STRING,
	 "postgresql://aetherium@127.0.0.1:5432/aetherium", 0, 0, NULL},
	{"redis.url", AETH__CFG_STRING, "redis://127.0.0.1:6379/0", 0, 0, NULL},
	{"queue.concurrency", AETH__CFG_INT, "10", 1, 10000, NULL},
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
	{"worker.id", AETH__CFG_STRING, "", 0, 0, NULL},
	{"worker.shutdown_timeout_ms", AETH__CFG_INT, "30000", 0, 86400000, NULL},
	{"logging.level", AETH__CFG_ENUM, "info", 0, 0,
	 "debug|info|warn|error|off"},
	{"logging.format", AETH__CFG_ENUM, "text", 0, 0, "text|json"},
};

const size_t aeth__cfg_nkeys = sizeof(aeth__cfg_keys) / sizeof(aeth__cfg_keys[0]);
