/*
 * aetherium/vm.h - microVM lifecycle: create, start, stop, delete, get, list.
 *
 * An aeth_vmm is the VM manager of one process: it knows the backend
 * ("qemu" or "firecracker"), the accelerator, where VM state lives (the
 * state dir) and where the guest image is (the image dir). An aeth_vm is a
 * handle on one VM. Every VM keeps its resources (VMM process, sockets,
 * serial log, disk overlay, tap name) recorded in
 * <state_dir>/vms/<id>/vm.json, so a later process can find it again with
 * aeth_vm_get() or clean it up with aeth_vmm_reap().
 *
 * A VM is "running" only once its guest agent has answered; the library
 * never waits with a fixed sleep. Every VMM process carries its VM's state
 * dir as AETH_VM_DIR in its environment (/proc/PID/environ), and its
 * command line names the VM id ("-name aeth-ID").
 *
 * Threading: an aeth_vmm may be shared by threads (its functions lock
 * internally). An aeth_vm handle may be used by several threads for execs
 * (include/aetherium/exec.h), but lifecycle calls on one handle
 * (start/stop/delete/free) must not race each other or a running exec.
 * Two processes must not drive the lifecycle of the same VM at once.
 */
#ifndef AETHERIUM_VM_H
#define AETHERIUM_VM_H

#include "common.h"

AETH_BEGIN_DECLS

typedef struct aeth_vmm aeth_vmm;
typedef struct aeth_vm aeth_vm;

/** Which accelerator QEMU uses. */
typedef enum {
	AETH_ACCEL_AUTO = 0, /**< KVM where it really boots guests, else TCG */
	AETH_ACCEL_KVM = 1,  /**< hardware virtualisation through /dev/kvm */
	AETH_ACCEL_TCG = 2   /**< QEMU's software emulation (slow, works anywhere) */
} aeth_accel;

/** Guest networking. */
typedef enum {
	AETH_NET_NONE = 0, /**< no network device (default) */
	AETH_NET_USER = 1, /**< QEMU user-mode networking, guest 10.0.2.15;
			     reaches only aeth_vm_options.net_allow */
	AETH_NET_TAP = 2   /**< an existing host tap device (tap_name), set up by the host */
} aeth_net_mode;

/**
 * Whether VMMs run confined (docs/security.md). With the jail, a VMM runs
 * under aeth-jailer: a uid of its own (when the caller is root), no
 * capabilities, its own pid, mount, network, IPC and UTS namespaces, a
 * root holding only /usr and a few device nodes, a cgroup with memory,
 * CPU and pids limits; QEMU's seccomp filter is on in every mode.
 */
typedef enum {
	AETH_JAIL_AUTO = 0, /**< on; for a caller that is not root, on where
			      user namespaces work, else off with a warning */
	AETH_JAIL_ON = 1,   /**< on, or aeth_vmm_open() fails saying why */
	AETH_JAIL_OFF = 2   /**< VMMs run as the caller, unconfined: only for
			      debugging; never with untrusted guests */
} aeth_jail_mode;

/** Lifecycle state of a VM (vms.status words in the store). */
typedef enum {
	AETH_VM_CREATING = 0, /**< defined, not started (or starting) */
	AETH_VM_RUNNING = 1,  /**< VMM alive and agent answered */
	AETH_VM_STOPPED = 2,  /**< VMM not running */
	AETH_VM_FAILED = 3,   /**< boot failed or the VMM died unexpectedly */
	AETH_VM_DELETED = 4   /**< resources removed */
} aeth_vm_state;

/** How a VM was made (aeth_vm_origin()). */
typedef enum {
	AETH_ORIGIN_COLD = 0,     /**< booted from its kernel */
	AETH_ORIGIN_SNAPSHOT = 1, /**< restored from the snapshot of its shape */
	AETH_ORIGIN_POOL = 2      /**< handed out ready from a worker's warm pool */
} aeth_origin;

/** Whether a manager starts VMs from snapshots (aeth_vmm_options). */
typedef enum {
	AETH_SNAPSHOTS_OFF = 0,  /**< every start boots the kernel */
	/** A VM whose shape can be restored (qemu: no root disk, no tap;
	 *  docs/vm.md "Snapshots") starts from the snapshot of its shape:
	 *  the first start of a shape boots a template VM once, saves it
	 *  and restores from it; later starts (in this or another process)
	 *  only restore. A snapshot that cannot be made or used falls back
	 *  to a cold boot, with a warning. */
	AETH_SNAPSHOTS_AUTO = 1
} aeth_snapshot_mode;

