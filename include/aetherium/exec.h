/*
 * aetherium/exec.h - run commands and move files in a running VM.
 *
 * Every call talks to the VM's guest agent over its one channel
 * (docs/protocol.md). Several threads may run commands on the same
 * aeth_vm at once; each aeth_exec handle is used by one thread at a time
 * (it may be handed between threads). If the channel dies, every pending
 * call fails with AETH_EUNAVAILABLE and a message; the next call on the
 * VM reconnects.
 *
 * Commands run with argv directly (execvp, PATH lookup, no shell) unless
 * `shell` is set; each in its own process group, so a timeout or
 * aeth_exec_kill() reaches its children too. A command that cannot be
 * started ends with exit_code 127, `exec_errno` set and a line
 * "aeth-agent: cannot run 'x': No such file or directory" on stderr.
 *
 * Deadlines: no call waits on the guest without one.
 * - The agent must confirm a command's start within 60 s; a file put or
 *   get must end within 60 s + 1 s per MiB it may carry (its size, or
 *   max_len for a get); aeth_vm_ping() waits its timeout_ms; a reconnect
 *   (the first call after the channel died) gives up after 15 s. Past a
 *   deadline: AETH_ETIMEOUT.
 * - A command with a timeout_ms must report its exit within timeout_ms +
 *   AETH_EXEC_WAIT_GRACE_MS of its start: AETH_ETIMEOUT from
 *   aeth_vm_exec(), aeth_vm_exec_stream() and aeth_exec_wait().
 * - Whatever a call waits for: when the agent sends nothing for 10 s
 *   while requests are pending, the library pings it; when nothing at all
 *   comes 20 s after that, the channel is declared dead and every pending
 *   call fails with AETH_EUNAVAILABLE ("nothing heard from the agent for
 *   N ms, not even the answer to a ping"). So a guest that halted or hung
 *   is noticed within 30 s even by aeth_exec_wait() on a command without
 *   a timeout. A busy guest keeps answering pings (the agent is PID 1).
 * After a deadline passed the guest is in an unknown state: stop or
 * delete the VM (aeth-worker kills its VMM and marks it failed).
 */
#ifndef AETHERIUM_EXEC_H
#define AETHERIUM_EXEC_H

#include "common.h"

AETH_BEGIN_DECLS

/* Also declared by vm.h; an identical typedef may be repeated. */
typedef struct aeth_vm aeth_vm;
/** A running command (see aeth_exec_start()). */
typedef struct aeth_exec aeth_exec;

/** Which output stream a chunk came from. */
typedef enum {
	AETH_STREAM_STDOUT = 1,
	AETH_STREAM_STDERR = 2
} aeth_exec_stream;

#define AETH_EXEC_OPTIONS_VERSION 2

/**
 * What to run. Every pointer is borrowed for the duration of the call
 * that takes the options (aeth_exec_start() copies what it keeps).
 */
typedef struct {
	unsigned int version;        /**< AETH_EXEC_OPTIONS_VERSION */
	/** NULL-terminated argv; argv[0] is looked up in PATH. Required. */
	const char *const *argv;
	/**
	 * NULL-terminated "NAME=value" entries added to (or replacing in)
	 * the agent's environment (PATH, HOME=/root, TERM); a bare "NAME"
	 * removes NAME. NULL: the agent's environment as is.
	 */
	const char *const *env;
	const char *cwd;             /**< working directory; NULL: "/" */
	const void *stdin_data;      /**< bytes fed to stdin, may be NULL */
	size_t stdin_len;
	/** Kill the command's process group after this long: SIGTERM,
	 *  then SIGKILL 2 s later. 0 = no timeout. */
	unsigned int timeout_ms;
	/** Keep at most this many bytes per stream; the rest is read and
	 *  dropped, and the *_truncated flag set. 0 = 1 MiB. */
	size_t output_limit;
	/** Run `/bin/sh -c argv[0]` (argv[1...] become $0, $1, ...). */
	int shell;
	/** Leave stdin open after stdin_data, for aeth_exec_write_stdin();
	 *  otherwise stdin reaches EOF after stdin_data. */
	int keep_stdin_open;
	/* Version 2. */
	/**
	 * Run the command as this user id in the guest, -1 (the default):
	 * as the agent's user (root). The agent sets the supplementary
	 * groups to the gid alone, then the gid, then the uid, before it
	 * enters `cwd` and runs the command; a failure is reported as a
	 * command that could not start (exit 127, exec_errno). Needs a
	 * guest agent of protocol level 2 (AETH_EINVALID otherwise, before
	 * anything runs). 0..4294967294.
	 */
	int64_t uid;
	/** The group id, -1 (the default): the agent's (root's, 0). */
	int64_t gid;
} aeth_exec_options;

#define AETH_EXEC_OPTIONS_INIT \
	{AETH_EXEC_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, -1, -1}

