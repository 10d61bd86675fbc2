/*
 * lib/vm/snapshot.h - starting VMs from a snapshot of their shape
 * (docs/vm.md, "Snapshots").
 *
 * A shape is what a guest's memory depends on: backend and VMM binary,
 * accelerator, vCPUs, memory, network mode, kernel, initramfs (hence the
 * agent in it) and kernel command line. Its key hashes those, with the
 * identity of each file (device, inode, size, times), so that a rebuilt
 * image or another QEMU makes a new snapshot and the old one is removed.
 *
 * On disk, <snapshot_dir>/<key>/: "meta.json" (the exact inputs, checked
 * on every load, so a hash collision can never restore the wrong guest),
 * "state" (the VMM's device state) and "ram" (the guest's memory at the
 * moment its agent answered, sparse). The directory is made in a
 * temporary place and renamed, under a lock file, so two processes never
 * see half a snapshot.
 *
 * In memory (QEMU): each snapshot's "ram" is loaded once per manager into
 * a sealed memfd (no write, grow, shrink, or new seals), which every VM
 * restored from it maps privately: their untouched pages are one copy on
 * the host, and no VMM can change what the next one starts from.
 */
#ifndef AETH_VM_SNAPSHOT_H
#define AETH_VM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "aetherium/vm.h"

/*
 * Start `vm` from the snapshot of its shape, making it first when there
 * is none (a template VM booted once and saved). 0: the VM runs, its
 * agent answered hello. 1: no snapshot for this start (the manager has
 * snapshots off, the shape cannot have one, or making or using it failed:
 * a warning says why): boot from the kernel instead.
 */
int aeth__snapshot_start(aeth_vm *vm);

/* Forget the snapshots loaded in memory (at aeth_vmm_free()). */
void aeth__snapshot_cache_free(aeth_vmm *vmm);

/*
 * Write the first `bytes` of `memfd` to a new file `path` (0600), leaving
 * holes where a page is all zeros. 0 or AETH_EIO. For backends that keep
 * a template's memory in a memfd (QEMU).
 */
int aeth__snapshot_write_ram(int memfd, uint64_t bytes, const char *path);

#endif
