/*
 * lib/proto/proto.h - the agent wire protocol's frame codec.
 *
 * One implementation compiled into both libaetherium and the static
 * aeth-agent, so it depends on nothing but libc and the public error
 * codes. The format is specified in docs/protocol.md; keep both in step.
 *
 * A frame is a 12-byte header followed by a payload of TLV fields:
 *   "AE" | version u8 | type u8 | id u32 BE | length u32 BE | fields...
 *   field: tag u8 | length u32 BE | value
 * Integers are 8 bytes big-endian (two's complement for signed ones);
 * strings end with exactly one NUL (and hold no other), so a decoded
 * string can be used in place as a C string.
 */
#ifndef AETH_PROTO_H
#define AETH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aetherium/error.h"

/* The frame layout (the header's version byte): unchanged since 1. */
#define AETH__PROTO_FRAME_VERSION 1
/* The protocol level in hello / hello-ok: which types and fields a peer
 * knows (docs/protocol.md, "Versioning"). 2 added the setup request (a
 * VM's identity: hostname, id, clock, entropy), uid/gid in exec (which a
 * peer must not skip: the host sends them only to an agent at level 2)
 * and the file requests stat, list, mkdir, remove. */
#define AETH__PROTO_LEVEL 2
/* mkdir: make missing parents; remove: a directory and what it holds. */
#define AETH__PROTO_FS_DEEP 1u
/* A list reply's records (mode u32, size u64, name length u16, name), at
 * most this many bytes: one frame, with room for its other fields. */
#define AETH__PROTO_LIST_MAX ((1u << 20) - 4096)
#define AETH__PROTO_HEADER_LEN 12
/* Largest payload a peer may send; a longer length is a protocol error. */
#define AETH__PROTO_MAX_PAYLOAD (1u << 20)
/* Data chunks (stdout, stdin, files) are cut at this size. */
#define AETH__PROTO_CHUNK (64u * 1024)
/* At most this many argv or env entries per exec. */
#define AETH__PROTO_MAX_LIST 4096
/* Entropy a setup request carries: at least / at most, bytes. */
#define AETH__PROTO_ENTROPY_MIN 32
#define AETH__PROTO_ENTROPY_MAX 512
/* Largest file accepted by file put/get. */
#define AETH__PROTO_FILE_MAX (256ull << 20)
/* Default flow-control windows (bytes in flight per exec). */
#define AETH__PROTO_OUTPUT_WINDOW (256u * 1024)
/* Output kept per stream of an exec when the request names no limit
 * (AETH__F_OUTPUT_LIMIT 0): both sides apply it. */
#define AETH__PROTO_OUTPUT_LIMIT (1u << 20)
#define AETH__PROTO_STDIN_WINDOW (256u * 1024)

/* Frame types. Requests go host -> agent, replies agent -> host. */
enum {
	AETH__MSG_HELLO = 1,       /* host: version; agent replies HELLO_OK */
	AETH__MSG_HELLO_OK = 2,    /* agent: version, info (JSON) */
	AETH__MSG_PING = 3,        /* host: optional data */
	AETH__MSG_PONG = 4,        /* agent: the same data */
	AETH__MSG_ERROR = 5,       /* either: code, message */
	AETH__MSG_OK = 6,          /* agent: request done (optional size) */
	AETH__MSG_SHUTDOWN = 7,    /* host: power off; agent replies OK */
	AETH__MSG_SETUP = 8,       /* host (v2): hostname, vm_id, time_ms,
				      entropy (data); agent replies OK */

	AETH__MSG_EXEC = 16,       /* host: argv, env, cwd, ... */
	AETH__MSG_STARTED = 17,    /* agent: pid, stdin window */
	AETH__MSG_STDIN = 18,      /* host: data */
	AETH__MSG_STDIN_CLOSE = 19,/* host: no more stdin */
	AETH__MSG_OUTPUT = 20,     /* agent: stream, data */
	AETH__MSG_EXIT = 21,       /* agent: code, signal, flags; ends exec */
	AETH__MSG_SIGNAL = 22,     /* host: signal (to the process group) */
	AETH__MSG_WINDOW = 23,     /* host: grants `window` more output bytes */
	AETH__MSG_STDIN_ACK = 24,  /* agent: `window` more stdin bytes ok */