/**
 * Initialise `opts` for `version` as AETH_EXEC_OPTIONS_INIT does: the fields that
 * version has (AETH_EXEC_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_exec_options_init(aeth_exec_options *opts, unsigned int version);

/** How long after its timeout_ms a command's exit report may come before
 *  the wait gives up (AETH_ETIMEOUT): the agent's 2 s from SIGTERM to
 *  SIGKILL plus 3 s for the report. Counted from the agent's confirmation
 *  of the start. */
#define AETH_EXEC_WAIT_GRACE_MS 5000

/** How a command ended, and what it printed. Free with
 *  aeth_exec_result_free(). Only the library allocates these; `version`
 *  (AETH_EXEC_RESULT_VERSION when this header was current) tells a
 *  program which fields the library filled (docs/api.md). */
typedef struct {
	unsigned int version;
	int exit_code;        /**< exit status, or -1 if killed by a signal */
	int term_signal;      /**< the signal that killed it, or 0 */
	int timed_out;        /**< 1 if timeout_ms killed it */
	int stdout_truncated; /**< 1 if output past output_limit was dropped */
	int stderr_truncated;
	/** Output, NUL-terminated (the NUL is not counted in the length);
	 *  never NULL from aeth_vm_exec(), NULL from aeth_vm_exec_stream()
	 *  and for output already taken with aeth_exec_next(). Owned by
	 *  the result. */
	char *stdout_data;
	size_t stdout_len;
	char *stderr_data;
	size_t stderr_len;
	int64_t duration_ms;  /**< from start to exit, measured in the guest */
	/** errno of a command that could not be started (exit_code 127),
	 *  else 0. */
	int exec_errno;
} aeth_exec_result;

#define AETH_EXEC_RESULT_VERSION 1

/**
 * Called for each chunk of output, in order per stream, on the thread
 * that called aeth_vm_exec_stream(). `data` is borrowed for the call.
 * Return 0 to go on, non-zero to kill the command (SIGKILL).
 */
typedef int (*aeth_exec_output_cb)(aeth_exec_stream stream, const void *data,
				   size_t len, void *userdata);

/**
 * Run a command to its end and collect its output. On success (0) *out
 * is the caller's (aeth_exec_result_free()), whatever the command's exit
 * status. Fails with AETH_EINVALID (no argv), AETH_ESTATE (VM not
 * running), AETH_EUNAVAILABLE (the agent's channel died, or the agent
 * went silent: see "Deadlines" above), AETH_ETIMEOUT (no exit report
 * within timeout_ms + AETH_EXEC_WAIT_GRACE_MS). Thread-safe.
 */
AETH_API int aeth_vm_exec(aeth_exec_result **out, aeth_vm *vm,
			  const aeth_exec_options *opts);

/**
 * As aeth_vm_exec(), but hand each output chunk to `cb` as it arrives
 * instead of collecting it; the result's data fields are NULL. `out`
 * may be NULL if the caller does not want the result.
 */
AETH_API int aeth_vm_exec_stream(aeth_exec_result **out, aeth_vm *vm,
				 const aeth_exec_options *opts,
				 aeth_exec_output_cb cb, void *userdata);

/**
 * Start a command and return at once (after the agent confirmed the
 * start). *out is the caller's: finish with aeth_exec_wait() and/or
 * aeth_exec_free(). stdin_data, if any, is copied and fed as the
 * command reads it.
 */
AETH_API int aeth_exec_start(aeth_exec **out, aeth_vm *vm,
			     const aeth_exec_options *opts);

/**
 * Feed stdin (needs keep_stdin_open). Blocks until the agent accepted
 * all of `data` (it grants a window of 256 KiB) or `timeout_ms` passed
 * (0 = no limit): AETH_ETIMEOUT. If the command echoes its input, read
 * its output (aeth_exec_next()) in between or from another thread.
 */
AETH_API int aeth_exec_write_stdin(aeth_exec *e, const void *data,
				   size_t len, unsigned int timeout_ms);

/** Signal end of input on the command's stdin. */
AETH_API int aeth_exec_close_stdin(aeth_exec *e);

/**
 * Pull the next chunk of output. Returns 1 with *stream, *data, *len set
 * (data borrowed until the next call on `e`), 0 once the command has
 * exited and all output was taken (then call aeth_exec_wait()),
 * AETH_ETIMEOUT if nothing came within `timeout_ms` (0 = wait forever),
 * or a negative error. Not reading output stalls the command once its
 * window (256 KiB) is full: the agent stops reading its pipes.
 */
AETH_API int aeth_exec_next(aeth_exec_stream *stream, const void **data,
			    size_t *len, aeth_exec *e, unsigned int timeout_ms);

/** Send `signo` to the command's process group. */
AETH_API int aeth_exec_kill(aeth_exec *e, int signo);

