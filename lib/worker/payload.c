/*
 * lib/worker/payload.c - parse and validate the seed's task payloads.
 *
 * Like the seed's Go structs, unknown fields are ignored (so newer
 * submitters can add fields), but every known field must have the right
 * JSON type and range: a wrong one is an error naming the field, never a
 * silent default.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "aetherium/task.h"
#include "internal.h"
#include "worker/payload.h"

/* Parse `json` as one object with nothing but blanks after it. */
static int parse_object(const char *type, const char *json, size_t len,
			cJSON **out)
{
	const char *end = NULL;
	cJSON *root;

	*out = NULL;
	if (!json || len == 0)
		return aeth__error_set(AETH_EINVALID, "%s payload is empty: "
				       "expected a JSON object", type);
	if (len > AETH__PAYLOAD_MAX)
		return aeth__error_set(AETH_ETOOBIG, "%s payload is %zu bytes, "
				       "more than the limit of %d", type, len,
				       AETH__PAYLOAD_MAX);
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
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return aeth__error_set(AETH_EINVALID, "%s payload must be a JSON "
				       "object, like {\"vm_id\": \"...\"}", type);
	}
	*out = root;
	return 0;
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

const char *aeth__net_field_name(aeth__net_field n)
{
	return n == AETH__NET_USER ? "user" : n == AETH__NET_TAP ? "tap" : "none";
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

/* "network": "none" | "user" | "tap" (+ "tap": device name). */
static int get_network(const char *t, cJSON *root, aeth__create_payload *p)
{
	char *net = NULL;
	int rc = get_string(t, root, "network", false, 16, &net);

	if (rc == AETH_ETOOBIG)
		rc = aeth__error_set(AETH_EINVALID, "%s payload: \"network\" must be "
				     "\"none\", \"user\" or \"tap\"", t);
	if (rc != 0)
		return rc;
	if (!net)
		p->network = AETH__NET_UNSET;
	else if (!strcmp(net, "none"))
		p->network = AETH__NET_NONE;
	else if (!strcmp(net, "user"))
		p->network = AETH__NET_USER;
	else if (!strcmp(net, "tap"))
		p->network = AETH__NET_TAP;
	else
		rc = aeth__error_set(AETH_EINVALID, "%s payload: unknown \"network\" "
				     "mode \"%s\": use \"none\" (default), \"user\" "
				     "(QEMU user-mode NAT, host at 10.0.2.2) or \"tap\" "
				     "(with \"tap\": an existing tap device)", t, net);
	free(net);
	if (rc != 0)
		return rc;
	if ((rc = get_string(t, root, "tap", false, AETH__TAP_MAX, &p->tap)) != 0)
		return rc;
	if (p->network == AETH__NET_TAP && !p->tap)
		return aeth__error_set(AETH_EINVALID, "%s payload: \"network\": \"tap\" "
				       "needs \"tap\": the name of a tap device set "
				       "up on the worker host", t);
	if (p->tap && p->network != AETH__NET_TAP)
		return aeth__error_set(AETH_EINVALID, "%s payload: \"tap\" is only "
				       "used with \"network\": \"tap\"", t);
	if (p->tap && !tap_name_ok(p->tap))
		return aeth__error_set(AETH_EINVALID, "%s payload: \"tap\" \"%s\" is "
				       "not a network device name (letters, digits, "
				       "'-', '_', '.')", t, p->tap);
	return 0;
}

/* "rootfs": false | true | "/absolute/path" (null = absent). */
static int get_rootfs(const char *t, cJSON *root, aeth__create_payload *p)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "rootfs");
	const char *s;

	if (!it || cJSON_IsNull(it))
		return 0;
	if (cJSON_IsBool(it)) {
		p->rootfs = cJSON_IsTrue(it) ? AETH__ROOTFS_DEFAULT : AETH__ROOTFS_OFF;
		return 0;
	}
	if (!cJSON_IsString(it) || !it->valuestring)
		return aeth__error_set(AETH_EINVALID, "%s payload: \"rootfs\" must be "
				       "true (the worker's rootfs.ext4), false or an "
				       "absolute path", t);
	s = it->valuestring;
	if (s[0] != '/')
		return aeth__error_set(AETH_EINVALID, "%s payload: \"rootfs\" must be "
				       "an absolute path on the worker host, not \"%s\"",
				       t, s);
	if (strlen(s) > AETH__PATH_MAX)
		return aeth__error_set(AETH_ETOOBIG, "%s payload: \"rootfs\" is longer "
				       "than %d bytes", t, AETH__PATH_MAX);
	/* QEMU's -drive takes the path in a comma-separated list */
	if (strpbrk(s, ",\n\r"))
		return aeth__error_set(AETH_EINVALID, "%s payload: \"rootfs\" \"%s\" "
				       "contains a comma or newline; rename the file",
				       t, s);
	if (!(p->rootfs_path = strdup(s)))
		return aeth__error_oom();
	p->rootfs = AETH__ROOTFS_PATH;
	return 0;
}