/** Options of aeth_vmm_open(). NULL fields mean the defaults given. */
typedef struct {
	unsigned int version;     /**< AETH_VMM_OPTIONS_VERSION */
	const char *backend;      /**< "qemu" (default) or "firecracker" */
	aeth_accel accel;         /**< qemu only; AETH_ACCEL_AUTO by default */
	/** VM state; default $AETH_STATE_DIR, else /run/aetherium for root,
	 *  else $XDG_RUNTIME_DIR/aetherium, else /tmp/aetherium-$UID. It must
	 *  be a directory only the caller can use (created 0700; an existing
	 *  one owned by someone else, with group/other bits or a symlink is
	 *  refused). Keep it short: Unix socket paths in it stay < 108 bytes. */
	const char *state_dir;
	/** Guest image; default ${AETH_IMAGE_DIR:-$HOME/.cache/aetherium/image}. */
	const char *image_dir;
	const char *kernel_path;  /**< default <image_dir>/vmlinux */
	const char *initrd_path;  /**< default <image_dir>/initrd.cpio */
	const char *rootfs_path;  /**< default none (initramfs only) */
	const char *qemu_binary;  /**< default "qemu-system-x86_64" from PATH */
	const char *firecracker_binary; /**< default "firecracker" from PATH */
	unsigned int boot_timeout_ms;   /**< 0 = the default of config key
					  vmm.boot_timeout_ms (60000); TCG
					  boots take ~2.5 s. The whole boot,
					  retry included (docs/vm.md) */
	/* version 2 */
	aeth_jail_mode jail;            /**< AETH_JAIL_AUTO by default */
	/** aeth-jailer; default $AETH_JAILER, else the one beside the
	 *  library (a build tree), else the installed one. Run as root it
	 *  must be owned by root and writable by nobody else. */
	const char *jailer_binary;
	/** Root only: VMMs get uids jail_uid_base .. + jail_uid_count - 1
	 *  (gid = uid), one per VM; 0 = 1900000000 and 65536. No user
	 *  account is needed for them. */
	unsigned int jail_uid_base;
	unsigned int jail_uid_count;
	/** Per-VM cgroups go below this path of each controller's mount;
	 *  NULL = "aetherium". */
	const char *cgroup_parent;
	/** non-zero: no per-VM cgroup (no memory, CPU, pids limits). */
	int no_cgroups;
	/** Where each VM's overlay directory (its disk's copy-on-write
	 *  layer) lives; NULL = /var/tmp/aetherium (root) or
	 *  /var/tmp/aetherium-$UID. Checked like the state dir. */
	const char *overlay_dir;
	/* version 3 */
	/** Firecracker only: start each Firecracker under Firecracker's own
	 *  `jailer` (a path, or a name looked up in PATH); NULL or "" = not
	 *  used. The caller must be root; each VMM then runs chrooted as a
	 *  uid of its own (jail_uid_base, jail_uid_count), in its own pid
	 *  namespace and, unless no_cgroups, in a cgroup below cgroup_parent.
	 *  Like jailer_binary it must be owned by root and writable by nobody
	 *  else. See docs/firecracker.md, "Running under Firecracker's
	 *  jailer". */
	const char *firecracker_jailer;
	/** The jailer's --chroot-base-dir; NULL = "/srv/jailer". Created 0700
	 *  if missing; checked like the state dir. Keep it short: the VMs'
	 *  sockets are in <it>/<firecracker's file name>/<VM id>/root/. */
	const char *firecracker_chroot_base;
	/* version 4 */
	/** AETH_SNAPSHOTS_OFF (default) or AETH_SNAPSHOTS_AUTO. */
	aeth_snapshot_mode snapshots;
	/** Where snapshots are kept (one directory per shape, a few tens of
	 *  MiB each: the template's memory, sparse); NULL =
	 *  <state_dir>/snapshots. Created 0700, checked like the state dir. */
	const char *snapshot_dir;
	/** qemu under TCG: the translation cache of each VM in MiB
	 *  (-accel tcg,tb-size=); 0 = 32. QEMU's own default grows up to
	 *  1 GiB per VM. */
	unsigned int tcg_tb_mb;
} aeth_vmm_options;

