/*
 * lib/vm/vm_stub.c - TEMPORARY placeholder so that other modules can build
 * against vm.h / vm_internal.h while the real vm.c and qemu backend land.
 */
#include <stddef.h>

#include "internal.h"
#include "vm/vm_internal.h"

#define NI() aeth__error_set(AETH_ERROR, "%s: not implemented yet", __func__)

int aeth_vmm_open(aeth_vmm **out, const aeth_vmm_options *opts) { *out = NULL; return NI(); }
void aeth_vmm_free(aeth_vmm *vmm) { (void)vmm; }
const char *aeth_vmm_state_dir(const aeth_vmm *vmm) { return NULL; }
const char *aeth_vmm_backend(const aeth_vmm *vmm) { return "qemu"; }
aeth_accel aeth_vmm_accel(const aeth_vmm *vmm) { return AETH_ACCEL_TCG; }
int aeth_vmm_reap(aeth_vmm *vmm, int all, char ***reaped_out) { return NI(); }
int aeth_vm_create(aeth_vm **out, aeth_vmm *vmm, const aeth_vm_options *opts) { *out = NULL; return NI(); }
int aeth_vm_start(aeth_vm *vm) { return NI(); }
int aeth_vm_stop(aeth_vm *vm, unsigned int timeout_ms) { return NI(); }
int aeth_vm_delete(aeth_vm *vm) { return NI(); }
void aeth_vm_free(aeth_vm *vm) { (void)vm; }
int aeth_vm_get(aeth_vm **out, aeth_vmm *vmm, const char *id) { *out = NULL; return NI(); }
int aeth_vm_list(char ***ids_out, aeth_vmm *vmm) { *ids_out = NULL; return NI(); }
const char *aeth_vm_id(const aeth_vm *vm) { return NULL; }
const char *aeth_vm_name(const aeth_vm *vm) { return NULL; }
aeth_vm_state aeth_vm_status(aeth_vm *vm) { return AETH_VM_FAILED; }
const char *aeth_vm_state_name(aeth_vm_state state) { return "failed"; }
const char *aeth_vm_backend(const aeth_vm *vm) { return NULL; }
aeth_accel aeth_vm_accel(const aeth_vm *vm) { return AETH_ACCEL_TCG; }
const char *aeth_accel_name(aeth_accel accel) { return "tcg"; }
int aeth_vm_pid(const aeth_vm *vm) { return 0; }
unsigned int aeth_vm_vcpus(const aeth_vm *vm) { return 0; }
unsigned int aeth_vm_memory_mb(const aeth_vm *vm) { return 0; }
const char *aeth_vm_kernel_path(const aeth_vm *vm) { return NULL; }
const char *aeth_vm_rootfs_path(const aeth_vm *vm) { return NULL; }
const char *aeth_vm_api_socket(const aeth_vm *vm) { return NULL; }
const char *aeth_vm_agent_socket(const aeth_vm *vm) { return NULL; }
const char *aeth_vm_serial_log(const aeth_vm *vm) { return NULL; }
const char *aeth_vm_state_dir(const aeth_vm *vm) { return NULL; }
int aeth_accel_probe(aeth_accel_info *info, const char *qemu_binary) { return NI(); }
int aeth__vm_agent(aeth_vm *vm, aeth__agent **out) { *out = NULL; return NI(); }
const struct aeth__vm_record *aeth__vm_record_of(const aeth_vm *vm) { return NULL; }
