/*
 * lib/task/payload.c - parse and validate the seed's task payloads.
 *
 * Like the seed's Go structs, unknown fields are ignored (so newer
 * submitters can add fields), but every known field must have the right
 * JSON type and range: a wrong one is an error naming the field, never a
 * silent default.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "aetherium/task.h"
#include "internal.h"
#include "task/task.h"

static bool file_type(const char *type)
{
	return type && (!strcmp(type, AETH__TASK_FILE_PUT) ||
			!strcmp(type, AETH__TASK_FILE_GET));
}

/* The longest payload of `type`: a file's carries its bytes. */
static size_t payload_max(const char *type)
{
	return file_type(type) ? AETH__FILE_PAYLOAD_MAX : AETH__PAYLOAD_MAX;
}

/*
 * Does a JSON string in `json` hold the escape \u0000? cJSON decodes it
 * to a NUL byte and the C string it gives ends there, so "/a\u0000b"
 * would silently become "/a": the text is the only place to see it.
 * Outside strings a backslash is not JSON, so a scan of escapes is enough.
 */
static bool has_nul_escape(const char *json, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (json[i] != '\\')
			continue;
		if (json[i + 1] == 'u' && i + 5 < len &&
		    !memcmp(json + i + 2, "0000", 4))
			return true;
		i++; /* the escaped character: "\\u0000" is not a NUL */
	}
	return false;
}

/* Parse `json` as one JSON value with nothing but blanks after it. On
 * failure *is_json (may be NULL) says whether the text was JSON at all. */
static int parse_text(const char *type, const char *json, size_t len,
		      cJSON **out, bool *is_json)
{
	const char *end = NULL;
	cJSON *root;

	*out = NULL;
	if (is_json)
		*is_json = false;
	if (!json || len == 0)
		return aeth__error_set(AETH_EINVALID, "%s payload is empty: "
				       "expected a JSON object", type);
	if (len > payload_max(type))
		return aeth__error_set(AETH_ETOOBIG, "%s payload is %zu bytes, "
				       "more than the limit of %zu", type, len,
				       payload_max(type));
	root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (!root) {
		size_t at = end && end >= json ? (size_t)(end - json) : 0;

		return aeth__error_set(AETH_EINVALID, "%s payload is not valid "
				       "JSON (error near byte %zu)", type, at);
	}
	while (end && (size_t)(end - json) < len &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end && (size_t)(end - json) < len && *end != '\0') {
		cJSON_Delete(root);
		return aeth__error_set(AETH_EINVALID, "%s payload has trailing "
				       "data after the JSON object (byte %zu)", type,
				       (size_t)(end - json));
	}
	if (is_json)
		*is_json = true;
	if (file_type(type) && has_nul_escape(json, len)) {
		cJSON_Delete(root);
		return aeth__error_set(AETH_EINVALID, "%s payload: a string holds a "
				       "NUL character (\\u0000): a guest path "
				       "cannot", type);
	}
	*out = root;
	return 0;
}

static int need_object(const char *type, const cJSON *root)
{
	if (!cJSON_IsObject(root))
		return aeth__error_set(AETH_EINVALID, "%s payload must be a JSON "
				       "object, like {\"vm_id\": \"...\"}", type);
	return 0;
}

/* Parse `json` as one object with nothing but blanks after it. */
static int parse_object(const char *type, const char *json, size_t len,
			cJSON **out)
{
	int rc = parse_text(type, json, len, out, NULL);

	if (rc == 0 && (rc = need_object(type, *out)) != 0) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return rc;
}

/* A string field: required or optional; max_len 0 = no limit. */
static int get_string(const char *type, cJSON *obj, const char *field,
		      bool required, size_t max_len, char **out)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);

	*out = NULL;
	if (!it || cJSON_IsNull(it)) {
		if (required)
			return aeth__error_set(AETH_EINVALID, "%s payload: \"%s\" is "
					       "missing", type, field);
		return 0;
	}
	if (!cJSON_IsString(it) || !it->valuestring)
		return aeth__error_set(AETH_EINVALID, "%s payload: \"%s\" must be a "
				       "string", type, field);
	if (required && it->valuestring[0] == '\0')
		return aeth__error_set(AETH_EINVALID, "%s payload: \"%s\" is empty",
				       type, field);
	if (max_len && strlen(it->valuestring) > max_len)
		return aeth__error_set(AETH_ETOOBIG, "%s payload: \"%s\" is longer "
				       "than %zu bytes", type, field, max_len);
	*out = strdup(it->valuestring);
	return *out ? 0 : aeth__error_oom();
}