/* 2: jail, jailer_binary, jail_uid_base, jail_uid_count, cgroup_parent,
 * no_cgroups, overlay_dir appended
 * 3: firecracker_jailer, firecracker_chroot_base appended
 * 4: snapshots, snapshot_dir, tcg_tb_mb appended */
#define AETH_VMM_OPTIONS_VERSION 4
#define AETH_VMM_OPTIONS_INIT                                                  \
	{ AETH_VMM_OPTIONS_VERSION, NULL, AETH_ACCEL_AUTO, NULL, NULL, NULL,   \
	  NULL, NULL, NULL, NULL, 0, AETH_JAIL_AUTO, NULL, 0, 0, NULL, 0, NULL, \
	  NULL, NULL, AETH_SNAPSHOTS_OFF, NULL, 0 }

/**
 * Initialise `opts` for `version` as AETH_VMM_OPTIONS_INIT does: the fields that
 * version has (AETH_VMM_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_vmm_options_init(aeth_vmm_options *opts, unsigned int version);

/**
 * Open a VM manager. Resolves the defaults, creates the state dir and
 * picks the accelerator (auto: see aeth_accel_probe()) and whether VMMs
 * run jailed (AETH_EINVALID, saying why, when the jail is required and
 * cannot work here). Missing guest
 * image files are reported by aeth_vm_start(), not here, so that list,
 * get and reap work without an image. `opts` may be NULL (defaults); its
 * strings are copied. *out belongs to the caller (aeth_vmm_free()).
 * Returns 0, AETH_EINVALID (unknown backend, bad option) or AETH_EIO.
 */
AETH_API int aeth_vmm_open(aeth_vmm **out, const aeth_vmm_options *opts);

/**
 * Free the manager. VM handles made from it must be freed first. Running
 * VMs keep running. NULL is accepted.
 */
AETH_API void aeth_vmm_free(aeth_vmm *vmm);

/** The state dir in use. Borrowed from `vmm`. */
AETH_API const char *aeth_vmm_state_dir(const aeth_vmm *vmm);

/** The backend name in use ("qemu", "firecracker"). Borrowed, static. */
AETH_API const char *aeth_vmm_backend(const aeth_vmm *vmm);

/** The accelerator VMs of this manager use (never AETH_ACCEL_AUTO). */
AETH_API aeth_accel aeth_vmm_accel(const aeth_vmm *vmm);

/**
 * Whether this manager's VMMs run jailed: 1, or 0 with the reason in
 * *why (static or borrowed from vmm; may be NULL).
 */
AETH_API int aeth_vmm_jailed(const char **why, const aeth_vmm *vmm);

/**
 * Stop and remove every VM in the state dir whose VMM process is gone
 * (crashed, killed, machine rebooted), whose lifetime (ttl_s) has ended,
 * or whose record is unreadable, so that a restarted worker can
 * reconcile. With `all` non-zero, also stop
 * and remove running VMs. If `reaped_out` is not NULL it receives the ids
 * removed (NULL-terminated, the caller frees it with aeth_strarray_free()).
 * Returns 0 or a negative code (the first failure; it carries on).
 */
AETH_API int aeth_vmm_reap(char ***reaped_out, aeth_vmm *vmm, int all);

/** Options of aeth_vm_create(). NULL / 0 fields mean the defaults given. */
typedef struct {
	unsigned int version;     /**< AETH_VM_OPTIONS_VERSION */
	const char *name;         /**< free text; default the id */
	const char *id;           /**< a UUID; NULL = a new random one */
	unsigned int vcpus;       /**< 0 = config vmm.vcpus's default (1) */
	unsigned int memory_mb;   /**< 0 = config vmm.memory_mb's default (256) */
	aeth_net_mode net;        /**< AETH_NET_NONE by default */
	const char *tap_name;     /**< for AETH_NET_TAP */
	const char *rootfs_path;  /**< default the manager's rootfs_path (may be none) */
	unsigned int boot_timeout_ms; /**< 0 = the manager's */
	/* version 2 */
	const char *kernel_path;  /**< default the manager's */
	const char *initrd_path;  /**< default the manager's */
	/**
	 * AETH_NET_USER: what the guest may reach, NULL-terminated, at most
	 * 64 rules; NULL or empty = nothing (the guest has a network card
	 * and no destination). Rules: "host:PORT" (this host's loopback, the
	 * guest dials 10.0.2.2:PORT), "A.B.C.D[/N]:PORT", "*:PORT" (any
	 * public address, never private, loopback, link-local or this
	 * host's), "dns". Needs the jail; without it the guest reaches
	 * nothing and rules are refused (AETH_EINVALID).
	 */
	const char *const *net_allow;
	/** The VM's lifetime in seconds from its creation; 0 = none. Past
	 *  it, aeth_vmm_reap() removes the VM (a worker deletes its VMs
	 *  itself, recording why). aeth_vm_expires_ms() tells when. */
	unsigned int ttl_s;
} aeth_vm_options;

