/*
 * lib/task/task.h - the built-in task types (the seed's vm:create,
 * vm:execute, vm:delete, and vm:file_put, vm:file_get): parse and validate
 * their JSON payloads, and build their result JSON (the seed's exactly as
 * the seed shows it). Shared by the worker and the
 * submit client; no I/O.
 */
#ifndef AETH_TASK_TASK_H
#define AETH_TASK_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AETH__TASK_CREATE "vm:create"
#define AETH__TASK_EXECUTE "vm:execute"
#define AETH__TASK_DELETE "vm:delete"
#define AETH__TASK_FILE_PUT "vm:file_put"
#define AETH__TASK_FILE_GET "vm:file_get"

/* Task type names (aeth_task_type_valid(), types.c): the queue, the worker
 * and the client all check this one rule. tasks.type is VARCHAR(100). */
#define AETH__TASK_TYPE_MAX 100
/* 0, or AETH_EINVALID with a message giving the rule. */
int aeth__task_type_check(const char *type);

/* Limits that match the seed's columns (VARCHAR(255), VARCHAR(500)) or keep
 * hostile input bounded. */
#define AETH__NAME_MAX 255
#define AETH__COMMAND_MAX 500
#define AETH__ARGS_MAX 4096
#define AETH__ENV_MAX 1024
#define AETH__PAYLOAD_MAX (4 * 1024 * 1024)
#define AETH__VCPUS_MAX 64
#define AETH__MEMORY_MIN 64
#define AETH__MEMORY_MAX (1024 * 1024)
#define AETH__EXEC_TIMEOUT_MAX (24u * 3600u * 1000u)

/* vm:create's optional "network": "none", "tap" (with "tap": a device of
 * the worker's network.taps), or the name of one of the worker's network
 * profiles ("user" is built in: a network card that reaches nothing
 * unless the worker's configuration gives "user" rules). */
typedef enum {
	AETH__NET_UNSET = 0, /* field absent: "none" */
	AETH__NET_NONE,
	AETH__NET_PROFILE,
	AETH__NET_TAP
} aeth__net_field;

/* vm:create's optional "rootfs": false | true (the image's root disk). */
typedef enum {
	AETH__ROOTFS_UNSET = 0, /* absent or null: the worker's vmm.use_rootfs */
	AETH__ROOTFS_OFF,       /* false: initramfs only */
	AETH__ROOTFS_ON         /* true: the image's root disk */
} aeth__rootfs_field;

#define AETH__TAP_MAX 15         /* IFNAMSIZ - 1 */
#define AETH__CATALOG_NAME_MAX 64 /* image and profile names */
#define AETH__TTL_MAX (365u * 24u * 3600u)

/* {"name", "vcpus", "memory_mb"} and optionally "image", "network" (+
 * "tap"), "rootfs", "ttl"; 0 / UNSET / NULL mean "the worker's default".
 * Nothing in it names a host path: images and profiles are the worker's
 * catalogue (docs/security.md). */
typedef struct {
	char *name;
	unsigned int vcpus;
	unsigned int memory_mb;
	aeth__net_field network;
	char *profile;       /* with AETH__NET_PROFILE */
	char *tap;           /* with AETH__NET_TAP only */
	aeth__rootfs_field rootfs;
	char *image;         /* a catalogue name; NULL: "default" */
	unsigned int ttl_s;  /* the VM's lifetime in seconds; 0: the default */
} aeth__create_payload;

/* The payload's network as a word: "none", "tap" or the profile name.
 * Borrowed from p. */
const char *aeth__create_network_name(const aeth__create_payload *p);

/* A name fit for logs and tables: valid UTF-8 without control characters
 * (C0, DEL, C1) or bidirectional overrides. */
bool aeth__text_clean(const char *s);

/* {"vm_id", "command", "args"[], and optional "env"{}, "cwd", "timeout_ms",
 * "stdin", "idempotency_key"}. argv = command followed by args, NULL-terminated; env entries
 * are "KEY=VALUE", NULL-terminated (NULL when absent). */
