/*
 * lib/worker/reconcile.c - on start, a worker looks at the VMs its id
 * owned before (the vms rows): a VM whose VMM still runs is re-attached
 * and keeps serving vm:execute; one that is gone, or was still being
 * created when the last run ended, is cleaned up and marked failed.
 */
#include <stdlib.h>
#include <string.h>

#include "worker/worker_internal.h"

static bool reattach(aeth_worker *w, const char *id, const char *status)
{
	aeth_vm *vm = NULL;

	if (strcmp(status, "running") != 0)
		return false;
	if (aeth_vm_get(&vm, w->vmm, id) != 0)
		return false;
	if (aeth_vm_status(vm) == AETH_VM_RUNNING && aeth__vm_adopt(w, vm) == 0)
		return true;
	aeth_vm_delete(vm);
	aeth_vm_free(vm);
	return false;
}

static void clean_up(aeth_worker *w, aeth__rec *rec, const char *id,
		     const char *status)
{
	aeth_vm *vm = NULL;
	char *why;

	if (aeth_vm_get(&vm, w->vmm, id) == 0) {
		aeth_vm_delete(vm);
		aeth_vm_free(vm);
	}
	why = aeth__sprintf("worker %s restarted and found this VM %s", w->id,
			    !strcmp(status, "running") ? "no longer running" :
			    "unfinished (it was still being created)");
	aeth__rec_vm_status(rec, id, "failed", why ? why : "lost on restart");
	free(why);
}

int aeth__worker_reconcile(struct aeth_worker *w, aeth__rec *rec)
{
	char **ids = NULL;
	int kept = 0, failed = 0;
	int rc = aeth__rec_vms_owned(rec, w->id, &ids);

	if (rc != 0)
		return rc;
	for (size_t i = 0; ids && ids[i]; i++) {
		char status[32], owner[256];

		if (aeth__rec_vm_lookup(rec, ids[i], status, owner) != 0)
			continue;
		if (reattach(w, ids[i], status)) {
			kept++;
		} else {
			clean_up(w, rec, ids[i], status);
			failed++;
		}
	}
	aeth_strarray_free(ids);
	if (kept || failed)
		aeth__worker_say(w, NULL, "Reconciled VMs owned by %s: %d "
				 "reattached, %d cleaned up and marked failed",
				 w->id, kept, failed);
	return 0;
}
