/*
 * lib/vm/exec.c - the public exec API (include/aetherium/exec.h): a
 * thin layer that finds the VM's agent connection and calls the client.
 */
#include "agent/agent_client.h"
#include "internal.h"
#include "vm/vm_internal.h"

static const aeth_exec_options exec_defaults = AETH_EXEC_OPTIONS_INIT;
static const size_t exec_sizes[] = {
	AETH__END(aeth_exec_options, keep_stdin_open), /* 1 */
	sizeof(aeth_exec_options),                     /* 2: uid, gid */
};
static const aeth__versioned exec_options_v = {
	"aeth_exec_options", "AETH_EXEC_OPTIONS_INIT", AETH_EXEC_OPTIONS_VERSION,
	exec_sizes, &exec_defaults,
};

int aeth_exec_options_init(aeth_exec_options *opts, unsigned int version)
{
	return aeth__versioned_init(&exec_options_v, opts, version);
}

#define GET_AGENT(vm, a)                                                 \
	do {                                                             \
		int rc_;                                                 \
		if (!(vm))                                               \
			return aeth__error_set(AETH_EINVALID, "no VM given"); \
		if ((rc_ = aeth__vm_agent((vm), &(a))) != 0)             \
			return rc_;                                      \
	} while (0)

/* The caller's options as a current struct in *o (*opts then points to
 * it; NULL stays NULL: the client refuses it, naming argv), then the VM's
 * agent: options are checked before the VM is asked for anything. */
static int prepare(aeth__agent **a, aeth_exec_options *o,
		   const aeth_exec_options **opts, aeth_vm *vm)
{
	int rc;

	if (*opts) {
		if ((rc = aeth__versioned_copy(&exec_options_v, o, *opts)) != 0)
			return rc;
		*opts = o;
	}
	if (!vm)
		return aeth__error_set(AETH_EINVALID, "no VM given");
	return aeth__vm_agent(vm, a);
}

int aeth_vm_exec(aeth_exec_result **out, aeth_vm *vm,
		 const aeth_exec_options *opts)
{
	aeth_exec_options o;
	aeth__agent *a;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_vm_exec: out is NULL");
	*out = NULL;
	if ((rc = prepare(&a, &o, &opts, vm)) != 0)
		return rc;
	return aeth__agent_exec(out, a, opts);
}

int aeth_vm_exec_stream(aeth_exec_result **out, aeth_vm *vm,
			const aeth_exec_options *opts, aeth_exec_output_cb cb,
			void *userdata)
{
	aeth_exec_options o;
	aeth__agent *a;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = prepare(&a, &o, &opts, vm)) != 0)
		return rc;
	return aeth__agent_exec_stream(out, a, opts, cb, userdata);
}

int aeth_exec_start(aeth_exec **out, aeth_vm *vm,
		    const aeth_exec_options *opts)
{
	aeth_exec_options o;
	aeth__agent *a;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_exec_start: out is NULL");
	*out = NULL;
	if ((rc = prepare(&a, &o, &opts, vm)) != 0)
		return rc;
	return aeth__agent_exec_start(out, a, opts);
}

int aeth_exec_write_stdin(aeth_exec *e, const void *data, size_t len,
			  unsigned int timeout_ms)
{
	if (!e || (!data && len))
		return aeth__error_set(AETH_EINVALID, "write_stdin: no exec or data");
	return aeth__exec_write_stdin(e, data, len, timeout_ms);
}

int aeth_exec_close_stdin(aeth_exec *e)
{
	if (!e)
		return aeth__error_set(AETH_EINVALID, "close_stdin: no exec");
	return aeth__exec_close_stdin(e);
}

int aeth_exec_next(aeth_exec_stream *stream, const void **data, size_t *len,
		   aeth_exec *e, unsigned int timeout_ms)
{
	if (!e || !stream || !data || !len)
		return aeth__error_set(AETH_EINVALID, "exec_next: NULL argument");
	return aeth__exec_next(e, stream, data, len, timeout_ms);
}

int aeth_exec_kill(aeth_exec *e, int signo)
{
	if (!e)
		return aeth__error_set(AETH_EINVALID, "exec_kill: no exec");
	return aeth__exec_kill(e, signo);
}

int aeth_exec_wait(aeth_exec_result **out, aeth_exec *e)
{
	if (!out || !e)
		return aeth__error_set(AETH_EINVALID, "exec_wait: NULL argument");
	return aeth__exec_wait(out, e);
}

void aeth_exec_free(aeth_exec *e)
{
	aeth__exec_free(e);
}

void aeth_exec_result_free(aeth_exec_result *r)
{
	aeth__exec_result_free(r);
}

int aeth_vm_file_put(aeth_vm *vm, const char *guest_path, const void *data,
		     size_t len, unsigned int mode)
{
	aeth__agent *a;

	GET_AGENT(vm, a);
	return aeth__agent_file_put(a, guest_path, data, len, mode);
}

int aeth_vm_file_get(void **data, size_t *len, aeth_vm *vm,
		     const char *guest_path, size_t max_len)
{
	aeth__agent *a;

	if (!data || !len)
		return aeth__error_set(AETH_EINVALID, "file_get: NULL argument");
	*data = NULL;
	*len = 0;
	GET_AGENT(vm, a);
	return aeth__agent_file_get(data, len, a, guest_path, max_len);
}

int aeth_vm_file_get_fd(size_t *len_out, aeth_vm *vm, const char *guest_path,
			int fd, size_t max_len)
{
	aeth__agent *a;

	if (len_out)
		*len_out = 0;
	GET_AGENT(vm, a);
	return aeth__agent_file_get_fd(a, guest_path, fd, max_len, len_out);
}

int aeth_vm_ping(aeth_vm *vm, unsigned int timeout_ms)
{
	aeth__agent *a;

	GET_AGENT(vm, a);
	return aeth__agent_ping(a, timeout_ms);
}

int aeth_vm_file_stat(unsigned int *mode, uint64_t *size, aeth_vm *vm,
		      const char *guest_path)
{
	aeth__agent *a;

	if (!mode || !size)
		return aeth__error_set(AETH_EINVALID, "file_stat: NULL argument");
	GET_AGENT(vm, a);
	return aeth__agent_file_stat(mode, size, a, guest_path);
}

int aeth_vm_file_list(char ***names, unsigned int **modes, uint64_t **sizes,
		      size_t *count, aeth_vm *vm, const char *guest_dir)
{
	aeth__agent *a;

	if (!names || !modes || !sizes || !count)
		return aeth__error_set(AETH_EINVALID, "file_list: NULL argument");
	*names = NULL;
	*modes = NULL;
	*sizes = NULL;
	*count = 0;
	GET_AGENT(vm, a);
	return aeth__agent_file_list(names, modes, sizes, count, a, guest_dir);
}

int aeth_vm_file_mkdir(aeth_vm *vm, const char *guest_path, unsigned int mode,
		       int parents)
{
	aeth__agent *a;

	GET_AGENT(vm, a);
	return aeth__agent_file_mkdir(a, guest_path, mode, parents);
}

int aeth_vm_file_remove(aeth_vm *vm, const char *guest_path, int recursive)
{
	aeth__agent *a;

	GET_AGENT(vm, a);
	return aeth__agent_file_remove(a, guest_path, recursive);
}