/* An optional non-negative integer field within [min, max]; absent = 0. */
static int get_uint(const char *type, cJSON *obj, const char *field,
		    double min, double max, unsigned int *out)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);
	double v;

	*out = 0;
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsNumber(it))
		return aeth__error_set(AETH_EINVALID, "%s payload: \"%s\" must be a "
				       "number", type, field);
	v = it->valuedouble;
	if (!isfinite(v) || floor(v) != v || v < min || v > max)
		return aeth__error_set(AETH_EINVALID, "%s payload: \"%s\" must be a "
				       "whole number from %.0f to %.0f, not %g", type,
				       field, min, max, v);
	*out = (unsigned int)v;
	return 0;
}

static int get_vm_id(const char *type, cJSON *obj, char **out)
{
	int rc = get_string(type, obj, "vm_id", true, 64, out);

	if (rc == 0 && !aeth__uuid_valid(*out)) {
		rc = aeth__error_set(AETH_EINVALID, "%s payload: \"vm_id\" \"%s\" is "
				     "not a VM id (a UUID like "
				     "0b6f3f0e-4a43-4c1e-9d55-3c2f1e0a9b7d)", type, *out);
		free(*out);
		*out = NULL;
	}
	return rc;
}

const char *aeth__create_network_name(const aeth__create_payload *p)
{
	return p->network == AETH__NET_PROFILE ? p->profile :
	       p->network == AETH__NET_TAP ? "tap" : "none";
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned int cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

bool aeth__text_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0 || *p < 0x20 || *p == 0x7f ||
		    (n == 2 && p[0] == 0xc2 && p[1] <= 0x9f) ||
		    (n == 3 && p[0] == 0xe2 &&
		     ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
		      (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))))
			return false;
		p += n;
	}
	return true;
}

/* A string field shown in logs and tables (name, command): clean text. */
static int get_shown(const char *type, cJSON *obj, const char *field,
		     size_t max_len, char **out)
{
	int rc = get_string(type, obj, field, true, max_len, out);

	if (rc == 0 && !aeth__text_clean(*out)) {
		free(*out);
		*out = NULL;
		rc = aeth__error_set(AETH_EINVALID, "%s payload: \"%s\" has control "
				     "characters, bidirectional overrides or bytes "
				     "that are not UTF-8; they would reach logs "
				     "and terminals: use plain text", type, field);
	}
	return rc;
}

/* Letters, digits, '_', '-': a catalogue name (image, profile). */
static bool catalog_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > AETH__CATALOG_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

static bool tap_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* "network": "none" | "tap" (+ "tap": device name) | a profile name. */
static int get_network(const char *t, cJSON *root, aeth__create_payload *p)
{
	char *net = NULL;
	int rc = get_string(t, root, "network", false, 256, &net);

	if (rc != 0)
		return rc;
	if (!net)
		p->network = AETH__NET_UNSET;
	else if (!strcmp(net, "none"))
		p->network = AETH__NET_NONE;
	else if (!strcmp(net, "tap"))
		p->network = AETH__NET_TAP;
	else if (catalog_name_ok(net)) {
		p->network = AETH__NET_PROFILE;
		p->profile = net;
		net = NULL;
	} else
		rc = aeth__error_set(AETH_EINVALID, "%s payload: \"network\" must be "
				     "\"none\" (default), \"tap\" or the name of "
				     "one of the worker's network profiles (letters, "
				     "digits, '_', '-'; \"user\" is built in)", t);
	free(net);
	if (rc != 0)
		return rc;
	if ((rc = get_string(t, root, "tap", false, AETH__TAP_MAX, &p->tap)) != 0)
		return rc;
	if (p->network == AETH__NET_TAP && !p->tap)
		return aeth__error_set(AETH_EINVALID, "%s payload: \"network\": \"tap\" "
				       "needs \"tap\": the name of a tap device the "
				       "worker's network.taps allows", t);
	if (p->tap && p->network != AETH__NET_TAP)
		return aeth__error_set(AETH_EINVALID, "%s payload: \"tap\" is only "
				       "used with \"network\": \"tap\"", t);
	if (p->tap && !tap_name_ok(p->tap))
		return aeth__error_set(AETH_EINVALID, "%s payload: \"tap\" \"%s\" is "
				       "not a network device name (letters, digits, "
				       "'-', '_', '.')", t, p->tap);
	return 0;
}

