/* lib/store/vms.c - rows of the vms table. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"

#define COL(sql, kind, field) \
	{sql, AETH__COL_##kind, offsetof(aeth_store_vm, field)}

static const aeth__col vm_cols[] = {
	COL("id", ID, id),
	COL("name", STR, name),
	COL("orchestrator", STR, orchestrator),
	COL("status", STR, status),
	COL("kernel_path", STR, kernel_path),
	COL("rootfs_path", STR, rootfs_path),
	COL("socket_path", STR, socket_path),
	COL("vcpu_count", INT, vcpu_count),
	COL("memory_mb", INT, memory_mb),
	COL(AETH__MS("created_at"), I64, created_at_ms),
	COL(AETH__MS("started_at"), I64, started_at_ms),
	COL(AETH__MS("stopped_at"), I64, stopped_at_ms),
	COL(AETH__MS("updated_at"), I64, updated_at_ms),
	COL("metadata", STR, metadata),
	COL("owner_worker", STR, owner_worker),
	COL("error", STR, error),
};

static const aeth__filter_col vm_filters[] = {
	AETH__FILTER(status, "status", aeth__vm_statuses, NULL),
	AETH__FILTER(worker, "owner_worker", NULL, NULL),
};

static const aeth__table vm_table = {
	"vms", "vm", sizeof(aeth_store_vm), AETH_STORE_VM_VERSION,
	vm_cols, AETH__ARRAY_LEN(vm_cols),
	vm_filters, AETH__ARRAY_LEN(vm_filters),
	"created_at DESC, id",
};

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

static const aeth_store_vm vm_defaults = AETH_STORE_VM_INIT;
static const size_t vm_sizes[] = {sizeof(aeth_store_vm)};
static const aeth__versioned vm_v = {
	"aeth_store_vm", "AETH_STORE_VM_INIT", AETH_STORE_VM_VERSION, vm_sizes,
	&vm_defaults,
};

int aeth_store_vm_init(aeth_store_vm *vm, unsigned int version)
{
	return aeth__versioned_init(&vm_v, vm, version);
}

static int vm_insert(aeth_store *s, aeth_store_vm *vm);

/* On a current copy of the caller's record; what insert fills in goes
 * back (fields every version has). */
int aeth_store_vm_insert(aeth_store *s, aeth_store_vm *vm)
{
	aeth_store_vm cur;
	int rc;

	if (!vm)
		return aeth__error_set(AETH_EINVALID, "vm record is NULL");
	if ((rc = aeth__versioned_copy(&vm_v, &cur, vm)) != 0)
		return rc;
	rc = vm_insert(s, &cur);
	memcpy(vm->id, cur.id, sizeof(vm->id));
	vm->created_at_ms = cur.created_at_ms;
	return rc;
}

static int vm_insert(aeth_store *s, aeth_store_vm *vm)
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

int aeth_store_vm_get(aeth_store_vm **out, aeth_store *s, const char *id)
{
	return aeth__store_get(s, &vm_table, id, (void **)out);
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

int aeth__store_vm_take(aeth_store *s, const char *id, const char *from,
			const char *to)
{
	const char *p[] = {id, from, to};
	int rc;

	if ((rc = aeth__store_check_text("vm owner_worker", to, 255, false)))
		return rc;
	rc = aeth__store_update_one(s, "vm", id,
		"UPDATE vms SET owner_worker = $3, updated_at = " AETH__NOW
		" WHERE id = $1 AND owner_worker = $2", 3, p);
	if (rc == AETH_ENOTFOUND)
		rc = aeth__error_set(AETH_EBUSY, "VM %s is no longer owned by %s "
				     "(another worker took it, or it is gone)", id,
				     from);
	return rc;
}

int aeth__store_vm_fail_owned(aeth_store *s, const char *id, const char *owner,
			      const char *error)
{
	const char *p[] = {id, owner, error};
	int rc;

	if ((rc = aeth__store_check_text("vm error", error, 0, false)))
		return rc;
	rc = aeth__store_update_one(s, "vm", id,
		"UPDATE vms SET status = 'failed', error = $3, updated_at = " AETH__NOW
		", stopped_at = " AETH__NOW " WHERE id = $1 AND owner_worker = $2 "
		"AND status IN ('creating', 'running')", 3, p);
	if (rc == AETH_ENOTFOUND)
		rc = aeth__error_set(AETH_EBUSY, "VM %s is no longer a live VM of %s "
				     "(its worker came back, or it ended)", id, owner);
	return rc;
}

static int vm_update(aeth_store *s, const aeth_store_vm *vm);

int aeth_store_vm_update(aeth_store *s, const aeth_store_vm *vm)
{
	aeth_store_vm cur;
	int rc;

	if (!vm)
		return aeth__error_set(AETH_EINVALID, "vm record is NULL");
	if ((rc = aeth__versioned_copy(&vm_v, &cur, vm)) != 0)
		return rc;
	return vm_update(s, &cur);
}

static int vm_update(aeth_store *s, const aeth_store_vm *vm)
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

int aeth_store_vm_list(aeth_store_vm ***out, size_t *count, aeth_store *s,
		       const aeth_store_filter *f)
{
	return aeth__store_list(s, &vm_table, f, (void ***)out, count);
}

void aeth_store_vm_free(aeth_store_vm *vm)
{
	aeth__record_free(&vm_table, vm);
}

void aeth_store_vm_list_free(aeth_store_vm **list)
{
	aeth__record_list_free(&vm_table, (void **)list);
}
