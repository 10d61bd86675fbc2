/*
 * lib/task/result.c - the result JSON of the seed's task types, and the
 * payloads the submit client sends. Command output is arbitrary bytes but
 * JSON strings (and PostgreSQL's JSONB) need UTF-8 without NUL, so invalid
 * sequences become U+FFFD instead of making the whole result unstorable.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "task/task.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] >= 0x01 && s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

char *aeth__utf8_sanitize(const char *s, size_t len)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *u = (const unsigned char *)s;
	aeth__buf b = AETH__BUF_INIT;

	if (aeth__buf_append(&b, "", 0) != 0)
		return NULL;
	for (size_t i = 0; s && i < len;) {
		size_t n = utf8_seq(u + i, len - i);
		int rc;

		if (n == 0) {
			rc = aeth__buf_append(&b, repl, 3);
			n = 1;
		} else {
			rc = aeth__buf_append(&b, s + i, n);
		}
		if (rc != 0) {
			aeth__buf_free(&b);
			return NULL;
		}
		i += n;
	}
	return aeth__buf_detach(&b, NULL);
}

/* Print and free `o`; NULL (with AETH_ENOMEM set) if anything failed. */
static char *finish(cJSON *o, bool ok)
{
	char *s = NULL;

	if (ok && o)
		s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		aeth__error_oom();
	return s;
}

static bool add_str(cJSON *o, const char *k, const char *v)
{
	return cJSON_AddStringToObject(o, k, v ? v : "") != NULL;
}

static bool add_bytes(cJSON *o, const char *k, const char *v, size_t len)
{
	char *clean = aeth__utf8_sanitize(v, len);
	bool ok = clean && add_str(o, k, clean);

	free(clean);
	return ok;
}

char *aeth__create_result(const char *vm_id, const char *name,
			  const char *origin, int64_t ready_ms)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o && add_str(o, "vm_id", vm_id) && add_str(o, "name", name) &&
		  add_str(o, "status", "running") && add_str(o, "origin", origin) &&
		  cJSON_AddNumberToObject(o, "ready_ms", (double)ready_ms);

	return finish(o, ok);
}

/* Whether aeth__utf8_sanitize() would keep `s` as it is. */
static bool utf8_lossless(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0, n; s && i < len; i += n)
		if ((n = utf8_seq(u + i, len - i)) == 0)
			return false;
	return true;
}

char *aeth__base64_if_lossy(const char *v, size_t len, bool *oom)
{
	char *b;

	*oom = false;
	if (utf8_lossless(v, len))
		return NULL;
	if (!(b = aeth__base64(v, len)))
		*oom = true;
	return b;
}

/* `k` = the bytes in base64 when the plain field could not hold them as
 * they are; true if nothing was needed or it was added. */
static bool add_b64(cJSON *o, const char *k, const char *v, size_t len)
{
	bool oom;
	char *b = aeth__base64_if_lossy(v, len, &oom);
	bool ok = !oom && (!b || add_str(o, k, b));

	free(b);
	return ok;
}

char *aeth__execute_result(const char *vm_id, const aeth__exec_fields *f)
{
	cJSON *o = cJSON_CreateObject();
	/* the seed's four fields first, as they were */
	bool ok = o && add_str(o, "vm_id", vm_id) &&
		  cJSON_AddNumberToObject(o, "exit_code", f->exit_code) &&
		  add_bytes(o, "stdout", f->out, f->out_len) &&
		  add_bytes(o, "stderr", f->err, f->err_len) &&
		  cJSON_AddBoolToObject(o, "stdout_truncated", f->out_truncated) &&
		  cJSON_AddBoolToObject(o, "stderr_truncated", f->err_truncated) &&
		  cJSON_AddBoolToObject(o, "timed_out", f->timed_out) &&
		  (f->signal ? cJSON_AddNumberToObject(o, "signal", f->signal) != NULL
			     : cJSON_AddNullToObject(o, "signal") != NULL) &&
		  cJSON_AddNumberToObject(o, "duration_ms",
					  (double)f->duration_ms) &&
		  add_b64(o, "stdout_b64", f->out, f->out_len) &&
		  add_b64(o, "stderr_b64", f->err, f->err_len);

	return finish(o, ok);
}

char *aeth__delete_result(const char *vm_id)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o && add_str(o, "vm_id", vm_id) && add_str(o, "status", "deleted");

	return finish(o, ok);
}

/* {vm_id, path, size, mode} and, for a get, "data". */
static char *file_result(const char *vm_id, const char *path, size_t size,
			 unsigned int mode, const void *data)
{
	cJSON *o = cJSON_CreateObject();
	char *b = data ? aeth__base64(data, size) : NULL;
	bool ok = o && (!data || b) && add_str(o, "vm_id", vm_id) &&
		  add_str(o, "path", path) &&
		  cJSON_AddNumberToObject(o, "size", (double)size) &&
		  cJSON_AddNumberToObject(o, "mode", mode & 07777u) &&
		  (!data || add_str(o, "data", b));

	free(b);
	return finish(o, ok);
}

char *aeth__file_put_result(const char *vm_id, const char *path, size_t size,
			    unsigned int mode)
{
	return file_result(vm_id, path, size, mode, NULL);
}

char *aeth__file_get_result(const char *vm_id, const char *path,
			    const void *data, size_t size, unsigned int mode)
{
	return file_result(vm_id, path, size, mode, data ? data : "");
}

const char *aeth__file_error_code(const char *msg)
{
	static const char *const types[] = {AETH__TASK_FILE_PUT,
					    AETH__TASK_FILE_GET};
	static const char *const codes[] = {"not_found", "is_a_directory",
					    "not_a_file", "too_large",
					    "invalid_argument"};
	const char *p = NULL;

	for (size_t i = 0; msg && !p && i < AETH__ARRAY_LEN(types); i++) {
		size_t n = strlen(types[i]);

		if (!strncmp(msg, types[i], n) && !strncmp(msg + n, ": ", 2))
			p = msg + n + 2;
	}
	for (size_t i = 0; p && i < AETH__ARRAY_LEN(codes); i++) {
		size_t n = strlen(codes[i]);

		if (!strncmp(p, codes[i], n) && !strncmp(p + n, ": ", 2))
			return codes[i];
	}
	return NULL;
}

/* `o` if ok, else NULL (o freed, AETH_ENOMEM set). */
static cJSON *tree(cJSON *o, bool ok)
{
	if (ok && o)
		return o;
	cJSON_Delete(o);
	aeth__error_oom();
	return NULL;
}

cJSON *aeth__execute_payload_tree(const char *vm_id, const char *command,
				  const char *const *args)
{
	cJSON *o = cJSON_CreateObject();
	/* the seed's field order: vm_id, command, args */
	bool ok = o && add_str(o, "vm_id", vm_id) && add_str(o, "command", command);
	cJSON *a = ok ? cJSON_AddArrayToObject(o, "args") : NULL;

	ok = ok && a;
	for (size_t i = 0; ok && args && args[i]; i++) {
		cJSON *s = cJSON_CreateString(args[i]);

		ok = s && cJSON_AddItemToArray(a, s);
	}
	return tree(o, ok);
}

cJSON *aeth__delete_payload_tree(const char *vm_id)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o && add_str(o, "vm_id", vm_id);

	return tree(o, ok);
}
