/*
 * lib/task/types.c - the one rule for task type names, which the queue
 * (enqueue), the worker (aeth_worker_handle) and the submit client all
 * apply, so that a worker cannot register a type no client can submit.
 */
#include <string.h>

#include "aetherium/task.h"
#include "internal.h"
#include "task/task.h"

#define TYPE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
	"0123456789_:.-"

int aeth_task_type_valid(const char *type)
{
	size_t n = type ? strspn(type, TYPE_CHARS) : 0;

	return n > 0 && n <= AETH__TASK_TYPE_MAX && type[n] == '\0';
}

int aeth__task_type_check(const char *type)
{
	if (aeth_task_type_valid(type))
		return 0;
	return aeth__error_set(AETH_EINVALID, "task type \"%.*s\" is not valid: "
			       "1 to %d characters of A-Z a-z 0-9 _ : . - (e.g. "
			       "\"vm:create\", \"app:build\")", AETH__TASK_TYPE_MAX,
			       type ? type : "", AETH__TASK_TYPE_MAX);
}