/**
 * Wait for the command to exit and return its result (the caller's).
 * Output not taken with aeth_exec_next() is collected into it. Waits at
 * most timeout_ms + AETH_EXEC_WAIT_GRACE_MS from the start when the
 * command has a timeout (then AETH_ETIMEOUT), otherwise until it exits or
 * the channel dies (AETH_EUNAVAILABLE; a silent agent is declared dead
 * after 30 s, see "Deadlines" above).
 */
AETH_API int aeth_exec_wait(aeth_exec_result **out, aeth_exec *e);

/** Free `e`; a command still running is killed (SIGKILL). NULL ok. */
AETH_API void aeth_exec_free(aeth_exec *e);

/** Free a result. NULL ok. */
AETH_API void aeth_exec_result_free(aeth_exec_result *r);

/**
 * Write `len` bytes to `guest_path` (created or replaced atomically,
 * permission bits `mode`, e.g. 0644). The directory must exist. At most
 * 256 MiB: AETH_ETOOBIG. AETH_ENOTFOUND if the directory is missing.
 */
AETH_API int aeth_vm_file_put(aeth_vm *vm, const char *guest_path,
			      const void *data, size_t len, unsigned int mode);

/** aeth_vm_file_get()'s size limit when max_len is 0 (16 MiB). */
#define AETH_FILE_GET_MAX_DEFAULT 16777216

/**
 * Read `guest_path` into *data (malloc'd, the caller's, free with
 * aeth_free(); NUL-terminated, the NUL not counted in *len).
 * AETH_ETOOBIG if the file is larger than `max_len` (0 =
 * AETH_FILE_GET_MAX_DEFAULT, 16 MiB; at most 256 MiB), AETH_ENOTFOUND if
 * it does not exist. A larger file: aeth_vm_file_get_fd().
 */
AETH_API int aeth_vm_file_get(void **data, size_t *len, aeth_vm *vm,
			      const char *guest_path, size_t max_len);

/**
 * Read `guest_path` into the file descriptor `fd` (borrowed; written at
 * its current offset), chunk by chunk as the data arrives: memory stays
 * bounded (a few MiB) whatever the size. *len_out (may be NULL) gets the
 * byte count. AETH_ETOOBIG if the file is larger than `max_len` (0 = 256
 * MiB, the protocol's limit), AETH_ENOTFOUND if it does not exist,
 * AETH_EIO if writing to fd fails; deadlines as for aeth_vm_file_get().
 * On failure part of the file may have been written: the caller discards
 * it. Use a fd that does not block for long (a regular file): while its
 * writes lag, the VM's other calls wait too.
 */
AETH_API int aeth_vm_file_get_fd(size_t *len_out, aeth_vm *vm,
				 const char *guest_path, int fd,
				 size_t max_len);

/*
 * Directories and names in the guest (protocol level 2: with an older
 * guest agent these fail with AETH_EINVALID saying to rebuild the image).
 * Symlinks are never followed. Errors: AETH_ENOTFOUND (no such path, or a
 * missing parent), AETH_EEXISTS, AETH_EINVALID (not a directory, a
 * directory not empty), AETH_EIO (anything else, with the guest's words).
 * Each is one round trip, answered within the agent's reply deadline.
 */

/** The type and permission bits (st_mode) and size of `guest_path`. */
AETH_API int aeth_vm_file_stat(unsigned int *mode, uint64_t *size, aeth_vm *vm,
			       const char *guest_path);

/**
 * The entries of directory `guest_dir` (not "." and ".."), in the
 * guest's order: *count names in *names (NULL-terminated, free with
 * aeth_strarray_free()), their st_mode in *modes and sizes in *sizes
 * (arrays of *count, free with aeth_free()). AETH_ETOOBIG if the names
 * pass about 1 MiB (some 30000 entries).
 */
AETH_API int aeth_vm_file_list(char ***names, unsigned int **modes, uint64_t **sizes,
			       size_t *count, aeth_vm *vm, const char *guest_dir);

/** Make directory `guest_path` with permission bits `mode` (umask not
 *  applied); `parents`: also the missing parents, and an existing
 *  directory is fine (mkdir -p). */
AETH_API int aeth_vm_file_mkdir(aeth_vm *vm, const char *guest_path,
				unsigned int mode, int parents);

/** Remove a file, a symlink or an empty directory; `recursive`: a
 *  directory and all it holds (symlinks inside removed, not followed). */
AETH_API int aeth_vm_file_remove(aeth_vm *vm, const char *guest_path,
				 int recursive);

/** Round trip to the agent: 0, AETH_ETIMEOUT or AETH_EUNAVAILABLE. */
AETH_API int aeth_vm_ping(aeth_vm *vm, unsigned int timeout_ms);

AETH_END_DECLS

#endif
