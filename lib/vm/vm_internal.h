/*
 * lib/vm/vm_internal.h - what other modules of the library may use of the
 * vm module (exec API in lib/agent/exec.c, the worker).
 */
#ifndef AETH_VM_INTERNAL_H
#define AETH_VM_INTERNAL_H

#include "aetherium/vm.h"

/* Same typedef as lib/agent/client.h (a repeated identical typedef is C11). */
typedef struct aeth__agent aeth__agent;

/*
 * The VM's connected agent client, borrowed: valid until the next
 * lifecycle call on `vm` (stop, delete, free). If the connection died
 * (or was never made, e.g. after aeth_vm_get) it reconnects and says
 * hello first, within a few seconds. Thread-safe: several threads may
 * call it and share the client. AETH_ESTATE if the VM is not running.
 */
int aeth__vm_agent(aeth_vm *vm, aeth__agent **out);

/* The state dir a manager opened without one uses (vm.h), malloc'd; the
 * config module shows the same default. */
char *aeth__vmm_default_state_dir(void);

/* The VM's record (spec + state), borrowed; for the worker and tests. */
struct aeth__vm_record;
const struct aeth__vm_record *aeth__vm_record_of(const aeth_vm *vm);

#endif
