/*
 * lib/vm/vmm.c - the VM manager: defaults, backends, list, reap.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "config/config_defaults.h"
#include "vm/accel.h"
#include "vm/firecracker_jail.h"
#include "vm/handles.h"
#include "vm/snapshot.h"

/* The TCG translation cache per VM, MiB: a cold boot of our image fills
 * ~31 MiB (bench/README.md, "memory"); QEMU's default grows to 1 GiB. */
#define DEFAULT_TCG_TB_MB 32
/* A record still "creating" this young may belong to a live process that
 * has not started it yet: reap leaves it alone. */
#define REAP_CREATING_GRACE_MS (5 * 60 * 1000)

const aeth__vm_backend *aeth__vm_backend_find(const char *name)
{
	if (!name || strcmp(name, "qemu") == 0)
		return &aeth__vm_backend_qemu;
	if (strcmp(name, "firecracker") == 0)
		return &aeth__vm_backend_firecracker;
	return NULL;
}

static char *default_image_dir(void)
{
	const char *e = getenv("AETH_IMAGE_DIR");
	const char *home = getenv("HOME");

	if (e && *e)
		return aeth__strdup(e);
	return aeth__sprintf("%s/.cache/aetherium/image",
			     home && *home ? home : "/root");
}

static char *or_default(const char *v, const char *dir, const char *file)
{
	return v ? aeth__strdup(v) : aeth__sprintf("%s/%s", dir, file);
}

static const aeth_vmm_options vmm_defaults = AETH_VMM_OPTIONS_INIT;
static const size_t vmm_sizes[] = {
	AETH__END(aeth_vmm_options, boot_timeout_ms),  /* 1 */
	AETH__END(aeth_vmm_options, overlay_dir),      /* 2 */
	AETH__END(aeth_vmm_options, firecracker_chroot_base), /* 3 */
	sizeof(aeth_vmm_options),                      /* 4 */
};
static const aeth__versioned aeth__vmm_options_v = {
	"aeth_vmm_options", "AETH_VMM_OPTIONS_INIT", AETH_VMM_OPTIONS_VERSION,
	vmm_sizes, &vmm_defaults,
};

int aeth_vmm_options_init(aeth_vmm_options *opts, unsigned int version)
{
	return aeth__versioned_init(&aeth__vmm_options_v, opts, version);
}

