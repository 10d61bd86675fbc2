/*
 * lib/vm/firecracker_vsock.h - the host side of Firecracker's hybrid vsock.
 *
 * Firecracker listens on the Unix socket `uds_path` given in PUT /vsock.
 * The host connects, writes "CONNECT <port>\n" and reads "OK <host port>\n"
 * once the guest accepted on that vsock port; from then on the stream is
 * the guest connection. While nothing listens on the port in the guest
 * (still booting), Firecracker closes the connection without a reply, so
 * the handshake is retried with a short backoff until a deadline.
 */
#ifndef AETH_VM_FIRECRACKER_VSOCK_H
#define AETH_VM_FIRECRACKER_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Asked between attempts; false stops the wait (the VMM died). */
typedef bool (*aeth__fc_alive_fn)(void *userdata);

/*
 * Connect to guest vsock `port` through `uds_path` until `deadline_ms`
 * (aeth__now_ms() clock). On success *fd_out is the connected stream
 * (blocking, O_CLOEXEC) positioned right after the "OK" line, and 0 is
 * returned. Errors: AETH_ETIMEOUT (the guest never accepted; the message
 * says how many attempts and what the last one saw), AETH_EUNAVAILABLE
 * (`alive` said the VMM is gone), AETH_EPROTO (an answer that is not
 * "OK <n>"), AETH_ETOOBIG (path too long for a Unix socket). `alive` may
 * be NULL; `userdata` is passed to it.
 */
int aeth__fc_vsock_connect(const char *uds_path, unsigned int port,
			   int64_t deadline_ms, aeth__fc_alive_fn alive,
			   void *userdata, int *fd_out);

#endif
