/*
 * aetherium/aetherium.h - the umbrella header: includes every public
 * module. Programs may include this or the module headers they use.
 */
#ifndef AETHERIUM_H
#define AETHERIUM_H

#include "common.h"
#include "config.h"
#include "error.h"
#include "exec.h"
#include "log.h"
#include "queue.h"
#include "store.h"
#include "task.h"
#include "version.h"
#include "vm.h"
#include "worker.h"

#endif