typedef struct {
	char *vm_id;
	char *command;
	char **argv;
	size_t argc;
	char **env;
	char *cwd;
	unsigned int timeout_ms; /* 0 = none */
	char *stdin_data;
	size_t stdin_len;
	/* "live_output": true: the worker appends the output to the task's
	 * live stream in Redis as it comes (lib/queue/queue_output.h) */
	bool live_output;
	/* "idempotency_key": a second task with this key for this VM gets
	 * the first one's result instead of running again; NULL = none */
	char *idempotency_key;
} aeth__execute_payload;

/* {"vm_id"} */
typedef struct {
	char *vm_id;
} aeth__delete_payload;

/* vm:file_put / vm:file_get: the file's bytes travel in the payload (put)
 * or the result (get) as base64, through Redis and the tasks row, so they
 * are bounded: AETH__FILE_MAX bytes decoded. A file payload may be as long
 * as the base64 of that and some room for the other fields. */
#define AETH__FILE_MAX (8 * 1024 * 1024)
#define AETH__FILE_PAYLOAD_MAX (AETH__FILE_MAX / 3 * 4 + 64 * 1024)
#define AETH__GUEST_PATH_MAX 4096
#define AETH__FILE_MODE_DEFAULT 0644u

/* {"vm_id", "path"} and for vm:file_put "data" (base64, at most
 * AETH__FILE_MAX bytes decoded; "" is an empty file) and optional "mode"
 * (permission bits 0..07777, default 0644). path: absolute, no NUL, at
 * most AETH__GUEST_PATH_MAX bytes. */
typedef struct {
	char *vm_id;
	char *path;
	unsigned int mode;
	unsigned char *data; /* vm:file_put: len bytes (malloc'd, never NULL) */
	size_t len;
} aeth__file_payload;

/* Each returns 0 or AETH_EINVALID / AETH_ETOOBIG / AETH_ENOMEM with a
 * message naming the field and what is wrong. On failure *out is zeroed. */
int aeth__file_put_payload_parse(const char *json, size_t len,
				 aeth__file_payload *out);
int aeth__file_get_payload_parse(const char *json, size_t len,
				 aeth__file_payload *out);
void aeth__file_payload_clear(aeth__file_payload *p);
/* The rule for a guest path (absolute, no NUL, bounded): 0 or
 * AETH_EINVALID / AETH_ETOOBIG naming `what`. `len`: its bytes (a NUL
 * among them is refused). */
int aeth__guest_path_check(const char *what, const char *path, size_t len);
int aeth__create_payload_parse(const char *json, size_t len,
			       aeth__create_payload *out);
int aeth__execute_payload_parse(const char *json, size_t len,
				aeth__execute_payload *out);
int aeth__delete_payload_parse(const char *json, size_t len,
			       aeth__delete_payload *out);
void aeth__create_payload_clear(aeth__create_payload *p);
void aeth__execute_payload_clear(aeth__execute_payload *p);
void aeth__delete_payload_clear(aeth__delete_payload *p);

/* Validate the payload of any known type; AETH_EINVALID for an unknown type. */
int aeth__payload_validate(const char *type, const char *json, size_t len);

/*
 * A submitted payload checked with one parse: a built-in type's field by
 * field, any other type's only that it is JSON. *vm_id (may be NULL) gets
 * the VM a vm:execute or vm:delete targets (malloc'd; NULL otherwise);
 * *is_json (may be NULL) whether the text is JSON at all, also when the
 * check failed (a rejected task keeps a payload that is not JSON as a
 * JSON string). 0, AETH_EINVALID or AETH_ETOOBIG with the message.
 */
int aeth__payload_check(char **vm_id, bool *is_json, const char *type,
			const char *json, size_t len);
/* The same for a payload built as a cJSON tree (no text to parse). */
struct cJSON;
int aeth__payload_check_tree(char **vm_id, const char *type,
			     const struct cJSON *root);

/* true for the built-in types (create, execute, delete, file_put,
 * file_get). */
bool aeth__task_type_builtin(const char *type);
/* true for the built-in types that act on one VM (all but vm:create): the
 * submitter routes them to the queue of the worker owning it. */
bool aeth__task_type_targets_vm(const char *type);

/* The vm_id a payload targets (NULL for vm:create or when absent/invalid);
 * a malloc'd string. For a payload that is not checked otherwise (a
 * worker adopting tasks); submitters use aeth__payload_check(). */