/* 2: kernel_path, initrd_path, net_allow, ttl_s appended */
#define AETH_VM_OPTIONS_VERSION 2
#define AETH_VM_OPTIONS_INIT                                                   \
	{ AETH_VM_OPTIONS_VERSION, NULL, NULL, 0, 0, AETH_NET_NONE, NULL,      \
	  NULL, 0, NULL, NULL, NULL, 0 }

/**
 * Initialise `opts` for `version` as AETH_VM_OPTIONS_INIT does: the fields that
 * version has (AETH_VM_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_vm_options_init(aeth_vm_options *opts, unsigned int version);

/**
 * Define a VM: allocates its id, creates <state_dir>/vms/<id>/ and writes
 * vm.json (state "creating"). Does not boot it. `opts` may be NULL.
 * *out belongs to the caller (aeth_vm_free()); `vmm` must outlive it.
 * Returns 0, AETH_EINVALID, AETH_EEXISTS (id in use) or AETH_EIO.
 */
AETH_API int aeth_vm_create(aeth_vm **out, aeth_vmm *vmm,
			    const aeth_vm_options *opts);

/**
 * Boot the VM. Returns 0 only once the guest agent answered hello; fails
 * within the boot deadline otherwise (AETH_ETIMEOUT, or the VMM's own
 * error), with the tail of the guest's serial log in the message and the
 * VMM killed. AETH_ESTATE if already running. Missing image files give
 * AETH_ENOTFOUND naming scripts/build-image.sh.
 */
AETH_API int aeth_vm_start(aeth_vm *vm);

/**
 * Stop the VM gracefully (the agent powers the guest off; the backend's
 * own power-down otherwise), killing the VMM if it has not exited within
 * `timeout_ms` (0 = 5000). The state dir stays; aeth_vm_start() boots it
 * again. Stopping a stopped VM succeeds.
 */
AETH_API int aeth_vm_stop(aeth_vm *vm, unsigned int timeout_ms);

/**
 * Stop the VM if needed and remove every resource it holds: VMM process,
 * sockets, overlay disk, state dir. The handle stays valid (state
 * AETH_VM_DELETED) and still needs aeth_vm_free().
 */
AETH_API int aeth_vm_delete(aeth_vm *vm);

/**
 * Release the handle and its agent connection. It does NOT stop a running
 * VM: the VMM keeps running and a later aeth_vm_get() (in this or another
 * process) re-attaches to it. NULL is accepted.
 */
AETH_API void aeth_vm_free(aeth_vm *vm);

/**
 * A handle on an existing VM recorded in the state dir, e.g. one started
 * by another process. If its VMM is alive the state is AETH_VM_RUNNING and
 * the agent is reconnected on first use; if the VMM died it is
 * AETH_VM_FAILED (or STOPPED after a clean stop). *out belongs to the
 * caller. AETH_ENOTFOUND for an unknown id, AETH_EINVALID for a broken record.
 */
AETH_API int aeth_vm_get(aeth_vm **out, aeth_vmm *vmm, const char *id);

/**
 * The ids of every VM recorded in the state dir, NULL-terminated, in no
 * particular order. *ids_out belongs to the caller: aeth_strarray_free().
 */
AETH_API int aeth_vm_list(char ***ids_out, aeth_vmm *vmm);

/* Accessors. Strings are borrowed from the handle; NULL when unset. */
AETH_API const char *aeth_vm_id(const aeth_vm *vm);
AETH_API const char *aeth_vm_name(const aeth_vm *vm);
/**
 * Current state; for a handle that believes it is running this checks
 * that the VMM process is still alive (and records FAILED if not).
 */
