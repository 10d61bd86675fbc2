/*
 * lib/common/internal.h - helpers shared by every module of the library.
 * Not installed; names use the aeth__ prefix.
 */
#ifndef AETH_INTERNAL_H
#define AETH_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aetherium/error.h"
#include "aetherium/log.h"

#if defined(__GNUC__)
#define AETH__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define AETH__UNUSED __attribute__((unused))
#else
#define AETH__PRINTF(f, a)
#define AETH__UNUSED
#endif

#define AETH__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Record the failure for aeth_error_last() on this thread and return
 * `code`, so that callers can write `return aeth__error_set(...)`.
 */
int aeth__error_set(int code, const char *fmt, ...) AETH__PRINTF(2, 3);

/* As aeth__error_set, appending ": <strerror(errno)>" (errno read first). */
int aeth__error_errno(int code, const char *fmt, ...) AETH__PRINTF(2, 3);

/* Prefix the current message with more context: "<context>: <old>". */
int aeth__error_wrap(int code, const char *fmt, ...) AETH__PRINTF(2, 3);

/* Out of memory: sets the message and returns AETH_ENOMEM. */
int aeth__error_oom(void);

/* This thread's error, kept across cleanup that may fail on its own (a
 * free function that talks to a server): the caller's reason stays. */
typedef struct {
	int code;
	char msg[1024];
} aeth__error_saved;
void aeth__error_save(aeth__error_saved *s);
void aeth__error_restore(const aeth__error_saved *s);

void aeth__log(aeth_log_level level, const char *fmt, ...) AETH__PRINTF(2, 3);
bool aeth__log_enabled(aeth_log_level level);

#define aeth__debug(...) aeth__log(AETH_LOG_DEBUG, __VA_ARGS__)
#define aeth__info(...) aeth__log(AETH_LOG_INFO, __VA_ARGS__)
#define aeth__warn(...) aeth__log(AETH_LOG_WARN, __VA_ARGS__)

/* Milliseconds on the monotonic clock, and since the Unix epoch. */
int64_t aeth__now_ms(void);
int64_t aeth__wall_ms(void);
/* The CLOCK_REALTIME time `ms` from now, for pthread_cond_timedwait(). */
struct timespec;
void aeth__timespec_in(struct timespec *ts, long ms);
/* Sleep ms milliseconds (nothing for ms <= 0), through EINTR. */
void aeth__sleep_ms(int64_t ms);

/* A new random UUID in its 36-character text form (37 bytes with NUL). */
void aeth__uuid_new(char out[37]);

/* True when `s` is a UUID in text form. */
bool aeth__uuid_valid(const char *s);

/* strdup that records AETH_ENOMEM; NULL in gives NULL out without error. */
char *aeth__strdup(const char *s);

/* printf into a new malloc'd string; NULL (and AETH_ENOMEM set) on failure. */
char *aeth__sprintf(const char *fmt, ...) AETH__PRINTF(1, 2);

/* mkdir -p with `mode` for the directories it makes. */
int aeth__mkdir_p(const char *path, unsigned int mode);

/* rm -rf of a directory tree we own (no symlink following). */
int aeth__rm_rf(const char *path);

/*
 * A directory only this process's user may use: created (mode 0700, its
 * parents 0755) when missing; an existing one must be a real directory
 * (not a symlink), owned by our effective uid, with no group or other
 * permission bits. Anything else is refused with AETH_EINVALID and a
 * message naming the problem and the fix; `what` names the setting
 * ("state dir (vmm.state_dir)").
 */
int aeth__private_dir(const char *path, const char *what);

/*
 * Copy `in` to `out` (always NUL-terminated, cut to `size`) with what a
 * terminal or a log reader would act on made visible: C0 controls, DEL,
 * C1 controls (UTF-8 U+0080..U+009F) and bidirectional overrides as
 * \n, \r, \t, \xNN, \uNNNN. With `newline_indent` a newline stays a
 * line break followed by "  | ", so a message cannot start a line that
 * looks like a log line of its own. For text from guests and submitters.
 */
