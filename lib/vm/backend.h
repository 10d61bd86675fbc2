/*
 * lib/vm/backend.h - the internal interface every VMM backend implements
 * (qemu.c, firecracker.c), and the per-VM
 * record they share with the generic lifecycle code in vm.c.
 *
 * Split of work:
 * - vm.c owns the record (fills spec fields, persists it to vm.json with
 *   aeth__vm_record_save(), allocates/free()s every string in it) and the
 *   boot readiness loop: after ops->start() it calls ops->agent_connect()
 *   and aeth__agent_open() + aeth__agent_hello() with what is left of the
 *   boot deadline. If that fails it calls ops->kill() and ops->cleanup()
 *   and puts the tail of the serial log in the error (aeth__vm_serial_tail).
 *   So a backend never talks the agent protocol except to connect.
 * - A backend spawns and controls the VMM process. It writes the paths it
 *   uses into the record (api_sock, agent_sock, serial_log, overlay_path,
 *   pid ...) BEFORE creating those resources, and calls
 *   aeth__vm_record_save() once the pid is known, so that a process that
 *   dies right after can still be reaped from vm.json.
 * - The VMM must survive the death of the process that started it (the
 *   worker re-attaches after a restart): spawn it in its own session and do
 *   not make it a child that we would have to wait() for.
 *
 * Paths: keep every Unix socket under rec->state_dir with short names
 * (sun_path is 108 bytes): "qmp.sock", "agent.sock", "api.sock", "vsock.sock".
 * aeth__vm_path() builds them and fails cleanly when too long.
 *
 * Deadlines are absolute times on aeth__now_ms()'s clock.
 */
#ifndef AETH_VM_BACKEND_H
#define AETH_VM_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "aetherium/vm.h"
#include "vm/cgroup.h"

/* Egress rules of one VM (lib/jail/jail_rules.h), at most. */
#define AETH__NET_ALLOW_MAX 64

struct aeth__jail_conf;

/* How one start makes the VM (set by vm.c / snapshot.c for that start,
 * not persisted). */
typedef enum {
	AETH__BOOT_COLD = 0,  /* from its kernel */
	AETH__BOOT_TEMPLATE,  /* from its kernel, to be snapshotted: QEMU's
				 RAM is a shared mapping of ram_fd, so what
				 the guest wrote is in that memfd */
	AETH__BOOT_RESTORE    /* from a snapshot: QEMU's RAM a private
				 mapping of ram_fd (a sealed memfd holding
				 the template's memory), its device state
				 read from state_fd (-incoming) */
} aeth__boot_mode;

/* The spec (what was asked for) and state (what is running) of one VM. */
typedef struct aeth__vm_record {
	/* --- spec: set by vm.c at create, persisted --- */
	char id[37];            /* UUID text */
	char *name;
	char *backend;          /* "qemu", "firecracker" */
	aeth_accel accel;       /* resolved: KVM or TCG (qemu only) */
	unsigned int vcpus;
	unsigned int memory_mb;
	char *vmm_binary;       /* qemu-system-x86_64 / firecracker path or name */
	char *kernel_path;
	char *initrd_path;      /* may be NULL */
	char *rootfs_path;      /* may be NULL: initramfs only */
	aeth_net_mode net;
	char *tap_name;         /* AETH_NET_TAP only */
	char **net_allow;       /* AETH_NET_USER: egress rules, NULL-terminated
				   (lib/jail/jail_rules.h); NULL = nothing */
	char *cmdline;          /* kernel command line (vm.c builds it, see
				   aeth__vm_cmdline); backends may append */
	unsigned int boot_timeout_ms;
	char *state_dir;        /* <vmm state dir>/vms/<id> */
	int64_t created_ms;     /* wall clock */
	int64_t expires_ms;     /* wall clock; 0 = no lifetime */
	unsigned int tcg_tb_mb; /* TCG translation cache, MiB; 0 = QEMU's */
	/* The manager's confinement settings: set by vm.c on every record
	 * it hands a backend (not persisted; borrowed from the manager). */
	const struct aeth__jail_conf *jail;
	/* For one start (not persisted; ram_fd and state_fd are only read
	 * when boot_mode says so, and belong to the caller). */
	aeth__boot_mode boot_mode;
	int ram_fd;
	int state_fd;

	/* --- state: written by the backend, persisted --- */
	aeth_vm_state state;
	pid_t pid;              /* VMM pid, 0 when none */
	uint64_t pid_starttime; /* /proc/PID/stat field 22, against pid reuse */
	char *api_sock;         /* QMP socket / Firecracker API socket */
	char *agent_sock;       /* QEMU: chardev socket; FC: vsock uds_path */
	char *serial_log;       /* guest console output (QEMU: until the
				   agent is ready, see backend ready()) */
	char *vmm_log;          /* VMM's own stdout/stderr */
	char *overlay_path;     /* the VM's overlay directory (QEMU's TMPDIR:
				   its copy-on-write disk layer), NULL if none */
	char *error;            /* last failure, for the store's vms.error */
	aeth_origin origin;     /* how the last start made it */
	int64_t start_ms;       /* how long that took */
	char *snapshot;         /* the snapshot it was restored from (key) */
	char *pool;             /* a worker's warm pool holds it (the
				   worker's tag), NULL when not pooled */
	/* confinement (lib/vm/jail.c) */
	unsigned int jail_uid;  /* the VMM's own uid, 0 = none */
	pid_t helper_pid;       /* aeth-jailer staying as the egress relay */
	uint64_t helper_starttime;
	char *cgroups[AETH__CGROUP_MAX_DIRS]; /* the VM's cgroup directories */
	size_t ncgroups;
} aeth__vm_record;