int aeth_vmm_open(aeth_vmm **out, const aeth_vmm_options *opts)
{
	aeth_vmm_options o;
	aeth_vmm *m;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_vmm_open: out is NULL");
	*out = NULL;
	if ((rc = aeth__versioned_copy(&aeth__vmm_options_v, &o, opts)) != 0)
		return rc;
	opts = &o;
	m = calloc(1, sizeof(*m));
	if (!m)
		return aeth__error_oom();
	pthread_mutex_init(&m->snap_mu, NULL);
	pthread_cond_init(&m->snap_cond, NULL);
	m->backend = aeth__vm_backend_find(opts->backend);
	if (!m->backend) {
		rc = aeth__error_set(AETH_EINVALID,
				     "unknown VM backend '%s' (known: qemu%s)",
				     opts->backend,
				     aeth__vm_backend_find("firecracker") ?
				     ", firecracker" : "");
		goto fail;
	}
	rc = AETH_ENOMEM;
	m->state_dir = opts->state_dir ? aeth__strdup(opts->state_dir) :
		aeth__vmm_default_state_dir();
	m->image_dir = opts->image_dir ? aeth__strdup(opts->image_dir) :
		default_image_dir();
	if (!m->state_dir || !m->image_dir)
		goto fail;
	m->vms_dir = aeth__sprintf("%s/vms", m->state_dir);
	m->kernel_path = or_default(opts->kernel_path, m->image_dir, "vmlinux");
	m->initrd_path = or_default(opts->initrd_path, m->image_dir,
				    "initrd.cpio");
	m->rootfs_path = aeth__strdup(opts->rootfs_path);
	m->qemu_binary = aeth__strdup(opts->qemu_binary ? opts->qemu_binary :
				      "qemu-system-x86_64");
	m->firecracker_binary = aeth__strdup(opts->firecracker_binary ?
					     opts->firecracker_binary :
					     "firecracker");
	if (!m->vms_dir || !m->kernel_path || !m->initrd_path ||
	    (opts->rootfs_path && !m->rootfs_path) || !m->qemu_binary ||
	    !m->firecracker_binary)
		goto fail;
	m->boot_timeout_ms = opts->boot_timeout_ms ? opts->boot_timeout_ms :
		aeth__config_default_uint("vmm.boot_timeout_ms");
	if ((int)opts->snapshots < 0 || opts->snapshots > AETH_SNAPSHOTS_AUTO) {
		rc = aeth__error_set(AETH_EINVALID, "unknown snapshot mode %d",
				     (int)opts->snapshots);
		goto fail;
	}
	m->snapshots = opts->snapshots;
	m->tcg_tb_mb = opts->tcg_tb_mb ? opts->tcg_tb_mb :
		DEFAULT_TCG_TB_MB;
	m->snapshot_dir = opts->snapshot_dir &&
			  *opts->snapshot_dir ? aeth__strdup(opts->snapshot_dir) :
		aeth__sprintf("%s/snapshots", m->state_dir);
	if (!m->snapshot_dir) {
		rc = AETH_ENOMEM;
		goto fail;
	}
	if ((rc = aeth__private_dir(m->state_dir, "state dir (vmm.state_dir)")) != 0 ||
	    (rc = aeth__private_dir(m->vms_dir, "state dir (vmm.state_dir)")) != 0 ||
	    (m->snapshots != AETH_SNAPSHOTS_OFF &&
	     (rc = aeth__private_dir(m->snapshot_dir,
				     "snapshot dir (vmm.snapshot_dir)")) != 0))
		goto fail;
	if (m->backend == &aeth__vm_backend_qemu &&
	    (rc = aeth__jail_conf_init(&m->jail, opts, m->state_dir)) != 0)
		goto fail;
	if (m->backend != &aeth__vm_backend_qemu &&
	    (rc = aeth__fc_jail_conf_init(&m->jail, opts, m->state_dir)) != 0)
		goto fail;
	if (m->backend == &aeth__vm_backend_qemu && !m->jail.on)
		aeth__warn("VMMs run WITHOUT the jail: %s; they have this process's "
			   "user, files and network, with QEMU's seccomp filter only: "
			   "never run untrusted guests like this (docs/security.md)",
			   m->jail.why_off ? m->jail.why_off : "unknown reason");
	if (m->backend == &aeth__vm_backend_qemu) {
		if (opts->accel > AETH_ACCEL_TCG) {
			rc = aeth__error_set(AETH_EINVALID, "unknown accel %d",
					     (int)opts->accel);
			goto fail;
		}
		m->accel = aeth__accel_resolve(opts->accel, m->qemu_binary);
	} else {
		m->accel = AETH_ACCEL_KVM; /* Firecracker always uses KVM */
	}
	*out = m;
	return 0;
fail:
	aeth_vmm_free(m);
	return rc;
}

void aeth_vmm_free(aeth_vmm *m)
{
	if (!m)
		return;
	free(m->state_dir);
	free(m->vms_dir);
	free(m->image_dir);
	free(m->kernel_path);
	free(m->initrd_path);
	free(m->rootfs_path);
	free(m->qemu_binary);
	free(m->firecracker_binary);
	aeth__jail_conf_clear(&m->jail);
	aeth__snapshot_cache_free(m);
	free(m->snapshot_dir);
	pthread_mutex_destroy(&m->snap_mu);
	pthread_cond_destroy(&m->snap_cond);
	free(m);
}

const char *aeth_vmm_state_dir(const aeth_vmm *m)
{
	return m->state_dir;
}

const char *aeth_vmm_backend(const aeth_vmm *m)
{
	return m->backend->name;
}

aeth_accel aeth_vmm_accel(const aeth_vmm *m)
{
	return m->accel;
}

int aeth_vmm_jailed(const char **why, const aeth_vmm *m)
{
	if (why)
		*why = m->jail.on ? NULL : m->jail.why_off ? m->jail.why_off : "off";
	return m->jail.on ? 1 : 0;
}

