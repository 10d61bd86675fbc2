/* lib/vm/accel.h - accelerator choice for the qemu backend. */
#ifndef AETH_VM_ACCEL_H
#define AETH_VM_ACCEL_H

#include "aetherium/vm.h"

/* AUTO -> what aeth_accel_probe() recommends; others pass through. */
aeth_accel aeth__accel_resolve(aeth_accel wanted, const char *qemu_binary);

#endif
