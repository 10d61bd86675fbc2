/*
 * lib/vm/vm_internal.h - what other modules of the library (config,
 * worker) may use of the vm module.
 */
#ifndef AETH_VM_INTERNAL_H
#define AETH_VM_INTERNAL_H

#include <stdbool.h>

#include "aetherium/vm.h"

/* Same typedef as lib/agent/agent_client.h (a repeated identical typedef
 * is C11). */
typedef struct aeth__agent aeth__agent;

/*
 * The VM's connected agent client, borrowed: valid until the next
 * lifecycle call on `vm` (stop, delete, free). If the connection died
 * (or was never made, e.g. after aeth_vm_get) it reconnects and says
 * hello first, within a few seconds. Thread-safe: several threads may
 * call it and share the client. AETH_ESTATE if the VM is not running.
 */
int aeth__vm_agent(aeth_vm *vm, aeth__agent **out);

/*
 * The guest stopped answering (a deadline of lib/agent passed): kill the
 * VM's VMM now, without asking the guest, clean up its runtime resources
 * and record the VM FAILED with `reason` (vm.json; the caller writes the
 * database). Unlike aeth_vm_stop(), may run while other threads exec in
 * the VM: their calls fail at once (the channel closes) and their
 * borrowed agent clients stay valid until aeth_vm_free(). Idempotent. 0,
 * or the error of saving the record.
 */
int aeth__vm_fail(aeth_vm *vm, const char *reason);

/*
 * Open a guest image file (`what`: "kernel", ...) for VM `vm_id`'s VMM
 * (NULL: for no VM in particular, e.g. a check):
 * read-only, no symbolic link anywhere in the path (openat2
 * RESOLVE_NO_SYMLINKS; the last part only on kernels before 5.6), a
 * regular file (no device, FIFO or directory). The fd (O_CLOEXEC), or
 * AETH_ENOTFOUND / AETH_EINVALID / AETH_EIO saying which rule failed.
 */
int aeth__vm_open_image(const char *vm_id, const char *what, const char *path);

/* Is the VM's VMM process alive (and still ours)? Changes nothing. */
bool aeth__vm_vmm_alive(const aeth_vm *vm);

/*
 * Warm pools (lib/worker/pool.c). A pooled VM carries its pool's tag in
 * vm.json ("pool": "<worker id>/<pool name>") so that a restarted worker
 * finds it again. aeth__vm_claim() hands it to a user: its name, a
 * lifetime from now (ttl_s, 0: none), origin AETH_ORIGIN_POOL and the
 * hand-out time as its start time; the tag is cleared. Both save vm.json.
 */
int aeth__vm_set_pool(aeth_vm *vm, const char *tag);
const char *aeth__vm_pool(const aeth_vm *vm);
/* The VM's network mode, for a pool comparing shapes. */
aeth_net_mode aeth__vm_net(const aeth_vm *vm);
int aeth__vm_claim(aeth_vm *vm, const char *name, unsigned int ttl_s,
		   int64_t handout_ms);
/* Whether the last aeth_vm_start() of `vm` failed because its VMM exited
 * on its own (its words are in the error): booting again would fail the
 * same way, so a worker does not retry it. */
bool aeth__vm_boot_vmm_exited(const aeth_vm *vm);

/* The VM's record (spec + state), borrowed; for tests (lib/vm/backend.h
 * has its fields). */
struct aeth__vm_record;
const struct aeth__vm_record *aeth__vm_record_of(const aeth_vm *vm);

/* The state the VM's record holds, without checking the VMM (unlike
 * aeth_vm_status()). */
aeth_vm_state aeth__vm_recorded_state(const aeth_vm *vm);

/*
 * What confines this manager's VMMs, one finding per line for aeth-worker
 * -check: "jail", "seccomp", "namespaces", "vmm user", "cgroups",
 * "overlay dir"; status 0 ok, 1 warning, 2 failure (as aeth_check_cb).
 * Probes what it can (QEMU's -sandbox, unshare in a child) without
 * starting a VM.
 */
typedef void (*aeth__finding_cb)(const char *what, int status,
				 const char *detail, const char *fix,
				 void *userdata);
void aeth__jail_report(const aeth_vmm *m, aeth__finding_cb cb,
		       void *userdata);

#endif