char *aeth__vmm_vm_dir(const aeth_vmm *m, const char *id)
{
	if (!aeth__uuid_valid(id)) {
		aeth__error_set(AETH_ENOTFOUND,
				"no VM with id '%s': VM ids are UUIDs",
				id ? id : "(null)");
		return NULL;
	}
	return aeth__sprintf("%s/%s", m->vms_dir, id);
}

int aeth_vm_list(char ***ids_out, aeth_vmm *m)
{
	DIR *d = opendir(m->vms_dir);
	struct dirent *e;
	char **ids = NULL;
	size_t n = 0;

	*ids_out = NULL;
	if (!d && errno != ENOENT)
		return aeth__error_errno(AETH_EIO, "cannot list VMs in %s",
					 m->vms_dir);
	while (d && (e = readdir(d)) != NULL) {
		char **grown;

		if (!aeth__uuid_valid(e->d_name))
			continue;
		grown = realloc(ids, (n + 2) * sizeof(*ids));
		if (grown) {
			ids = grown;
			ids[n] = strdup(e->d_name);
		}
		if (!grown || !ids[n]) {
			if (ids)
				ids[n] = NULL;
			aeth_strarray_free(ids);
			closedir(d);
			return aeth__error_oom();
		}
		ids[++n] = NULL;
	}
	if (d)
		closedir(d);
	if (!ids && !(ids = calloc(1, sizeof(*ids))))
		return aeth__error_oom();
	*ids_out = ids;
	return 0;
}

/* Should reap remove this record? */
static bool reapable(const aeth__vm_backend *b, const aeth__vm_record *r,
		     int all)
{
	if (r->expires_ms && aeth__wall_ms() >= r->expires_ms)
		return true;
	if (b && b->alive(r))
		return all != 0;
	if (r->state == AETH_VM_CREATING &&
	    aeth__wall_ms() - r->created_ms < REAP_CREATING_GRACE_MS)
		return all != 0;
	return true;
}

static int reap_one(aeth_vmm *m, const char *id, int all, bool *reaped)
{
	aeth__vm_record r;
	const aeth__vm_backend *b;
	char *dir = aeth__vmm_vm_dir(m, id);
	int rc;

	*reaped = false;
	if (!dir)
		return AETH_ENOMEM;
	rc = aeth__vm_record_load(&r, dir);
	if (rc == AETH_ENOTFOUND || rc == AETH_EINVALID) {
		/* Half-written or broken: nothing we could signal safely. */
		rc = aeth__rm_rf(dir);
		*reaped = rc == 0;
		free(dir);
		return rc;
	}
	if (rc) {
		free(dir);
		return rc;
	}
	b = aeth__vm_backend_find(r.backend);
	r.jail = &m->jail;
	if (reapable(b, &r, all)) {
		aeth__info("reaping VM %s (state %s, pid %d)", id,
			   aeth_vm_state_name(r.state), (int)r.pid);
		if (b) {
			b->kill(&r);
			b->cleanup(&r);
		} else {
			aeth__vm_pid_kill(r.pid, r.id, r.pid_starttime);
		}
		rc = aeth__rm_rf(dir);
		*reaped = rc == 0;
	}
	aeth__vm_record_clear(&r);
	free(dir);
	return rc;
}

int aeth_vmm_reap(char ***reaped_out, aeth_vmm *m, int all)
{
	char **ids = NULL, **done = NULL;
	size_t n = 0;
	int rc, first = 0;

	if (reaped_out)
		*reaped_out = NULL;
	if ((rc = aeth_vm_list(&ids, m)) != 0)
		return rc;
	done = calloc(1, sizeof(*done));
	for (char **p = ids; done && *p; p++) {
		bool reaped;
		char **grown;

		rc = reap_one(m, *p, all, &reaped);
		if (rc && !first)
			first = rc;
		if (!reaped)
			continue;
		grown = realloc(done, (n + 2) * sizeof(*done));
		if (!grown)
			break;
		done = grown;
		done[n] = strdup(*p);
		if (done[n])
			n++;
		done[n] = NULL;
	}
	aeth_strarray_free(ids);
	if (!done)
		return aeth__error_oom();
	if (reaped_out)
		*reaped_out = done;
	else
		aeth_strarray_free(done);
	return first;
}