typedef struct aeth__vm_backend {
	const char *name;

	/*
	 * Spawn the VMM for `rec` (state dir exists) and return as soon as it
	 * runs: rec->pid set and saved. Do not wait for the guest; vm.c does
	 * that through agent_connect(). On failure clean up what was started
	 * and return a negative code with the VMM's own error in the message.
	 */
	int (*start)(aeth__vm_record *rec, int64_t deadline_ms);

	/*
	 * Give a connected stream fd (O_CLOEXEC, blocking) to the guest
	 * agent's channel in *fd_out, retrying while the VMM or guest is not
	 * ready yet, until `deadline_ms`. Fail early (AETH_EUNAVAILABLE) when
	 * the VMM process died. Used for boot and for reconnects/reattach.
	 */
	int (*agent_connect)(aeth__vm_record *rec, int64_t deadline_ms,
			     int *fd_out);

	/*
	 * Optional (NULL = nothing to do): called once per boot, right after
	 * the agent answered hello and before the VM counts as running, i.e.
	 * before any command of a user runs in the guest. QEMU moves the
	 * guest console from serial.log to a bounded ring buffer here. A
	 * failure fails the boot.
	 */
	int (*ready)(aeth__vm_record *rec, int64_t deadline_ms);

	/*
	 * Ask the VMM to power the guest off (QMP system_powerdown,
	 * Firecracker SendCtrlAltDel) and wait until `deadline_ms` for it to
	 * exit. vm.c first tries the agent's shutdown request; this is the
	 * fallback. Returns 0 when the process is gone, AETH_ETIMEOUT if not.
	 */
	int (*powerdown)(aeth__vm_record *rec, int64_t deadline_ms);

	/* SIGKILL the VMM (if it is still ours: aeth__vm_pid_alive) and wait
	 * until it is gone. Never fails on an already dead VMM. */
	void (*kill)(aeth__vm_record *rec);

	/*
	 * Remove every runtime resource the VMM left (sockets, overlay, tap
	 * state, API files); the process must be gone. vm.c removes the state
	 * dir itself on delete. Must be idempotent.
	 */
	void (*cleanup)(aeth__vm_record *rec);

	/*
	 * Snapshots (optional: NULL when the backend has none; vm.c then
	 * always boots cold). snapshot_save: the VM was started with
	 * AETH__BOOT_TEMPLATE and its agent answered; stop it and write its
	 * state into the new private directory `dir` ("state", and "ram"
	 * unless the backend keeps memory in a memfd: QEMU's "ram" is
	 * written by snapshot.c from rec->ram_fd). The VMM may be gone
	 * afterwards. restore: after start() with AETH__BOOT_RESTORE and the
	 * agent's channel connected, load the state of snapshot `dir` and
	 * let the guest run, before `deadline_ms`.
	 */
	int (*snapshot_save)(aeth__vm_record *rec, const char *dir,
			     int64_t deadline_ms);
	int (*restore)(aeth__vm_record *rec, const char *dir, int64_t deadline_ms);
	/* true: restore needs rec->ram_fd (a sealed memfd of the snapshot's
	 * "ram", shared by every VM restored from it). */
	bool snapshot_memfd;
	/* true: vm.c connects the agent's channel before restore() (QEMU:
	 * the guest must find its host connected); false: after (the
	 * channel exists only once the snapshot is loaded: Firecracker). */
	bool connect_before_restore;

	/*
	 * After a process restart: rec was loaded from vm.json. Return true
	 * when rec->pid is still this VM's VMM (e.g. aeth__vm_pid_alive) so
	 * that vm.c reconnects through agent_connect().
	 */
	bool (*alive)(const aeth__vm_record *rec);
} aeth__vm_backend;