/* "rootfs": true | false (null = absent). A path is refused: disks come
 * from the worker's image catalogue ("image"). */
static int get_rootfs(const char *t, cJSON *root, aeth__create_payload *p)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "rootfs");

	if (!it || cJSON_IsNull(it))
		return 0;
	if (cJSON_IsBool(it)) {
		p->rootfs = cJSON_IsTrue(it) ? AETH__ROOTFS_ON : AETH__ROOTFS_OFF;
		return 0;
	}
	if (cJSON_IsString(it))
		return aeth__error_set(AETH_EINVALID, "%s payload: \"rootfs\" takes "
				       "true or false, not a path: a VM boots only "
				       "images of the worker's catalogue; name one "
				       "with \"image\" (its operator lists them under "
				       "images: in the worker's configuration)", t);
	return aeth__error_set(AETH_EINVALID, "%s payload: \"rootfs\" must be "
			       "true (the image's root disk) or false", t);
}

static int get_image(const char *t, cJSON *root, aeth__create_payload *p)
{
	int rc = get_string(t, root, "image", false, 256, &p->image);

	if (rc == 0 && p->image && !catalog_name_ok(p->image)) {
		free(p->image);
		p->image = NULL;
		rc = aeth__error_set(AETH_EINVALID, "%s payload: \"image\" must be the "
				     "name of an image of the worker's catalogue "
				     "(letters, digits, '_', '-'), not a path", t);
	}
	return rc;
}

/* The fields of a vm:create payload from its (object) tree. */
static int create_from(const cJSON *croot, aeth__create_payload *out)
{
	const char *t = AETH__TASK_CREATE;
	cJSON *root = (cJSON *)croot; /* cJSON's getters are not const */
	int rc;

	memset(out, 0, sizeof(*out));
	rc = get_shown(t, root, "name", AETH__NAME_MAX, &out->name);
	if (rc == 0)
		rc = get_uint(t, root, "vcpus", 1, AETH__VCPUS_MAX, &out->vcpus);
	if (rc == 0)
		rc = get_uint(t, root, "memory_mb", AETH__MEMORY_MIN,
			      AETH__MEMORY_MAX, &out->memory_mb);
	if (rc == 0)
		rc = get_network(t, root, out);
	if (rc == 0)
		rc = get_rootfs(t, root, out);
	if (rc == 0)
		rc = get_image(t, root, out);
	if (rc == 0)
		rc = get_uint(t, root, "ttl", 1, AETH__TTL_MAX, &out->ttl_s);
	if (rc != 0)
		aeth__create_payload_clear(out);
	return rc;
}

int aeth__create_payload_parse(const char *json, size_t len,
			       aeth__create_payload *out)
{
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(AETH__TASK_CREATE, json, len, &root)) != 0)
		return rc;
	rc = create_from(root, out);
	cJSON_Delete(root);
	return rc;
}

/* "args": an array of strings (absent = none); argv[0] = command. */
static int get_argv(const char *t, cJSON *root, aeth__execute_payload *p)
{
	cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
	int n = 0, i = 1;
	cJSON *a;

	if (args && !cJSON_IsNull(args) && !cJSON_IsArray(args))
		return aeth__error_set(AETH_EINVALID, "%s payload: \"args\" must be "
				       "an array of strings, like [\"-la\", \"/tmp\"]", t);
	if (args && cJSON_IsArray(args))
		n = cJSON_GetArraySize(args);
	if (n > AETH__ARGS_MAX)
		return aeth__error_set(AETH_ETOOBIG, "%s payload: more than %d "
				       "\"args\"", t, AETH__ARGS_MAX);
	p->argv = calloc((size_t)n + 2, sizeof(char *));
	if (!p->argv)
		return aeth__error_oom();
	if (!(p->argv[0] = strdup(p->command)))
		return aeth__error_oom();
	if (n > 0) {
		cJSON_ArrayForEach(a, args) {
			if (!cJSON_IsString(a) || !a->valuestring)
				return aeth__error_set(AETH_EINVALID, "%s payload: "
						       "\"args\"[%d] must be a string",
						       t, i - 1);
			if (!(p->argv[i++] = strdup(a->valuestring)))
				return aeth__error_oom();
		}
	}
	p->argc = (size_t)i;
	return 0;
}

