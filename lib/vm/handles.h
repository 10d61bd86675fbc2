/*
 * lib/vm/handles.h - the structs behind aeth_vmm and aeth_vm, shared by
 * vmm.c (manager, list, reap) and vm.c (one VM's lifecycle).
 */
#ifndef AETH_VM_HANDLES_H
#define AETH_VM_HANDLES_H

#include <pthread.h>

#include "vm/backend.h"
#include "vm/jail.h"
#include "vm/vm_internal.h"

struct aeth__snap;

struct aeth_vmm {
	const aeth__vm_backend *backend;
	aeth_accel accel;           /* resolved */
	char *state_dir;
	char *vms_dir;              /* <state_dir>/vms */
	char *image_dir;
	char *kernel_path;
	char *initrd_path;
	char *rootfs_path;
	char *qemu_binary;
	char *firecracker_binary;
	unsigned int boot_timeout_ms;
	aeth__jail_conf jail;
	/* snapshots (snapshot.c) */
	aeth_snapshot_mode snapshots;
	char *snapshot_dir;
	unsigned int tcg_tb_mb;
	pthread_mutex_t snap_mu;     /* guards snaps */
	pthread_cond_t snap_cond;    /* a snapshot being made or loaded is done */
	struct aeth__snap *snaps;
};

struct aeth_vm {
	aeth_vmm *vmm;
	const aeth__vm_backend *backend;
	aeth__vm_record rec;
	pthread_mutex_t lock;       /* guards agent and graveyard */
	aeth__agent *agent;
	/* Clients replaced by a reconnect: other threads may still hold
	 * them (borrowed), so they are freed only with the handle. */
	aeth__agent **graveyard;
	size_t graveyard_len;
	bool boot_exited;           /* the last aeth_vm_start(): VMM exited */
};

/* <vms_dir>/<id>; AETH_ENOTFOUND-safe validation of the id. */
char *aeth__vmm_vm_dir(const aeth_vmm *vmm, const char *id);

/* Make a handle around a loaded record (takes its strings). */
int aeth__vm_wrap(aeth_vm **out, aeth_vmm *vmm, aeth__vm_record *rec);

/* vm.c, for snapshot.c: boot from the kernel (a hung TCG boot retried
 * once); restore from the snapshot in `dir` once; kill a VM and remove
 * its state dir without asking the guest (a template once saved). */
int aeth__vm_boot_cold(aeth_vm *vm);
int aeth__vm_restore_once(aeth_vm *vm, const char *dir);
void aeth__vm_discard(aeth_vm *vm);

#endif