/* The backends compiled in; NULL-named lookup returns qemu. */
extern const aeth__vm_backend aeth__vm_backend_qemu;
extern const aeth__vm_backend aeth__vm_backend_firecracker;
const aeth__vm_backend *aeth__vm_backend_find(const char *name);

/* --- helpers for backends (lib/vm/record.c, lib/vm/proc.c) --- */

/* Write rec to <state_dir>/vm.json atomically (tmp + rename). */
int aeth__vm_record_save(const aeth__vm_record *rec);
/* Load <state_dir>/vm.json into a zeroed rec; AETH_ENOTFOUND if absent. */
int aeth__vm_record_load(aeth__vm_record *rec, const char *state_dir);
/* free() every string of rec (not rec itself) and zero it. */
void aeth__vm_record_clear(aeth__vm_record *rec);

/* "<rec->state_dir>/<name>" into a new string; AETH_ETOOBIG if it would
 * not fit a sockaddr_un (so it is safe for sockets). */
char *aeth__vm_path(const aeth__vm_record *rec, const char *name);
/* aeth__vm_path(rec, name) into *field (a string of rec), free()ing the
 * old value; on failure *field is left as it was. */
int aeth__vm_path_set(aeth__vm_record *rec, char **field, const char *name);

/* The last `max_bytes` of the serial log as text (malloc'd, never NULL
 * unless out of memory; "" when there is no log). */
char *aeth__vm_serial_tail(const aeth__vm_record *rec, size_t max_bytes);
/* The same for any file (e.g. rec->vmm_log). */
char *aeth__vm_file_tail(const char *path, size_t max_bytes);

/*
 * True when `pid` is alive, not a zombie, and its /proc/PID/cmdline
 * contains `id` (so a reused pid is never taken for our VMM). If
 * `starttime` is non-zero it must match /proc/PID/stat too.
 */
bool aeth__vm_pid_alive(pid_t pid, const char *id, uint64_t starttime);
/* /proc/PID/stat's starttime, 0 if unreadable. */
uint64_t aeth__vm_pid_starttime(pid_t pid);
/* SIGKILL pid if aeth__vm_pid_alive and wait (up to ~2 s) until gone. */
void aeth__vm_pid_kill(pid_t pid, const char *id, uint64_t starttime);
/* Wait until the pid is gone or deadline; 0 gone, AETH_ETIMEOUT. */
int aeth__vm_pid_wait_gone(pid_t pid, const char *id, uint64_t starttime,
			   int64_t deadline_ms);

/*
 * Spawn argv[0] (searched in PATH) detached: in a new session, not our
 * child (double fork, the middle process is reaped here), umask 077,
 * stdin from /dev/null, stdout+stderr appended to `log_path`, fds[i] as
 * descriptor 3 + i, every other fd closed; `envp` (NULL: ours) as its
 * environment. *pid_out is its pid. Fails with the exec error (e.g.
 * binary not found) read back through a CLOEXEC pipe.
 */
int aeth__vm_spawn(char *const argv[], char *const envp[], const char *log_path,
		   const int *fds, size_t nfds, pid_t *pid_out);

/* connect() a SOCK_STREAM Unix socket once; returns fd or -errno. */
int aeth__vm_unix_connect(const char *path);

#endif