/* "env": an object of string values, turned into "KEY=VALUE" entries. */
static int get_env(const char *t, cJSON *root, aeth__execute_payload *p)
{
	cJSON *env = cJSON_GetObjectItemCaseSensitive(root, "env");
	int n, i = 0;
	cJSON *e;

	if (!env || cJSON_IsNull(env))
		return 0;
	if (!cJSON_IsObject(env))
		return aeth__error_set(AETH_EINVALID, "%s payload: \"env\" must be an "
				       "object like {\"LANG\": \"C\"}", t);
	n = cJSON_GetArraySize(env);
	if (n > AETH__ENV_MAX)
		return aeth__error_set(AETH_ETOOBIG, "%s payload: more than %d "
				       "\"env\" entries", t, AETH__ENV_MAX);
	p->env = calloc((size_t)n + 1, sizeof(char *));
	if (!p->env)
		return aeth__error_oom();
	cJSON_ArrayForEach(e, env) {
		if (!e->string || !e->string[0] || strchr(e->string, '='))
			return aeth__error_set(AETH_EINVALID, "%s payload: \"env\" has a "
					       "bad variable name \"%s\"", t,
					       e->string ? e->string : "");
		if (!cJSON_IsString(e) || !e->valuestring)
			return aeth__error_set(AETH_EINVALID, "%s payload: \"env\"."
					       "\"%s\" must be a string", t, e->string);
		if (!(p->env[i++] = aeth__sprintf("%s=%s", e->string,
						  e->valuestring)))
			return AETH_ENOMEM;
	}
	return 0;
}

/* The fields of a vm:execute payload from its (object) tree. */
static int execute_from(const cJSON *croot, aeth__execute_payload *out)
{
	const char *t = AETH__TASK_EXECUTE;
	cJSON *root = (cJSON *)croot;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = get_vm_id(t, root, &out->vm_id);
	if (rc == 0)
		rc = get_shown(t, root, "command", AETH__COMMAND_MAX, &out->command);
	if (rc == 0)
		rc = get_argv(t, root, out);
	if (rc == 0)
		rc = get_env(t, root, out);
	if (rc == 0)
		rc = get_string(t, root, "cwd", false, 4096, &out->cwd);
	if (rc == 0 && out->cwd && out->cwd[0] != '/')
		rc = aeth__error_set(AETH_EINVALID, "%s payload: \"cwd\" must be an "
				     "absolute path, not \"%s\"", t, out->cwd);
	if (rc == 0)
		rc = get_uint(t, root, "timeout_ms", 0, AETH__EXEC_TIMEOUT_MAX,
			      &out->timeout_ms);
	if (rc == 0)
		rc = get_string(t, root, "stdin", false, AETH__PAYLOAD_MAX,
				&out->stdin_data);
	if (rc == 0 && out->stdin_data)
		out->stdin_len = strlen(out->stdin_data);
	if (rc == 0) {
		const cJSON *live = cJSON_GetObjectItemCaseSensitive(root,
								     "live_output");

		if (live && !cJSON_IsBool(live))
			rc = aeth__error_set(AETH_EINVALID, "%s payload: "
					     "\"live_output\" must be true or false", t);
		out->live_output = cJSON_IsTrue(live);
	}
	if (rc == 0)
		rc = get_string(t, root, "idempotency_key", false,
				AETH__IDEMPOTENCY_KEY_MAX, &out->idempotency_key);
	if (rc == 0 && out->idempotency_key &&
	    (!out->idempotency_key[0] || !aeth__text_clean(out->idempotency_key)))
		rc = aeth__error_set(AETH_EINVALID, "%s payload: \"idempotency_key\" "
				     "must be 1 to %d printable characters", t,
				     AETH__IDEMPOTENCY_KEY_MAX);
	if (rc != 0)
		aeth__execute_payload_clear(out);
	return rc;
}