void aeth__escape_text(char *out, size_t size, const char *in,
		       bool newline_indent);

/* The absolute path of `prog` (a name searched in PATH, or a path with a
 * '/' made absolute), malloc'd, or NULL when it is not an executable. */
char *aeth__find_program(const char *prog);

/*
 * A growable byte buffer. `limit` (0 = none) caps its size: appends past
 * it keep the first `limit` bytes and set `truncated`. `data` is always
 * NUL-terminated when non-NULL.
 */
typedef struct {
	char *data;
	size_t len;
	size_t cap;
	size_t limit;
	bool truncated;
} aeth__buf;

#define AETH__BUF_INIT {NULL, 0, 0, 0, false}

int aeth__buf_append(aeth__buf *b, const void *data, size_t len);
int aeth__buf_printf(aeth__buf *b, const char *fmt, ...) AETH__PRINTF(2, 3);
/* Hand the data to the caller (malloc'd, NUL-terminated) and reset. */
char *aeth__buf_detach(aeth__buf *b, size_t *len);
void aeth__buf_free(aeth__buf *b);

/*
 * What a log line says besides its message (docs/metrics.md, "Structured
 * logs"): the worker (per thread, else the process's last started one),
 * the task and the VM being handled on this thread. Copied; NULL clears.
 * aeth_log_stderr() and the worker's progress lines show them.
 */
void aeth__log_worker_default(const char *worker_id);
void aeth__log_ctx_worker(const char *worker_id);
void aeth__log_ctx_task(const char *task_id);
/* This thread's task id ("" when none). */
const char *aeth__log_ctx_task_get(void);
void aeth__log_ctx_vm(const char *vm_id);
/* logging.format: text (false) or one JSON object per line (true). */
void aeth__log_set_json(bool json);
bool aeth__log_json(void);
/* One line (no newline) in the current format with the context fields. */
void aeth__log_format_line(aeth__buf *out, const char *level,
			   const char *message);

/*
 * The public structs that start with `unsigned int version` (options,
 * records the caller fills or reads), described once each, so that every
 * entry point applies the same rule (docs/api.md): versions 1..current
 * are accepted, any other is refused with a message naming the struct,
 * the version given and the range; fields are only appended, so version
 * v of a struct is its first sizes[v - 1] bytes, and the library never
 * reads or writes past what the caller's version has.
 */
typedef struct {
	const char *name;     /* "aeth_vm_options" */
	const char *init;     /* how to make one: "AETH_VM_OPTIONS_INIT" */
	unsigned int current; /* AETH_VM_OPTIONS_VERSION */
	const size_t *sizes;  /* bytes of versions 1..current */
	const void *defaults; /* the current version's INIT (version set) */
} aeth__versioned;

/* Bytes of a struct up to and including field `f` (the last field a
 * version has). */
#define AETH__END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

/* 0 when 1 <= version <= d->current, else AETH_EINVALID with the words. */
int aeth__versioned_check(const aeth__versioned *d, unsigned int version);
/* The *_init() functions: `obj`'s first sizes[version - 1] bytes from the
 * defaults, and its version field set to `version`. */
int aeth__versioned_init(const aeth__versioned *d, void *obj,
			 unsigned int version);
/*
 * A caller's struct `src` (NULL: the defaults) as a current one in `dst`
 * (d->current's size): the bytes src's version has, the defaults for the
 * fields it lacks, dst's version set to d->current. Refuses a bad version.
 */
int aeth__versioned_copy(const aeth__versioned *d, void *dst, const void *src);

/* The state dir a VM manager opened without one uses (vm.h), malloc'd;
 * the config module shows the same default. Here, in the base layer,
 * because lib/vm also reads the config module's defaults. */
char *aeth__vmm_default_state_dir(void);
/* The same for the overlay dir (the VMs' disk layers). */
char *aeth__vmm_default_overlay_dir(void);

#endif
