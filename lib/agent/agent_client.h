/*
 * lib/agent/agent_client.h - the library's side of docs/protocol.md: one
 * multiplexed client per connection to a guest agent.
 *
 * A reader thread per connection demultiplexes frames to the pending
 * requests; any number of threads may call these functions on one
 * aeth__agent at once. When the connection dies every pending and later
 * call fails with AETH_EUNAVAILABLE and a message naming the peer.
 * The functions mirror include/aetherium/exec.h with an aeth__agent in
 * place of the VM, so lib/vm/exec.c is a thin wrapper. No call waits
 * on the guest without a deadline: each request has its own, and the
 * reader thread declares a silent agent dead (client_priv.h, liveness).
 */
#ifndef AETH_AGENT_AGENT_CLIENT_H
#define AETH_AGENT_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aetherium/exec.h"

typedef struct aeth__agent aeth__agent;

/*
 * Start a client on the connected stream `fd` (taken: closed by
 * aeth__agent_free, also on failure). `peer_name` names the other end
 * in messages ("vm 1234..."). No bytes are exchanged until a call.
 */
int aeth__agent_open(aeth__agent **out, int fd, const char *peer_name);

/*
 * Say hello (protocol version check; the agent resets its session: any
 * command of an earlier connection is killed). *info_json (may be NULL)
 * gets the agent's JSON facts (kernel, agent_version, uptime_ms, ...),
 * malloc'd.
 */
int aeth__agent_hello(aeth__agent *a, unsigned int timeout_ms,
		      char **info_json);

/* The protocol version the agent said in hello-ok (0 before a hello). */
unsigned int aeth__agent_version(aeth__agent *a);

/* What makes a VM itself (docs/protocol.md, "setup"), for a VM booted or
 * restored from a snapshot: every restored copy of one guest gets its own. */
typedef struct {
	const char *hostname;   /* a host name: [A-Za-z0-9-], 1..63 */
	const char *vm_id;      /* the VM's id */
	int64_t time_ms;        /* the host's wall clock now */
	const void *entropy;    /* fresh random bytes for the guest's RNG */
	size_t entropy_len;     /* AETH__PROTO_ENTROPY_MIN .. _MAX */
} aeth__agent_identity;

/*
 * Send the identity: the agent mixes the entropy into the guest's RNG and
 * reseeds it, sets the wall clock, the host name and records the VM id.
 * AETH_EPROTO (without asking) when the agent predates protocol 2.
 */
int aeth__agent_setup(aeth__agent *a, const aeth__agent_identity *id,
		      unsigned int timeout_ms);

/* False once the connection died. */
bool aeth__agent_alive(aeth__agent *a);

int aeth__agent_ping(aeth__agent *a, unsigned int timeout_ms);

/* Ask the guest to power off; 0 when it acknowledged (or closed). */
int aeth__agent_shutdown(aeth__agent *a, unsigned int timeout_ms);

/* Stop the reader, close the fd, free. Calls on `a` must have ended. */
void aeth__agent_free(aeth__agent *a);

int aeth__agent_exec(aeth_exec_result **out, aeth__agent *a,
		     const aeth_exec_options *opts);
int aeth__agent_exec_stream(aeth_exec_result **out, aeth__agent *a,
			    const aeth_exec_options *opts,
			    aeth_exec_output_cb cb, void *userdata);
int aeth__agent_exec_start(aeth_exec **out, aeth__agent *a,
			   const aeth_exec_options *opts);
int aeth__exec_write_stdin(aeth_exec *e, const void *data, size_t len,
			   unsigned int timeout_ms);
int aeth__exec_close_stdin(aeth_exec *e);
int aeth__exec_next(aeth_exec *e, aeth_exec_stream *stream,
		    const void **data, size_t *len, unsigned int timeout_ms);
int aeth__exec_kill(aeth_exec *e, int signo);
int aeth__exec_wait(aeth_exec_result **out, aeth_exec *e);
void aeth__exec_free(aeth_exec *e);
void aeth__exec_result_free(aeth_exec_result *r);

int aeth__agent_file_put(aeth__agent *a, const char *guest_path,
			 const void *data, size_t len, unsigned int mode);
int aeth__agent_file_get(void **data, size_t *len, aeth__agent *a,
			 const char *guest_path, size_t max_len);
int aeth__agent_file_get_fd(aeth__agent *a, const char *guest_path, int fd,
			    size_t max_len, size_t *len_out);
/* client_fs.c: the public aeth_vm_file_stat/list/mkdir/remove (exec.h) */
int aeth__agent_file_stat(unsigned int *mode, uint64_t *size, aeth__agent *a,
			  const char *path);
int aeth__agent_file_list(char ***names, unsigned int **modes, uint64_t **sizes,
			  size_t *count, aeth__agent *a, const char *path);
int aeth__agent_file_mkdir(aeth__agent *a, const char *path, unsigned int mode,
			   int parents);
int aeth__agent_file_remove(aeth__agent *a, const char *path, int recursive);

#endif