int aeth__execute_payload_parse(const char *json, size_t len,
				aeth__execute_payload *out)
{
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(AETH__TASK_EXECUTE, json, len, &root)) != 0)
		return rc;
	rc = execute_from(root, out);
	cJSON_Delete(root);
	return rc;
}

static int delete_from(const cJSON *root, aeth__delete_payload *out)
{
	memset(out, 0, sizeof(*out));
	return get_vm_id(AETH__TASK_DELETE, (cJSON *)root, &out->vm_id);
}

int aeth__delete_payload_parse(const char *json, size_t len,
			       aeth__delete_payload *out)
{
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(AETH__TASK_DELETE, json, len, &root)) != 0)
		return rc;
	rc = delete_from(root, out);
	cJSON_Delete(root);
	return rc;
}

void aeth__create_payload_clear(aeth__create_payload *p)
{
	free(p->name);
	free(p->profile);
	free(p->tap);
	free(p->image);
	memset(p, 0, sizeof(*p));
}

static void free_strv(char **v)
{
	if (v)
		for (char **s = v; *s; s++)
			free(*s);
	free(v);
}

void aeth__execute_payload_clear(aeth__execute_payload *p)
{
	free(p->vm_id);
	free(p->command);
	free_strv(p->argv);
	free_strv(p->env);
	free(p->cwd);
	free(p->stdin_data);
	free(p->idempotency_key);
	memset(p, 0, sizeof(*p));
}

void aeth__delete_payload_clear(aeth__delete_payload *p)
{
	free(p->vm_id);
	memset(p, 0, sizeof(*p));
}

int aeth__guest_path_check(const char *what, const char *path, size_t len)
{
	if (!path || len == 0 || path[0] != '/')
		return aeth__error_set(AETH_EINVALID, "%s must be an absolute path in "
				       "the guest (starting with '/'), not \"%.200s\"",
				       what, path ? path : "");
	if (memchr(path, '\0', len))
		return aeth__error_set(AETH_EINVALID, "%s holds a NUL character: a "
				       "guest path cannot", what);
	if (len > AETH__GUEST_PATH_MAX)
		return aeth__error_set(AETH_ETOOBIG, "%s is longer than %d bytes",
				       what, AETH__GUEST_PATH_MAX);
	if (!aeth__text_clean(path))
		return aeth__error_set(AETH_EINVALID, "%s has control characters, "
				       "bidirectional overrides or bytes that are "
				       "not UTF-8; they would reach logs and "
				       "terminals", what);
	return 0;
}

/* The fields of a vm:file_put (`put`) or vm:file_get payload. */
static int file_from(const cJSON *croot, bool put, aeth__file_payload *out)
{
	const char *t = put ? AETH__TASK_FILE_PUT : AETH__TASK_FILE_GET;
	cJSON *root = (cJSON *)croot, *data, *mode;
	char what[64];
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "%s payload: \"path\"", t);
	rc = get_vm_id(t, root, &out->vm_id);
	if (rc == 0)
		rc = get_string(t, root, "path", true, 0, &out->path);
	if (rc == 0)
		rc = aeth__guest_path_check(what, out->path, strlen(out->path));
	if (rc == 0 && put) {
		rc = get_uint(t, root, "mode", 0, 07777, &out->mode);
		mode = cJSON_GetObjectItemCaseSensitive(root, "mode");
		if (rc == 0 && (!mode || cJSON_IsNull(mode)))
			out->mode = AETH__FILE_MODE_DEFAULT;
	}
	if (rc == 0 && put) {
		data = cJSON_GetObjectItemCaseSensitive(root, "data");
		snprintf(what, sizeof(what), "%s payload: \"data\"", t);
		if (!data)
			rc = aeth__error_set(AETH_EINVALID, "%s is missing (the file's "
					     "bytes in base64; \"\" for an empty "
					     "file)", what);
		else if (!cJSON_IsString(data) || !data->valuestring)
			rc = aeth__error_set(AETH_EINVALID, "%s must be a string of "
					     "base64", what);
		else
			rc = aeth__base64_decode(&out->data, &out->len, what,
						 data->valuestring,
						 strlen(data->valuestring),
						 AETH__FILE_MAX);
	}
	if (rc != 0)
		aeth__file_payload_clear(out);
	return rc;
}