char *aeth__payload_vm_id(const char *json, size_t len);

#define AETH__IDEMPOTENCY_KEY_MAX 200

/* What a vm:execute result says about one command run. */
typedef struct {
	int exit_code;          /* 128+N when killed by signal N */
	const char *out, *err;  /* the bytes kept, out_len / err_len of them */
	size_t out_len, err_len;
	bool out_truncated, err_truncated; /* bytes past the limit dropped */
	bool timed_out;         /* its timeout_ms killed it */
	int signal;             /* the signal that ended it, 0: none */
	int64_t duration_ms;
} aeth__exec_fields;

/* Results, as malloc'd JSON text (NULL on OOM). Output bytes that are not
 * valid UTF-8 (or NUL) become U+FFFD so PostgreSQL's JSONB accepts them;
 * a vm:execute result then also carries the raw bytes in base64
 * ("stdout_b64" / "stderr_b64"). */
/* vm:create: the seed's vm_id, name, status, and how the VM was made
 * ("pool", "snapshot", "cold") and how long that took (ms, in the
 * worker: from the handler's start to the VM ready). */
char *aeth__create_result(const char *vm_id, const char *name,
			  const char *origin, int64_t ready_ms);
char *aeth__execute_result(const char *vm_id, const aeth__exec_fields *f);
/*
 * A vm:file_put / vm:file_get that fails for a reason of the request
 * (not of the system) fails with the message "TYPE: CODE: words", CODE one
 * of: "not_found" (no such file, or its directory missing),
 * "is_a_directory", "not_a_file" (a device, a FIFO...), "too_large" (more
 * than AETH__FILE_MAX bytes), "invalid_argument"; the gateway answers
 * 404, 409, 409, 413, 400 for them. aeth__file_error_code() gives the CODE
 * of such a message, NULL for any other message.
 */
const char *aeth__file_error_code(const char *msg);

/* Base64 (RFC 4648, padded) of `len` bytes when aeth__utf8_sanitize()
 * would change them (malloc'd); NULL when it would not, or out of memory
 * (*oom says which). */
char *aeth__base64_if_lossy(const char *v, size_t len, bool *oom);
char *aeth__delete_result(const char *vm_id);
/* vm:file_put: {vm_id, path, size, mode}; vm:file_get: the same and
 * "data", the bytes in base64. mode: the permission bits. */
char *aeth__file_put_result(const char *vm_id, const char *path, size_t size,
			    unsigned int mode);
char *aeth__file_get_result(const char *vm_id, const char *path,
			    const void *data, size_t size, unsigned int mode);

/*
 * A vm:file_put / vm:file_get that fails for a reason of the request
 * (not of the system) fails with the message "TYPE: CODE: words", CODE one
 * of: "not_found" (no such file, or its directory missing),
 * "is_a_directory", "not_a_file" (a device, a FIFO...), "too_large" (more
 * than AETH__FILE_MAX bytes), "invalid_argument"; the gateway answers
 * 404, 409, 409, 413, 400 for them. aeth__file_error_code() gives the CODE
 * of such a message, NULL for any other message.
 */
const char *aeth__file_error_code(const char *msg);

/* Base64 (RFC 4648, padded) of `len` bytes: malloc'd, NULL on OOM. */
char *aeth__base64(const void *data, size_t len);
/* Decode `len` characters of padded base64 into *out (malloc'd, never
 * NULL on success, one NUL after the bytes) and *out_len; more than `max`
 * bytes is AETH_ETOOBIG, a character outside the alphabet or bad padding
 * AETH_EINVALID (message set, naming `what`). */
int aeth__base64_decode(unsigned char **out, size_t *out_len, const char *what,
			const char *s, size_t len, size_t max);

/* Payload builders used by the submit client (trees: the client checks
 * them with aeth__payload_check_tree() and prints them once; NULL on OOM).
 * args excludes the command. */
struct cJSON *aeth__execute_payload_tree(const char *vm_id, const char *command,
					 const char *const *args);
struct cJSON *aeth__delete_payload_tree(const char *vm_id);

/* Copy `s` (len bytes) replacing invalid UTF-8 and NUL with U+FFFD. */
char *aeth__utf8_sanitize(const char *s, size_t len);

#endif
