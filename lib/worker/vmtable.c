/*
 * lib/worker/vmtable.c - the VMs this worker holds handles on. Several
 * slots may exec in one VM at once (shared lock) but a delete waits for
 * them and excludes new ones (exclusive lock), as vm.h requires. A VM not
 * in the table (e.g. after a restart) is re-attached with aeth_vm_get().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/worker_internal.h"

static aeth__vmref *find(aeth_worker *w, const char *id)
{
	for (aeth__vmref *r = w->vms; r; r = r->next)
		if (!strcmp(r->id, id))
			return r;
	return NULL;
}

static aeth__vmref *insert(aeth_worker *w, aeth_vm *vm)
{
	aeth__vmref *r = calloc(1, sizeof(*r));

	if (!r) {
		aeth__error_oom();
		return NULL;
	}
	snprintf(r->id, sizeof(r->id), "%s", aeth_vm_id(vm));
	r->vm = vm;
	pthread_rwlock_init(&r->lock, NULL);
	r->next = w->vms;
	w->vms = r;
	return r;
}

int aeth__vm_adopt(struct aeth_worker *w, aeth_vm *vm)
{
	aeth__vmref *r;

	pthread_mutex_lock(&w->vm_mu);
	r = find(w, aeth_vm_id(vm)) ? NULL : insert(w, vm);
	pthread_mutex_unlock(&w->vm_mu);
	return r ? 0 : AETH_EEXISTS;
}

int aeth__vm_acquire(struct aeth_worker *w, const char *id, bool exclusive,
		     aeth__vmref **out)
{
	aeth__vmref *r;
	aeth_vm *vm = NULL;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&w->vm_mu);
	r = find(w, id);
	if (!r) {
		/* attach under the table lock: only one slot attaches an id */
		rc = aeth_vm_get(&vm, w->vmm, id);
		if (rc == 0 && !(r = insert(w, vm))) {
			aeth_vm_free(vm);
			rc = AETH_ENOMEM;
		}
	}
	if (r)
		r->refs++;
	pthread_mutex_unlock(&w->vm_mu);
	if (rc != 0) {
		if (rc == AETH_ENOTFOUND)
			return aeth__error_set(AETH_ENOTFOUND, "VM %s is not on this "
					       "worker's host any more (its state dir "
					       "is gone)", id);
		return rc;
	}
	if (exclusive)
		pthread_rwlock_wrlock(&r->lock);
	else
		pthread_rwlock_rdlock(&r->lock);
	if (r->deleted || r->ending) {
		const char *why = r->why_ended;

		aeth__vm_release(w, r, exclusive);
		return aeth__error_set(AETH_ESTATE, "VM %s %s", id,
				       why ? why : "was deleted");
	}
	*out = r;
	return 0;
}

void aeth__vm_release(struct aeth_worker *w, aeth__vmref *r, bool exclusive)
{
	bool drop;

	(void)exclusive;
	pthread_rwlock_unlock(&r->lock);
	pthread_mutex_lock(&w->vm_mu);
	drop = --r->refs == 0 && r->deleted;
	if (drop) {
		for (aeth__vmref **p = &w->vms; *p; p = &(*p)->next)
			if (*p == r) {
				*p = r->next;
				break;
			}
	}
	pthread_mutex_unlock(&w->vm_mu);
	if (drop) {
		aeth_vm_free(r->vm);
		pthread_rwlock_destroy(&r->lock);
		free(r);
	}
}

void aeth__vm_table_free(struct aeth_worker *w)
{
	aeth__vmref *r = w->vms, *next;

	/* handles only: the VMs keep running for the next worker run */
	for (; r; r = next) {
		next = r->next;
		aeth_vm_free(r->vm);
		pthread_rwlock_destroy(&r->lock);
		free(r);
	}
	w->vms = NULL;
}