AETH_API aeth_vm_state aeth_vm_status(aeth_vm *vm);
/** "creating", "running", "stopped", "failed", "deleted" (static text). */
AETH_API const char *aeth_vm_state_name(aeth_vm_state state);
AETH_API const char *aeth_vm_backend(const aeth_vm *vm);
/** The accelerator actually used (never AUTO). */
AETH_API aeth_accel aeth_vm_accel(const aeth_vm *vm);
/** "auto", "kvm", "tcg" (static text). */
AETH_API const char *aeth_accel_name(aeth_accel accel);
/** The VMM's process id, or 0 when not running. */
AETH_API int aeth_vm_pid(const aeth_vm *vm);
AETH_API unsigned int aeth_vm_vcpus(const aeth_vm *vm);
AETH_API unsigned int aeth_vm_memory_mb(const aeth_vm *vm);
/**
 * How the VM was made: booted (AETH_ORIGIN_COLD), restored from a
 * snapshot (AETH_ORIGIN_SNAPSHOT) or taken from a worker's warm pool
 * (AETH_ORIGIN_POOL, set by the worker that handed it out).
 */
AETH_API aeth_origin aeth_vm_origin(const aeth_vm *vm);
/** "cold", "snapshot", "pool" (static text). */
AETH_API const char *aeth_origin_name(aeth_origin origin);
/**
 * How long the VM's last start took, in ms: aeth_vm_start() until the
 * agent answered (cold boot, or restore, including making the snapshot
 * when this start had to); for a VM from a warm pool, the hand-out. 0
 * before a start.
 */
AETH_API int64_t aeth_vm_start_ms(const aeth_vm *vm);
/** When the VM's lifetime ends, in ms since the Unix epoch; 0 = never. */
AETH_API int64_t aeth_vm_expires_ms(const aeth_vm *vm);
AETH_API const char *aeth_vm_kernel_path(const aeth_vm *vm);
AETH_API const char *aeth_vm_rootfs_path(const aeth_vm *vm);
/** The VMM control socket (QMP for qemu, the API socket for firecracker). */
AETH_API const char *aeth_vm_api_socket(const aeth_vm *vm);
/** The Unix socket the agent channel is reached through. */
AETH_API const char *aeth_vm_agent_socket(const aeth_vm *vm);
/**
 * The guest console's log file. QEMU: the console up to the moment the
 * agent answered hello (kernel and agent boot messages, what boot-failure
 * errors quote; empty for a VM restored from a snapshot, which did not
 * boot); after that QEMU keeps the console only in a 64 KiB ring
 * buffer (QMP `ringbuf-read` device "ser0" on aeth_vm_api_socket()), so a
 * guest writing to /dev/ttyS0 cannot fill the host's disk. Firecracker:
 * the VM's serial.log, rate-limited (a first 1 MiB, then 2 KiB/s) but
 * not bounded; a Firecracker without the /serial API writes the console
 * to firecracker.log, unlimited (docs/firecracker.md, "Guest console").
 */
AETH_API const char *aeth_vm_serial_log(const aeth_vm *vm);
AETH_API const char *aeth_vm_state_dir(const aeth_vm *vm);

/** What aeth_accel_probe() found on this host. */
typedef struct {
	unsigned int version;   /**< AETH_ACCEL_INFO_VERSION */
	int kvm_device;         /**< /dev/kvm opens and KVM_CREATE_VM works */
	int kvm_pvm;            /**< the KVM module is kvm_pvm (/sys/module/kvm_pvm) */
	int kvm_usable;         /**< KVM really runs guest code (probe passed) */
	int tcg_available;      /**< the QEMU binary was found */
	aeth_accel recommended; /**< what AETH_ACCEL_AUTO picks (KVM or TCG) */
	char detail[512];       /**< one line per finding, for humans */
} aeth_accel_info;

#define AETH_ACCEL_INFO_VERSION 1

/**
 * Find which accelerator really works here. KVM counts as usable only
 * when /dev/kvm works, the module is not kvm_pvm (PVM runs only kernels
 * built as PVM guests; stock guests fail under it) and a tiny real-mode
 * guest program runs to completion under KVM_RUN. `qemu_binary` may be
 * NULL (qemu-system-x86_64 from PATH). `info->version` must be set.
 * Returns 0 (findings in *info) or AETH_EINVALID.
 */
AETH_API int aeth_accel_probe(aeth_accel_info *info, const char *qemu_binary);

AETH_END_DECLS

#endif
