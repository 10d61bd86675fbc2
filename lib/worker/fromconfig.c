/*
 * lib/worker/fromconfig.c - worker and client settings from the config
 * module (file, then environment), with program overrides on top.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aetherium/config.h"
#include "aetherium/task.h"
#include "aetherium/vm.h"
#include "aetherium/worker.h"
#include "internal.h"
#include "worker/worker_internal.h"

static const char *cfg_str(const aeth_config *cfg, const char *key)
{
	const char *v = NULL;

	if (aeth_config_get_string(&v, cfg, key) != 0 || !v || !*v)
		return NULL;
	return v;
}

static unsigned int cfg_uint(const aeth_config *cfg, const char *key)
{
	int64_t v = 0;

	if (aeth_config_get_int(&v, cfg, key) != 0 || v < 0 || v > 0xffffffffLL)
		return 0;
	return (unsigned int)v;
}

/* queue.weights as "name=weight,..." (malloc'd). */
static char *cfg_queues(const aeth_config *cfg)
{
	aeth__buf b = AETH__BUF_INIT;
	size_t n = aeth_config_queue_count(cfg);

	for (size_t i = 0; i < n; i++) {
		const char *name = NULL;
		int weight = 1;

		if (aeth_config_queue_get(&name, &weight, cfg, i) == 0 && name)
			aeth__buf_printf(&b, "%s%s=%d", b.len ? "," : "", name, weight);
	}
	return b.len ? aeth__buf_detach(&b, NULL) : (aeth__buf_free(&b), NULL);
}

void aeth__vmm_options_from_config(const aeth_config *cfg, aeth_vmm_options *o)
{
	const char *accel = cfg_str(cfg, "vmm.accel"), *jail = cfg_str(cfg, "vmm.jail");
	const char *snap;
	bool cgroups = true;

	*o = (aeth_vmm_options)AETH_VMM_OPTIONS_INIT;
	o->backend = cfg_str(cfg, "vmm.backend");
	o->accel = accel && !strcmp(accel, "kvm") ? AETH_ACCEL_KVM :
		   accel && !strcmp(accel, "tcg") ? AETH_ACCEL_TCG : AETH_ACCEL_AUTO;
	o->image_dir = cfg_str(cfg, "vmm.image_dir");
	/* the default image (the worker's vm:create picks its files from
	 * the catalogue, policy.c; aeth_vm_create() callers and -check get
	 * the same files from here) */
	o->kernel_path = cfg_str(cfg, "vmm.kernel");
	o->initrd_path = cfg_str(cfg, "vmm.initrd");
	o->state_dir = cfg_str(cfg, "vmm.state_dir");
	o->boot_timeout_ms = cfg_uint(cfg, "vmm.boot_timeout_ms");
	o->jail = jail && !strcmp(jail, "on") ? AETH_JAIL_ON :
		  jail && !strcmp(jail, "off") ? AETH_JAIL_OFF : AETH_JAIL_AUTO;
	o->jailer_binary = cfg_str(cfg, "vmm.jailer");
	o->jail_uid_base = cfg_uint(cfg, "vmm.jail_uid_base");
	o->jail_uid_count = cfg_uint(cfg, "vmm.jail_uid_count");
	o->cgroup_parent = cfg_str(cfg, "vmm.cgroup_parent");
	aeth_config_get_bool(&cgroups, cfg, "vmm.cgroups");
	o->no_cgroups = !cgroups;
	o->overlay_dir = cfg_str(cfg, "vmm.overlay_dir");
	o->firecracker_jailer = cfg_str(cfg, "vmm.firecracker_jailer");
	o->firecracker_chroot_base = cfg_str(cfg, "vmm.firecracker_chroot_base");
	snap = cfg_str(cfg, "vmm.snapshots");
	o->snapshots = snap && !strcmp(snap, "off") ? AETH_SNAPSHOTS_OFF
						    : AETH_SNAPSHOTS_AUTO;
	o->snapshot_dir = cfg_str(cfg, "vmm.snapshot_dir");
	o->tcg_tb_mb = cfg_uint(cfg, "vmm.tcg_tb_mb");
}

#define PICK(f, v) o.f = overrides && overrides->f ? overrides->f : (v)

int aeth_worker_new_from_config(aeth_worker **out, const aeth_config *cfg,
				const aeth_worker_options *overrides)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT, ov;
	aeth_config *own = NULL;
	char *queues;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_worker_new_from_config: "
				       "out is NULL");
	*out = NULL;
	if (overrides &&
	    (rc = aeth__versioned_copy(&aeth__worker_options_v, &ov, overrides)) != 0)
		return rc;
	overrides = overrides ? &ov : NULL;
	if (!cfg) {
		if ((rc = aeth_config_load(&own, NULL)) != 0)
			return rc;
		cfg = own;
	}
	queues = cfg_queues(cfg);
	PICK(id, cfg_str(cfg, "worker.id"));
	PICK(database_url, cfg_str(cfg, "database.url"));
	PICK(redis_url, cfg_str(cfg, "redis.url"));
	PICK(redis_ns, NULL);
	PICK(concurrency, cfg_uint(cfg, "queue.concurrency"));
	PICK(queues, queues);
	PICK(lease_ms, 0);
	PICK(grace_ms, cfg_uint(cfg, "worker.shutdown_timeout_ms"));
	PICK(backend, cfg_str(cfg, "vmm.backend"));
	PICK(accel, cfg_str(cfg, "vmm.accel"));
	PICK(image_dir, cfg_str(cfg, "vmm.image_dir"));
	PICK(state_dir, cfg_str(cfg, "vmm.state_dir"));
	PICK(vcpus, cfg_uint(cfg, "vmm.vcpus"));
	PICK(memory_mb, cfg_uint(cfg, "vmm.memory_mb"));
	o.config = cfg; /* the rest: images, profiles, limits, jail */
	if (overrides) {
		o.rootfs_path = overrides->rootfs_path;
		o.use_rootfs = overrides->use_rootfs;
		o.deny_network = overrides->deny_network;
		o.on_event = overrides->on_event;
		o.userdata = overrides->userdata;
		o.migrate = overrides->migrate;
	}
	rc = aeth_worker_new(out, &o);
	free(queues);
	aeth_config_free(own);
	return rc;
}