static int file_parse(const char *json, size_t len, bool put,
		      aeth__file_payload *out)
{
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(put ? AETH__TASK_FILE_PUT : AETH__TASK_FILE_GET,
			       json, len, &root)) != 0)
		return rc;
	rc = file_from(root, put, out);
	cJSON_Delete(root);
	return rc;
}

int aeth__file_put_payload_parse(const char *json, size_t len,
				 aeth__file_payload *out)
{
	return file_parse(json, len, true, out);
}

int aeth__file_get_payload_parse(const char *json, size_t len,
				 aeth__file_payload *out)
{
	return file_parse(json, len, false, out);
}

void aeth__file_payload_clear(aeth__file_payload *p)
{
	free(p->vm_id);
	free(p->path);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

bool aeth__task_type_builtin(const char *type)
{
	return type && (!strcmp(type, AETH__TASK_CREATE) ||
			aeth__task_type_targets_vm(type));
}

bool aeth__task_type_targets_vm(const char *type)
{
	return type && (!strcmp(type, AETH__TASK_EXECUTE) ||
			!strcmp(type, AETH__TASK_DELETE) || file_type(type));
}

/* The checks of a built-in type's payload tree; *vm_id (may be NULL)
 * gets the VM it targets (vm:execute, vm:delete). */
static int builtin_check(char **vm_id, const char *type, const cJSON *root)
{
	int rc = need_object(type, root);

	if (rc == 0 && !strcmp(type, AETH__TASK_CREATE)) {
		aeth__create_payload p;

		if ((rc = create_from(root, &p)) == 0)
			aeth__create_payload_clear(&p);
	} else if (rc == 0 && !strcmp(type, AETH__TASK_EXECUTE)) {
		aeth__execute_payload p;

		if ((rc = execute_from(root, &p)) == 0 && vm_id) {
			*vm_id = p.vm_id;
			p.vm_id = NULL;
		}
		aeth__execute_payload_clear(&p);
	} else if (rc == 0 && file_type(type)) {
		aeth__file_payload p;

		if ((rc = file_from(root, !strcmp(type, AETH__TASK_FILE_PUT),
				    &p)) == 0 && vm_id) {
			*vm_id = p.vm_id;
			p.vm_id = NULL;
		}
		aeth__file_payload_clear(&p);
	} else if (rc == 0) {
		aeth__delete_payload p;

		if ((rc = delete_from(root, &p)) == 0 && vm_id) {
			*vm_id = p.vm_id;
			p.vm_id = NULL;
		}
		aeth__delete_payload_clear(&p);
	}
	return rc;
}

int aeth__payload_check(char **vm_id, bool *is_json, const char *type,
			const char *json, size_t len)
{
	cJSON *root;
	int rc;

	if (vm_id)
		*vm_id = NULL;
	if ((rc = parse_text(type, json, len, &root, is_json)) != 0)
		return rc;
	rc = aeth__task_type_builtin(type) ? builtin_check(vm_id, type, root) : 0;
	cJSON_Delete(root);
	return rc;
}

int aeth__payload_check_tree(char **vm_id, const char *type,
			     const struct cJSON *root)
{
	if (vm_id)
		*vm_id = NULL;
	return aeth__task_type_builtin(type) ? builtin_check(vm_id, type, root) : 0;
}

int aeth__payload_validate(const char *type, const char *json, size_t len)
{
	if (!aeth__task_type_builtin(type))
		return aeth__error_set(AETH_EINVALID, "unknown task type \"%s\": the "
				       "types are vm:create, vm:execute, vm:delete, "
				       "vm:file_put, vm:file_get",
				       type ? type : "(none)");
	return aeth__payload_check(NULL, NULL, type, json, len);
}

char *aeth__payload_vm_id(const char *json, size_t len)
{
	cJSON *root, *it;
	char *id = NULL;

	if (!json || len == 0 || len > AETH__FILE_PAYLOAD_MAX)
		return NULL;
	root = cJSON_ParseWithLength(json, len);
	it = cJSON_GetObjectItemCaseSensitive(root, "vm_id");
	if (cJSON_IsString(it) && it->valuestring && aeth__uuid_valid(it->valuestring))
		id = strdup(it->valuestring);
	cJSON_Delete(root);
	return id;
}

int aeth_task_payload_validate(const char *type, const char *json, size_t len)
{
	return aeth__payload_validate(type, json, len);
}
