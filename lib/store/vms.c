/* lib/store/vms.c - rows of the vms table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/store_internal.h"

#define VM_COLS                                                              \
	"id, name, orchestrator, status, kernel_path, rootfs_path, "         \
	"socket_path, vcpu_count, memory_mb, " AETH__MS("created_at") ", "   \
	AETH__MS("started_at") ", " AETH__MS("stopped_at") ", "              \
	AETH__MS("updated_at") ", metadata, owner_worker, error"

static int check_vm(const aeth_store_vm *vm)
{
	int rc;

	if ((rc = aeth__store_check_uuid("vm id", vm->id)) ||
	    (rc = aeth__store_check_text("vm name", vm->name, 255, true)) ||
	    (rc = aeth__store_check_text("vm orchestrator", vm->orchestrator, 50,
					 true)) ||
	    (rc = aeth__store_check_text("vm kernel_path", vm->kernel_path, 500,
					 false)) ||
	    (rc = aeth__store_check_text("vm rootfs_path", vm->rootfs_path, 500,
					 false)) ||
	    (rc = aeth__store_check_text("vm socket_path", vm->socket_path, 500,
					 false)) ||
	    (rc = aeth__store_check_text("vm owner_worker", vm->owner_worker,
					 255, false)) ||
	    (rc = aeth__store_check_text("vm error", vm->error, 0, false)) ||
	    (rc = aeth__store_check_json("vm metadata", vm->metadata, false)))
		return rc;
	if (vm->vcpu_count < 0 || vm->memory_mb < 0)
		return aeth__error_set(AETH_EINVALID,
				       "vm vcpu_count and memory_mb must not be "
				       "negative (got %d, %d)", vm->vcpu_count,
				       vm->memory_mb);
	return 0;
}

static const char *int_or_null(char *buf, size_t size, int v)
{
	if (v == 0)
		return NULL;
	snprintf(buf, size, "%d", v);
	return buf;
}

int aeth_store_vm_insert(aeth_store *s, aeth_store_vm *vm)
{
	char vcpus[16], mem[16];
	const char *status;
	PGresult *r;
	int rc;

	if (!vm)
		return aeth__error_set(AETH_EINVALID, "vm record is NULL");
	status = vm->status ? vm->status : "creating";
	if ((rc = check_vm(vm)) ||
	    (rc = aeth__store_check_status("vm", status, aeth__vm_statuses)))
		return rc;
	if (!vm->id[0])
		aeth__uuid_new(vm->id);
	const char *p[] = {vm->id, vm->name, vm->orchestrator, status,
			   vm->kernel_path, vm->rootfs_path, vm->socket_path,
			   int_or_null(vcpus, sizeof(vcpus), vm->vcpu_count),
			   int_or_null(mem, sizeof(mem), vm->memory_mb),
			   vm->metadata, vm->owner_worker, vm->error};
	rc = aeth__store_exec(s, "inserting a vm",
		"INSERT INTO vms (id, name, orchestrator, status, kernel_path, "
		"rootfs_path, socket_path, vcpu_count, memory_mb, metadata, "
		"owner_worker, error, created_at, updated_at, started_at) "
		"VALUES ($1, $2, $3, $4::text, $5, $6, $7, $8, $9, $10, $11, $12, "
		AETH__NOW ", " AETH__NOW ", CASE WHEN $4::text = 'running' THEN "
		AETH__NOW " END) RETURNING " AETH__MS("created_at"),
		(int)AETH__ARRAY_LEN(p), p, &r);
	if (rc == AETH_EEXISTS)
		return aeth__error_set(rc, "vm %s already exists", vm->id);
	if (rc != 0)
		return rc;
	vm->created_at_ms = aeth__row_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

static int vm_from_row(const PGresult *r, int row, aeth_store_vm **out)
{
	aeth_store_vm *vm = calloc(1, sizeof(*vm));

	*out = NULL;
	if (!vm)
		return aeth__error_oom();
	aeth__row_id(r, row, 0, vm->id);
	vm->vcpu_count = aeth__row_int(r, row, 7);
	vm->memory_mb = aeth__row_int(r, row, 8);
	vm->created_at_ms = aeth__row_i64(r, row, 9);
	vm->started_at_ms = aeth__row_i64(r, row, 10);
	vm->stopped_at_ms = aeth__row_i64(r, row, 11);
	vm->updated_at_ms = aeth__row_i64(r, row, 12);
	if (aeth__row_str(r, row, 1, &vm->name) ||
	    aeth__row_str(r, row, 2, &vm->orchestrator) ||
	    aeth__row_str(r, row, 3, &vm->status) ||
	    aeth__row_str(r, row, 4, &vm->kernel_path) ||
	    aeth__row_str(r, row, 5, &vm->rootfs_path) ||
	    aeth__row_str(r, row, 6, &vm->socket_path) ||
	    aeth__row_str(r, row, 13, &vm->metadata) ||
	    aeth__row_str(r, row, 14, &vm->owner_worker) ||
	    aeth__row_str(r, row, 15, &vm->error)) {
		aeth_store_vm_free(vm);
		return AETH_ENOMEM;
	}
	*out = vm;
	return 0;
}

int aeth_store_vm_get(aeth_store *s, const char *id, aeth_store_vm **out)
{
	const char *p[] = {id};
	PGresult *r;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_store_vm_get: out is NULL");
	*out = NULL;
	if ((rc = aeth__store_check_id("vm", id)) ||
	    (rc = aeth__store_exec(s, "reading a vm",
				   "SELECT " VM_COLS " FROM vms WHERE id = $1",
				   1, p, &r)))
		return rc;
	rc = PQntuples(r) == 1 ? vm_from_row(r, 0, out)
			       : aeth__error_set(AETH_ENOTFOUND, "vm %s not found", id);
	PQclear(r);
	return rc;
}

int aeth_store_vm_set_status(aeth_store *s, const char *id, const char *status,
			     const char *error)
{
	const char *p[] = {id, status, error};
	int rc;

	if ((rc = aeth__store_check_status("vm", status, aeth__vm_statuses)) ||
	    (rc = aeth__store_check_text("vm error", error, 0, false)))
		return rc;
	return aeth__store_update_one(s, "vm", id,
		"UPDATE vms SET status = $2::text, error = $3, updated_at = " AETH__NOW ", "
		"started_at = CASE WHEN $2::text = 'running' THEN " AETH__NOW
		" ELSE started_at END, "
		"stopped_at = CASE WHEN $2::text IN ('stopped', 'failed') THEN " AETH__NOW
		" WHEN $2::text = 'deleted' THEN coalesce(stopped_at, " AETH__NOW ") "
		" ELSE stopped_at END WHERE id = $1", 3, p);
}

int aeth_store_vm_set_owner(aeth_store *s, const char *id, const char *worker)
{
	const char *p[] = {id, worker};
	int rc;

	if ((rc = aeth__store_check_text("vm owner_worker", worker, 255, false)))
		return rc;
	return aeth__store_update_one(s, "vm", id,
		"UPDATE vms SET owner_worker = $2, updated_at = " AETH__NOW
		" WHERE id = $1", 2, p);
}

int aeth_store_vm_update(aeth_store *s, const aeth_store_vm *vm)
{
	char vcpus[16], mem[16];
	int rc;

	if (!vm)
		return aeth__error_set(AETH_EINVALID, "vm record is NULL");
	if ((rc = check_vm(vm)))
		return rc;
	const char *p[] = {vm->id, vm->name, vm->orchestrator, vm->kernel_path,
			   vm->rootfs_path, vm->socket_path,
			   int_or_null(vcpus, sizeof(vcpus), vm->vcpu_count),
			   int_or_null(mem, sizeof(mem), vm->memory_mb),
			   vm->metadata, vm->owner_worker};
	return aeth__store_update_one(s, "vm", vm->id,
		"UPDATE vms SET name = $2, orchestrator = $3, kernel_path = $4, "
		"rootfs_path = $5, socket_path = $6, vcpu_count = $7, "
		"memory_mb = $8, metadata = $9, owner_worker = $10, "
		"updated_at = " AETH__NOW " WHERE id = $1",
		(int)AETH__ARRAY_LEN(p), p);
}

int aeth_store_vm_list(aeth_store *s, const aeth_store_filter *f,
		       aeth_store_vm ***out, size_t *count)
{
	char limit[16];
	aeth_store_vm **list;
	PGresult *r;
	int rc, n;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_store_vm_list: out is NULL");
	*out = NULL;
	if (count)
		*count = 0;
	if (f && f->status &&
	    (rc = aeth__store_check_status("vm", f->status, aeth__vm_statuses)))
		return rc;
	snprintf(limit, sizeof(limit), "%u", aeth__store_limit(f));
	const char *p[] = {f ? f->status : NULL, f ? f->worker : NULL, limit};
	rc = aeth__store_exec(s, "listing vms",
		"SELECT " VM_COLS " FROM vms WHERE ($1::text IS NULL OR status = $1)"
		" AND ($2::text IS NULL OR owner_worker = $2)"
		" ORDER BY created_at DESC, id LIMIT $3::int", 3, p, &r);
	if (rc != 0)
		return rc;
	n = PQntuples(r);
	if (!(list = calloc((size_t)n + 1, sizeof(*list)))) {
		PQclear(r);
		return aeth__error_oom();
	}
	for (int i = 0; i < n; i++)
		if ((rc = vm_from_row(r, i, &list[i])) != 0) {
			aeth_store_vm_list_free(list);
			PQclear(r);
			return rc;
		}
	PQclear(r);
	*out = list;
	if (count)
		*count = (size_t)n;
	return 0;
}

void aeth_store_vm_free(aeth_store_vm *vm)
{
	if (!vm)
		return;
	free(vm->name);
	free(vm->orchestrator);
	free(vm->status);
	free(vm->kernel_path);
	free(vm->rootfs_path);
	free(vm->socket_path);
	free(vm->metadata);
	free(vm->owner_worker);
	free(vm->error);
	free(vm);
}

void aeth_store_vm_list_free(aeth_store_vm **list)
{
	if (!list)
		return;
	for (aeth_store_vm **v = list; *v; v++)
		aeth_store_vm_free(*v);
	free(list);
}