int aeth__create_payload_parse(const char *json, size_t len,
			       aeth__create_payload *out)
{
	const char *t = AETH__TASK_CREATE;
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(t, json, len, &root)) != 0)
		return rc;
	rc = get_string(t, root, "name", true, AETH__NAME_MAX, &out->name);
	if (rc == 0)
		rc = get_uint(t, root, "vcpus", 1, AETH__VCPUS_MAX, &out->vcpus);
	if (rc == 0)
		rc = get_uint(t, root, "memory_mb", AETH__MEMORY_MIN,
			      AETH__MEMORY_MAX, &out->memory_mb);
	if (rc == 0)
		rc = get_network(t, root, out);
	if (rc == 0)
		rc = get_rootfs(t, root, out);
	cJSON_Delete(root);
	if (rc != 0)
		aeth__create_payload_clear(out);
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

int aeth__execute_payload_parse(const char *json, size_t len,
				aeth__execute_payload *out)
{
	const char *t = AETH__TASK_EXECUTE;
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(t, json, len, &root)) != 0)
		return rc;
	rc = get_vm_id(t, root, &out->vm_id);
	if (rc == 0)
		rc = get_string(t, root, "command", true, AETH__COMMAND_MAX,
				&out->command);
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
	cJSON_Delete(root);
	if (rc != 0)
		aeth__execute_payload_clear(out);
	return rc;
}

int aeth__delete_payload_parse(const char *json, size_t len,
			       aeth__delete_payload *out)
{
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = parse_object(AETH__TASK_DELETE, json, len, &root)) != 0)
		return rc;
	rc = get_vm_id(AETH__TASK_DELETE, root, &out->vm_id);
	cJSON_Delete(root);
	return rc;
}

void aeth__create_payload_clear(aeth__create_payload *p)
{
	free(p->name);
	free(p->tap);
	free(p->rootfs_path);
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
	memset(p, 0, sizeof(*p));
}

void aeth__delete_payload_clear(aeth__delete_payload *p)
{
	free(p->vm_id);
	memset(p, 0, sizeof(*p));
}

bool aeth__task_type_builtin(const char *type)
{
	return type && (!strcmp(type, AETH__TASK_CREATE) ||
			!strcmp(type, AETH__TASK_EXECUTE) ||
			!strcmp(type, AETH__TASK_DELETE));
}

int aeth__payload_validate(const char *type, const char *json, size_t len)
{
	int rc;

	if (type && !strcmp(type, AETH__TASK_CREATE)) {
		aeth__create_payload p;

		if ((rc = aeth__create_payload_parse(json, len, &p)) == 0)
			aeth__create_payload_clear(&p);
		return rc;
	}
	if (type && !strcmp(type, AETH__TASK_EXECUTE)) {
		aeth__execute_payload p;

		if ((rc = aeth__execute_payload_parse(json, len, &p)) == 0)
			aeth__execute_payload_clear(&p);
		return rc;
	}
	if (type && !strcmp(type, AETH__TASK_DELETE)) {
		aeth__delete_payload p;

		if ((rc = aeth__delete_payload_parse(json, len, &p)) == 0)
			aeth__delete_payload_clear(&p);
		return rc;
	}
	return aeth__error_set(AETH_EINVALID, "unknown task type \"%s\": the "
			       "types are vm:create, vm:execute, vm:delete",
			       type ? type : "(none)");
}

char *aeth__payload_vm_id(const char *json, size_t len)
{
	cJSON *root, *it;
	char *id = NULL;

	if (!json || len == 0 || len > AETH__PAYLOAD_MAX)
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
