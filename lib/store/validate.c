/*
 * lib/store/validate.c - checks done before a value reaches PostgreSQL, so
 * that the message names the field and the limit rather than a SQLSTATE.
 */
#include <stdio.h>
#include <string.h>
#include <cJSON.h>

#include "internal.h"
#include "store/sql.h"

const char *const aeth__vm_statuses[] = {"creating", "running", "stopped",
					 "failed", "deleted", NULL};
const char *const aeth__task_statuses[] = {"pending", "running", "completed",
					   "failed", "retrying", "dead", NULL};

const char *aeth__store_nz(const char *s)
{
	return s && *s ? s : NULL;
}

/* Length in characters (PostgreSQL's VARCHAR(n) counts characters). */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

int aeth__store_check_text(const char *field, const char *v, size_t max,
			   bool required)
{
	if (!v || (!*v && required)) {
		if (required)
			return aeth__error_set(AETH_EINVALID, "%s is required",
					       field);
		return 0;
	}
	if (strlen(v) > AETH__STORE_MAX_TEXT)
		return aeth__error_set(AETH_EINVALID,
				       "%s is %zu bytes, more than the limit of %u",
				       field, strlen(v), AETH__STORE_MAX_TEXT);
	if (max && utf8_chars(v) > max)
		return aeth__error_set(AETH_EINVALID,
				       "%s is %zu characters long, more than the "
				       "limit of %zu", field, utf8_chars(v), max);
	return 0;
}

int aeth__store_check_json(const char *field, const char *v, bool required)
{
	const char *end = NULL;
	cJSON *j;
	int rc;

	if ((rc = aeth__store_check_text(field, v, 0, required)) != 0 || !v)
		return rc;
	j = cJSON_ParseWithOpts(v, &end, 1);
	if (!j) {
		size_t at = end ? (size_t)(end - v) : 0;

		if (!end && cJSON_GetErrorPtr())
			at = (size_t)(cJSON_GetErrorPtr() - v);
		return aeth__error_set(AETH_EINVALID,
				       "%s is not valid JSON (error near byte "
				       "%zu: '%.20s')", field, at,
				       at < strlen(v) ? v + at : "");
	}
	cJSON_Delete(j);
	return 0;
}

int aeth__store_check_uuid(const char *field, const char *v)
{
	if (v && *v && !aeth__uuid_valid(v))
		return aeth__error_set(AETH_EINVALID,
				       "%s '%.40s' is not a UUID", field, v);
	return 0;
}

int aeth__store_check_ref(const char *kind, const char *id)
{
	if (id && *id && !aeth__uuid_valid(id))
		return aeth__error_set(AETH_ENOTFOUND,
				       "%s %.40s not found (not a UUID)", kind, id);
	return 0;
}

int aeth__store_check_id(const char *kind, const char *id)
{
	if (!id || !*id)
		return aeth__error_set(AETH_EINVALID, "%s id is required", kind);
	if (!aeth__uuid_valid(id))
		return aeth__error_set(AETH_ENOTFOUND,
				       "%s %.40s not found (not a UUID)", kind, id);
	return 0;
}

int aeth__store_check_status(const char *kind, const char *status,
			     const char *const *allowed)
{
	char list[128] = "";
	size_t n = 0;

	if (status)
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, status) == 0)
				return 0;
	for (const char *const *a = allowed; *a && n < sizeof(list); a++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      n ? "|" : "", *a);
	return aeth__error_set(AETH_EINVALID, "%s status '%.40s': expected %s",
			       kind, status ? status : "(null)", list);
}
