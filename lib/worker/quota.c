/*
 * lib/worker/quota.c - a worker's limits on what its VMs take together:
 * VMs at once (limits.vms), committed guest memory (limits.memory_mb) and
 * overlay disk space (limits.overlay_mb). What is in use is what the VM
 * table holds (every live VM of this worker, reattached ones included)
 * plus the creates between their check and their VM joining the table,
 * plus the warm pools' VMs (pool.c), so the counts cannot drift from the
 * VMs that exist.
 */
#include <stdio.h>
#include <sys/stat.h>

#include "worker/worker_internal.h"

uint64_t aeth__overlay_mb(const char *rootfs_path)
{
	struct stat st;

	/* a copy-on-write layer grows up to the disk's size, no further */
	if (!rootfs_path || stat(rootfs_path, &st) != 0)
		return 0;
	return ((uint64_t)st.st_size + (1u << 20) - 1) >> 20;
}

int aeth__quota_reserve(aeth_worker *w, unsigned int memory_mb,
			uint64_t overlay_mb)
{
	const aeth__policy *p = &w->policy;
	unsigned int vms;
	uint64_t mem, disk;
	int rc = 0;

	pthread_mutex_lock(&w->vm_mu);
	vms = w->pending_vms + w->pool_vms;
	mem = w->pending_memory_mb + w->pool_memory_mb;
	disk = w->pending_overlay_mb + w->pool_overlay_mb;
	for (aeth__vmref *r = w->vms; r; r = r->next) {
		if (r->deleted)
			continue;
		vms++;
		mem += aeth_vm_memory_mb(r->vm);
		disk += aeth__overlay_mb(aeth_vm_rootfs_path(r->vm));
	}
	if (vms + 1 > p->vms)
		rc = aeth__error_set(AETH_EBUSY, "worker %s has %u VM%s, as many "
				     "as its limit (limits.vms) allows: delete a "
				     "VM or raise the limit", w->id, vms,
				     vms == 1 ? "" : "s");
	else if (mem + memory_mb > p->memory_mb)
		rc = aeth__error_set(AETH_EBUSY, "worker %s has %llu MiB of guest "
				     "memory committed; %u MiB more would pass its "
				     "limit of %llu MiB (limits.memory_mb)", w->id,
				     (unsigned long long)mem, memory_mb,
				     (unsigned long long)p->memory_mb);
	else if (disk + overlay_mb > p->overlay_mb)
		rc = aeth__error_set(AETH_EBUSY, "worker %s has %llu MiB of overlay "
				     "disk space committed; this root disk's %llu "
				     "MiB would pass its limit of %llu MiB "
				     "(limits.overlay_mb)", w->id,
				     (unsigned long long)disk,
				     (unsigned long long)overlay_mb,
				     (unsigned long long)p->overlay_mb);
	if (rc == 0) {
		w->pending_vms++;
		w->pending_memory_mb += memory_mb;
		w->pending_overlay_mb += overlay_mb;
	}
	pthread_mutex_unlock(&w->vm_mu);
	return rc;
}

void aeth__quota_release(aeth_worker *w, unsigned int memory_mb,
			 uint64_t overlay_mb)
{
	pthread_mutex_lock(&w->vm_mu);
	w->pending_vms--;
	w->pending_memory_mb -= memory_mb;
	w->pending_overlay_mb -= overlay_mb;
	pthread_mutex_unlock(&w->vm_mu);
}
