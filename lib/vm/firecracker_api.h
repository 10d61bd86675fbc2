/*
 * lib/vm/firecracker_api.h - a small client of Firecracker's REST API,
 * which Firecracker serves over HTTP/1.1 on a Unix socket (--api-sock).
 * The calls follow Firecracker's swagger description (a copy is in
 * tests/firecracker/firecracker-api.yaml). Internal to the vm module.
 *
 * Errors: a 4xx answer gives AETH_EINVALID with Firecracker's own
 * fault_message in the error text; a socket that does not answer gives
 * AETH_EUNAVAILABLE, a slow one AETH_ETIMEOUT.
 *
 * Threading: one aeth__fc_api per thread at a time (it holds a curl easy
 * handle); different handles may be used by different threads.
 */
#ifndef AETH_VM_FIRECRACKER_API_H
#define AETH_VM_FIRECRACKER_API_H

#include <stdbool.h>

typedef struct aeth__fc_api aeth__fc_api;

/*
 * Pin the Unix socket at `path` without following a symbolic link as its
 * last component: a jailed Firecracker owns the directory its sockets
 * are in and could replace one with a link to a host socket, which we
 * would then talk to as root. Returns an O_PATH descriptor of the socket
 * (the caller closes it) and "/proc/self/fd/N" in `via`, to connect()
 * through while it is open; or -errno (-ENOTSOCK for anything but a
 * socket, -ENAMETOOLONG for a path too long for sun_path).
 */
int aeth__fc_sock_pin(const char *path, char via[32]);

/* connect() to the socket at `path` through aeth__fc_sock_pin(): a
 * connected descriptor (O_CLOEXEC) or -errno. */
int aeth__fc_unix_connect(const char *path);

/* A client for the API socket at `sock_path` (copied). Does not connect
 * yet. Each request must answer within `timeout_ms` (0 = 5000). */
int aeth__fc_api_open(aeth__fc_api **out, const char *sock_path,
		      unsigned int timeout_ms);
void aeth__fc_api_free(aeth__fc_api *api);

/*
 * One request. `body` is JSON text or NULL (no body). On 2xx returns 0
 * and, when `response` is not NULL, the answer body in *response
 * (malloc'd, "" if empty). On other statuses *response is untouched and
 * the message reads "firecracker API at SOCK: PUT /path: 400: <fault>".
 */
int aeth__fc_api_call(aeth__fc_api *api, const char *method,
		      const char *path, const char *body, char **response);

/* The HTTP status of the last call (0 when no answer came). */
long aeth__fc_api_last_status(const aeth__fc_api *api);

/* --- the calls the backend makes, with bodies built from typed values --- */

int aeth__fc_put_machine_config(aeth__fc_api *api, unsigned int vcpus,
				unsigned int mem_mib);
/* initrd_path and boot_args may be NULL (fields left out). */
int aeth__fc_put_boot_source(aeth__fc_api *api, const char *kernel_path,
			     const char *initrd_path, const char *boot_args);
int aeth__fc_put_drive(aeth__fc_api *api, const char *drive_id,
		       const char *path_on_host, bool is_root_device,
		       bool is_read_only);
/* PUT /network-interfaces/<iface_id> with a host tap device. */
int aeth__fc_put_network(aeth__fc_api *api, const char *iface_id,
			 const char *host_dev_name);
/* This API version's Vsock has guest_cid and uds_path (vsock_id is
 * deprecated, so it is not sent). */
int aeth__fc_put_vsock(aeth__fc_api *api, unsigned int guest_cid,
		       const char *uds_path);
/* PUT /serial: the guest's serial console to the file serial_out_path,
 * rate-limited to `bytes_per_s` after a first burst of `burst` bytes
 * (guest writes beyond it are dropped by Firecracker). */
int aeth__fc_put_serial(aeth__fc_api *api, const char *serial_out_path,
			unsigned int bytes_per_s, unsigned int burst);
/* action: "InstanceStart", "SendCtrlAltDel" or "FlushMetrics". */
int aeth__fc_put_action(aeth__fc_api *api, const char *action);
/* PATCH /vm: "Paused" or "Resumed". */
int aeth__fc_patch_vm(aeth__fc_api *api, const char *state);
/* PUT /snapshot/create: a Full snapshot of a paused VM, its state to
 * snapshot_path and its memory to mem_file_path. */
int aeth__fc_put_snapshot_create(aeth__fc_api *api, const char *snapshot_path,
				 const char *mem_file_path);
/* PUT /snapshot/load on a fresh Firecracker: the state of snapshot_path,
 * memory mapped privately from mem_file_path (mem_backend File), the
 * vsock's Unix socket moved to uds_path (vsock_override), resumed. */
int aeth__fc_put_snapshot_load(aeth__fc_api *api, const char *snapshot_path,
			       const char *mem_file_path, const char *uds_path);
/* GET /: the instance id and state ("Not started", "Running", "Paused");
 * either out pointer may be NULL; strings are malloc'd. */
int aeth__fc_get_instance(aeth__fc_api *api, char **id_out, char **state_out);

#endif
