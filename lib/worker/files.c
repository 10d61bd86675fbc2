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

int aeth__handle_file_put(aeth_task *t, void *userdata)
{
	const char *type = AETH__TASK_FILE_PUT, *payload = aeth_task_payload(t);
	aeth__file_payload p;
	aeth__vmref *ref = NULL;
	uint64_t size = 0;
	unsigned int mode = 0;
	char *result, tenant[65] = "";
	int rc;

	(void)userdata;
	if (aeth__file_put_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	if ((rc = aeth__take_vm(t, p.vm_id, false, false, &ref, tenant)) != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	aeth__worker_say(t->slot->w, t->qt->id, "Writing %zu bytes to %s in VM %s",
			 p.len, p.path, p.vm_id);
	rc = path_kind(t, type, ref->vm, p.path, false, &size, &mode);
	if (rc == 0 && (rc = aeth_vm_file_put(ref->vm, p.path, p.data, p.len,
					      p.mode)) != 0)
		rc = fail_call(t, type, rc, p.path);
	aeth__vm_release(t->slot->w, ref, false);
	if (rc != 0)
		goto out;
	result = aeth__file_put_result(p.vm_id, p.path, p.len, p.mode);
	rc = result ? aeth_task_set_result(t, result) : AETH_ENOMEM;
	free(result);
out:
	aeth__file_payload_clear(&p);
	return rc;
}

int aeth__handle_file_get(aeth_task *t, void *userdata)
{
	const char *type = AETH__TASK_FILE_GET, *payload = aeth_task_payload(t);
	aeth__file_payload p;
	aeth__vmref *ref = NULL;
	unsigned int mode = 0;
	uint64_t size = 0;
	void *data = NULL;
	size_t len = 0;
	char *result, tenant[65] = "";
	int rc;

	(void)userdata;
	if (aeth__file_get_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	if ((rc = aeth__take_vm(t, p.vm_id, false, false, &ref, tenant)) != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	rc = path_kind(t, type, ref->vm, p.path, true, &size, &mode);
	if (rc == 0 && size > AETH__FILE_MAX)
		rc = fail_call(t, type, AETH_ETOOBIG, p.path);
	if (rc == 0 && (rc = aeth_vm_file_get(&data, &len, ref->vm, p.path,
					      AETH__FILE_MAX)) != 0)
		rc = fail_call(t, type, rc, p.path);
	aeth__vm_release(t->slot->w, ref, false);
	if (rc != 0)
		goto out;
	aeth__worker_say(t->slot->w, t->qt->id, "Read %zu bytes of %s in VM %s",
			 len, p.path, p.vm_id);
	result = aeth__file_get_result(p.vm_id, p.path, data, len, mode);
	rc = result ? aeth_task_set_result(t, result) : AETH_ENOMEM;
	free(result);
out:
	aeth_free(data);
	aeth__file_payload_clear(&p);
	return rc;
}