	AETH__MSG_PUT_OPEN = 32,   /* host: path, mode, size */
	AETH__MSG_PUT_DATA = 33,   /* host: data */
	AETH__MSG_PUT_CLOSE = 34,  /* host: done; agent replies OK or ERROR */
	AETH__MSG_GET = 35,        /* host: path, max_len */
	AETH__MSG_GET_DATA = 36,   /* agent: data; ends with OK (size) */

	/* level 2: answered with OK or ERROR at once */
	AETH__MSG_STAT = 37,       /* host: path; OK (mode, size), no symlink followed */
	AETH__MSG_LIST = 38,       /* host: path; OK (size = count, data = records) */
	AETH__MSG_MKDIR = 39,      /* host: path, mode, flags (DEEP: parents) */
	AETH__MSG_REMOVE = 40,     /* host: path, flags (DEEP: recursive) */
};

/* Field tags. Unknown tags are skipped (newer peers may add fields). */
enum {
	AETH__F_VERSION = 1,    /* u64 */
	AETH__F_INFO = 2,       /* str: JSON object */
	AETH__F_ARG = 3,        /* str, repeated: argv */
	AETH__F_ENV = 4,        /* str, repeated: "NAME=value" */
	AETH__F_CWD = 5,        /* str */
	AETH__F_TIMEOUT_MS = 6, /* u64, 0 = none */
	AETH__F_OUTPUT_LIMIT = 7, /* u64 bytes per stream, 0 = default */
	AETH__F_SHELL = 8,      /* u64 bool: run argv[0] with /bin/sh -c */
	AETH__F_WINDOW = 9,     /* u64 bytes */
	AETH__F_DATA = 10,      /* bytes */
	AETH__F_STREAM = 11,    /* u64: 1 stdout, 2 stderr */
	AETH__F_EXIT_CODE = 12, /* i64, -1 if killed by a signal */
	AETH__F_SIGNAL = 13,    /* u64 */
	AETH__F_TIMED_OUT = 14, /* u64 bool */
	AETH__F_STDOUT_TRUNC = 15, /* u64 bool */
	AETH__F_STDERR_TRUNC = 16, /* u64 bool */
	AETH__F_DURATION_MS = 17,  /* u64 */
	AETH__F_PID = 18,       /* u64 */
	AETH__F_PATH = 19,      /* str */
	AETH__F_MODE = 20,      /* u64 */
	AETH__F_SIZE = 21,      /* u64 */
	AETH__F_MAX_LEN = 22,   /* u64 */
	AETH__F_CODE = 23,      /* i64: an aeth_error_code */
	AETH__F_MESSAGE = 24,   /* str */
	AETH__F_STDIN_OPEN = 25,/* u64 bool: wait for STDIN_CLOSE */
	AETH__F_EXEC_ERRNO = 26,/* u64: errno of a failed execvp */
	AETH__F_HOSTNAME = 27,  /* str (v2) */
	AETH__F_VM_ID = 28,     /* str (v2) */
	AETH__F_TIME_MS = 29,   /* i64 (v2): wall clock, ms since the epoch */
	AETH__F_UID = 30,       /* u64: run the command as this uid (level 2) */
	AETH__F_GID = 31,       /* u64: and this gid (level 2) */
	AETH__F_FLAGS = 32,     /* u64: AETH__PROTO_FS_* (level 2) */
	AETH__F_MAX_TAG = 32
};

/* ---- Frame header ---- */

typedef struct {
	uint8_t version;
	uint8_t type;
	uint32_t id;
	uint32_t len;
} aeth__proto_header;

void aeth__proto_header_encode(uint8_t out[AETH__PROTO_HEADER_LEN],
			       uint8_t type, uint32_t id, uint32_t len);
/* 0, or AETH_EPROTO (bad magic/version/type) or AETH_ETOOBIG (length). */
int aeth__proto_header_decode(aeth__proto_header *h,
			      const uint8_t in[AETH__PROTO_HEADER_LEN]);
