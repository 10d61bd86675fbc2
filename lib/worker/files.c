/*
 * lib/worker/files.c - vm:file_put and vm:file_get: a file's bytes into or
 * out of a VM of this worker, through the guest agent's file calls
 * (aetherium/exec.h). The VM is checked like vm:execute's (aeth__take_vm:
 * it runs, it is ours, it is the task's tenant's), and is shared with
 * running commands, not taken exclusively.
 *
 * A failure the request caused (no such file, a directory, too large)
 * fails the task for good with "TYPE: CODE: words" (aeth__file_error_code(),
 * task.h), so the gateway can answer 404 / 409 / 413 without reading the
 * words; a failure of the guest or the host keeps its retry rule.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aetherium/exec.h"
#include "task/task.h"
#include "worker/worker_internal.h"

static int fail_code(aeth_task *t, const char *type, const char *code,
		     const char *fmt, ...) AETH__PRINTF(4, 5);

static int fail_code(aeth_task *t, const char *type, const char *code,
		     const char *fmt, ...)
{
	char msg[1024], words[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(words, sizeof(words), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s: %s: %s", type, code, words);
	return aeth_task_fail(t, 0, msg);
}

/* A failed call of the agent: the request's fault gets its code, others
 * keep the library's words and retry rule. */
static int fail_call(aeth_task *t, const char *type, int rc, const char *path)
{
	char msg[1024];

	if (rc == AETH_ENOTFOUND)
		return fail_code(t, type, "not_found", "%s: %s", path,
				 aeth_error_last());
	if (rc == AETH_ETOOBIG)
		return fail_code(t, type, "too_large", "%s is larger than %d bytes "
				 "(the limit of a file through the queue)", path,
				 AETH__FILE_MAX);
	if (rc == AETH_EINVALID)
		return fail_code(t, type, "invalid_argument", "%s: %s", path,
				 aeth_error_last());
	snprintf(msg, sizeof(msg), "%s: %s: %s", type, path, aeth_error_last());
	return aeth_task_fail(t, rc != AETH_ESTATE, msg);
}

/*
 * What is at `path` that a put or get would refuse: 0 (nothing there, a
 * regular file, a symlink: the agent's own call decides), else the task
 * failed. *size and *mode_out get its size and st_mode.
 */
static int path_kind(aeth_task *t, const char *type, aeth_vm *vm,
		     const char *path, bool must_exist, uint64_t *size,
		     unsigned int *mode_out)
{
	unsigned int mode = 0;
	int rc = aeth_vm_file_stat(&mode, size, vm, path);

	if (rc == AETH_ENOTFOUND && !must_exist) {
		aeth_error_clear();
		return 0;
	}
	if (rc != 0)
		return fail_call(t, type, rc, path);
	if (S_ISDIR(mode))
		return fail_code(t, type, "is_a_directory", "%s is a directory in "
				 "VM %s", path, aeth_vm_id(vm));
	if (!S_ISREG(mode) && !S_ISLNK(mode))
		return fail_code(t, type, "not_a_file", "%s in VM %s is not a "
				 "regular file (mode %06o)", path, aeth_vm_id(vm),
				 mode);
	*mode_out = mode;
	return 0;
}

/* Write the payload's bytes: 0 and *result, or the task failed. */
static int do_put(aeth_task *t, aeth_vm *vm, const aeth__file_payload *p,
		  char **result)
{
	const char *type = AETH__TASK_FILE_PUT;
	unsigned int mode = 0;
	uint64_t size = 0;
	int rc;

	aeth__worker_say(t->slot->w, t->qt->id, "Writing %zu bytes to %s in VM %s",
			 p->len, p->path, p->vm_id);
	if ((rc = path_kind(t, type, vm, p->path, false, &size, &mode)) != 0)
		return rc;
	if ((rc = aeth_vm_file_put(vm, p->path, p->data, p->len, p->mode)) != 0)
		return fail_call(t, type, rc, p->path);
	*result = aeth__file_put_result(p->vm_id, p->path, p->len, p->mode);
	return *result ? 0 : AETH_ENOMEM;
}

/* Read the file: 0 and *result (its bytes in base64), or the task failed. */
static int do_get(aeth_task *t, aeth_vm *vm, const aeth__file_payload *p,
		  char **result)
{
	const char *type = AETH__TASK_FILE_GET;
	unsigned int mode = 0;
	uint64_t size = 0;
	void *data = NULL;
	size_t len = 0;
	int rc;

	if ((rc = path_kind(t, type, vm, p->path, true, &size, &mode)) != 0)
		return rc;
	if (size > AETH__FILE_MAX)
		return fail_call(t, type, AETH_ETOOBIG, p->path);
	if ((rc = aeth_vm_file_get(&data, &len, vm, p->path, AETH__FILE_MAX)) != 0)
		return fail_call(t, type, rc, p->path);
	aeth__worker_say(t->slot->w, t->qt->id, "Read %zu bytes of %s in VM %s",
			 len, p->path, p->vm_id);
	*result = aeth__file_get_result(p->vm_id, p->path, data, len, mode);
	aeth_free(data);
	return *result ? 0 : AETH_ENOMEM;
}

static int handle_file(aeth_task *t, bool put)
{
	const char *payload = aeth_task_payload(t);
	aeth__file_payload p;
	aeth__vmref *ref = NULL;
	char *result = NULL, tenant[65] = "";
	int rc;

	rc = put ? aeth__file_put_payload_parse(payload, strlen(payload), &p)
		 : aeth__file_get_payload_parse(payload, strlen(payload), &p);
	if (rc != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	if ((rc = aeth__take_vm(t, p.vm_id, false, false, &ref, tenant)) != 0) {
		rc = rc > 0 ? 0 : rc; /* 1: forwarded to the owner */
		goto out;
	}
	rc = put ? do_put(t, ref->vm, &p, &result) : do_get(t, ref->vm, &p, &result);
	aeth__vm_release(t->slot->w, ref, false);
	if (rc == 0)
		rc = aeth_task_set_result(t, result);
	free(result);
out:
	aeth__file_payload_clear(&p);
	return rc;
}

int aeth__handle_file_put(aeth_task *t, void *userdata)
{
	(void)userdata;
	return handle_file(t, true);
}

int aeth__handle_file_get(aeth_task *t, void *userdata)
{
	(void)userdata;
	return handle_file(t, false);
}