/* Name of a frame type for messages ("exec"), "unknown" otherwise. */
const char *aeth__proto_type_name(unsigned int type);

/* ---- Building a frame ---- */

typedef struct {
	uint8_t *data; /* header + payload, malloc'd */
	size_t len;
	size_t cap;
	int error;     /* AETH_ENOMEM or AETH_ETOOBIG: finish() fails */
} aeth__proto_msg;

#define AETH__PROTO_MSG_INIT {NULL, 0, 0, 0}

/* Start a frame of `type` for request `id` (resets `m`). */
void aeth__proto_msg_begin(aeth__proto_msg *m, uint8_t type, uint32_t id);
void aeth__proto_add_u64(aeth__proto_msg *m, uint8_t tag, uint64_t v);
void aeth__proto_add_i64(aeth__proto_msg *m, uint8_t tag, int64_t v);
/* NULL adds nothing. */
void aeth__proto_add_str(aeth__proto_msg *m, uint8_t tag, const char *s);
void aeth__proto_add_bytes(aeth__proto_msg *m, uint8_t tag, const void *p,
			   size_t n);
/* Write the length into the header: 0, AETH_ENOMEM or AETH_ETOOBIG. */
int aeth__proto_msg_finish(aeth__proto_msg *m);
void aeth__proto_msg_free(aeth__proto_msg *m);

/* ---- Parsing a payload ---- */

/*
 * Every field of every message, decoded. Strings and data point into the
 * payload (valid while it is); `args` and `envs` are malloc'd arrays of
 * such pointers, NULL-terminated. `have` has bit (1 << tag) set for each
 * field present.
 */
typedef struct {
	uint64_t have;
	uint64_t version, timeout_ms, output_limit, shell, window, stream;
	uint64_t signal, timed_out, stdout_trunc, stderr_trunc, duration_ms;
	uint64_t pid, mode, size, max_len, stdin_open, exec_errno;
	uint64_t uid, gid, flags;
	int64_t exit_code, code, time_ms;
	const char *info, *cwd, *path, *message, *hostname, *vm_id;
	const uint8_t *data;
	size_t data_len;
	const char **args;
	size_t nargs;
	const char **envs;
	size_t nenvs;
} aeth__proto_fields;

#define AETH__PROTO_HAS(f, tag) (((f)->have >> (tag)) & 1u)

/*
 * Decode `payload`. 0, AETH_EPROTO (malformed: a field past the end, a
 * bad integer or string, a repeated single field, too many entries) or
 * AETH_ENOMEM. `err` (may be NULL) gets a short reason. Free with
 * aeth__proto_fields_free() whatever the result.
 */
int aeth__proto_parse(aeth__proto_fields *f, const uint8_t *payload,
		      size_t len, const char **err);
void aeth__proto_fields_free(aeth__proto_fields *f);

/* ---- Reassembling frames from a byte stream ---- */

typedef struct {
	uint8_t *buf;
	size_t len;      /* bytes held */
	size_t start;    /* first byte not yet handed out */
	size_t cap;
} aeth__proto_rx;

#define AETH__PROTO_RX_INIT {NULL, 0, 0, 0}

/*
 * Space to read into: at least `want` bytes at *p. 0 or AETH_ENOMEM.
 * Call aeth__proto_rx_commit() with the number of bytes read.
 */
int aeth__proto_rx_space(aeth__proto_rx *rx, size_t want, uint8_t **p);
void aeth__proto_rx_commit(aeth__proto_rx *rx, size_t n);
/* Copying form of space+commit. */
int aeth__proto_rx_feed(aeth__proto_rx *rx, const void *data, size_t n);
/*
 * The next whole frame: 1 (header and payload set; payload valid until
 * the next call), 0 (need more bytes) or a negative code from
 * aeth__proto_header_decode (the stream cannot be trusted any more).
 */
int aeth__proto_rx_next(aeth__proto_rx *rx, aeth__proto_header *h,
			const uint8_t **payload);
void aeth__proto_rx_reset(aeth__proto_rx *rx);
void aeth__proto_rx_free(aeth__proto_rx *rx);

#endif
