/*
 * lib/vm/firecracker_jail.c - Firecracker under Firecracker's own jailer
 * (firecracker_jail.h). The jailer's command line and behaviour follow
 * Firecracker's docs/jailer.md and src/jailer (env.rs, cgroup.rs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "vm/firecracker_disk.h"
#include "vm/firecracker_jail.h"
#include "vm/vm_internal.h"

#define FC_DEFAULT_CHROOT_BASE "/srv/jailer"
#define FC_JAIL_ARGS_MAX 48

int aeth__fc_jail_conf_init(aeth__jail_conf *c, const aeth_vmm_options *o,
			    const char *state_dir)
{
	const char *jailer = o->firecracker_jailer;
	const char *base = o->firecracker_chroot_base && *o->firecracker_chroot_base
			   ? o->firecracker_chroot_base
			   : FC_DEFAULT_CHROOT_BASE;
	char why[600];
	int rc;

	if ((rc = aeth__jail_conf_common(c, o, state_dir)) != 0)
		return rc;
	if (!jailer || !*jailer) {
		c->why_off = aeth__strdup("vmm.firecracker_jailer is not set: "
					  "Firecracker runs as this process's "
					  "user, without chroot or cgroup");
		return c->why_off ? 0 : AETH_ENOMEM;
	}
	if (!c->as_root)
		return aeth__error_set(AETH_EINVALID, "vmm.firecracker_jailer is "
				       "set, but Firecracker's jailer must be "
				       "started by root (it chroots, makes device "
				       "nodes and cgroups, and drops to a uid of "
				       "the VM's own): run the worker as root, or "
				       "unset vmm.firecracker_jailer");
	if (!(c->fc_jailer = aeth__find_program(jailer)))
		return aeth__error_set(AETH_EINVALID, "Firecracker's jailer '%s' "
				       "(vmm.firecracker_jailer) was not found or "
				       "is not executable: install the jailer of "
				       "the same Firecracker release as "
				       "firecracker and give its path",
				       jailer);
	if (!aeth__jail_binary_trusted(c->fc_jailer, why, sizeof(why)))
		return aeth__error_set(AETH_EINVALID, "refusing to run Firecracker's "
				       "jailer (vmm.firecracker_jailer) as root: %s",
				       why);
	if (base[0] != '/')
		return aeth__error_set(AETH_EINVALID, "vmm.firecracker_chroot_base "
				       "'%s' must be an absolute path", base);
	if ((rc = aeth__private_dir(base, "Firecracker chroot base "
				    "(vmm.firecracker_chroot_base)")) != 0)
		return rc;
	/* The jailer canonicalizes --chroot-base-dir: resolved once here,
	 * our paths are the ones it builds, with no link on the way. */
	if (!(c->fc_chroot_base = realpath(base, NULL)))
		return aeth__error_errno(AETH_EIO, "cannot resolve %s", base);
	c->on = true;
	if (c->cgroups)
		aeth__cgroup_probe(&c->cg);
	return 0;
}

bool aeth__fc_jail_wanted(const aeth__vm_record *r)
{
	return r->jail && r->jail->on && r->jail->fc_jailer;
}

static int host_path(aeth__vm_record *r, char **field, const char *root,
		     const char *inner)
{
	char *p = aeth__sprintf("%s%s", root, inner);

	if (!p)
		return AETH_ENOMEM;
	if (strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		int rc = aeth__error_set(AETH_ETOOBIG, "VM %s: %s is too long for a "
					 "Unix socket path (at most %zu bytes): "
					 "choose a shorter "
					 "vmm.firecracker_chroot_base", r->id, p,
					 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		free(p);
		return rc;
	}
	free(*field);
	*field = p;
	return 0;
}

int aeth__fc_jail_layout(aeth__fc_jail *j, aeth__vm_record *r)
{
	const char *bin = r->vmm_binary && *r->vmm_binary ? r->vmm_binary
							  : "firecracker";
	char *found = aeth__find_program(bin), *name;
	int rc;

	memset(j, 0, sizeof(*j));
	/* The jailer canonicalizes --exec-file and names the chroot after
	 * the result's file name: so do we. */
	j->exec_file = found ? realpath(found, NULL) : NULL;
	free(found);
	if (!j->exec_file)
		return aeth__error_set(AETH_ENOTFOUND, "firecracker backend: cannot "
				       "find \"%s\" for the jailer's --exec-file "
				       "(set the firecracker_binary option, or put "
				       "firecracker on PATH)", bin);
	name = strrchr(j->exec_file, '/') + 1;
	j->dir = aeth__sprintf("%s/%s/%s", r->jail->fc_chroot_base, name, r->id);
	j->root = j->dir ? aeth__sprintf("%s/root", j->dir) : NULL;
	j->pid_file = j->root ? aeth__sprintf("%s/%s.pid", j->root, name) : NULL;
	if (!j->pid_file)
		return AETH_ENOMEM;
	if ((rc = host_path(r, &r->api_sock, j->root, AETH__FC_JAIL_API_SOCK)) != 0 ||
	    (rc = host_path(r, &r->agent_sock, j->root, AETH__FC_JAIL_VSOCK)) != 0 ||
	    (rc = host_path(r, &r->serial_log, j->root, AETH__FC_JAIL_SERIAL)) != 0)
		return rc;
	return 0;
}

/*
 * Put the image file `src` at <root><inner> for the VM's uid: a hard link
 * of the very file opened (no symlink followed, regular files only) when
 * everyone may read it and it is on the same file system; else a copy
 * of the VM's own (reflink or sparse copy), owned by the uid. Chowning a
 * hard link would change the image itself, hence the two cases.
 */
static int place_file(aeth__vm_record *r, const char *root, const char *what,
		      const char *src, const char *inner, bool writable)
{
	char *dst = aeth__sprintf("%s%s", root, inner), proc[64];
	struct stat st;
	int fd, rc = 0;

	if (!dst)
		return AETH_ENOMEM;
	if ((fd = aeth__vm_open_image(r->id, what, src)) < 0) {
		free(dst);
		return fd;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (!writable && fstat(fd, &st) == 0 && (st.st_mode & S_IROTH) &&
	    linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) == 0)
		goto out;
	rc = aeth__fc_disk_clone_fd(fd, src, dst, NULL);
	if (rc == 0 && (chown(dst, r->jail_uid, r->jail_uid) != 0 ||
			chmod(dst, writable ? 0600 : 0400) != 0))
		rc = aeth__error_errno(AETH_EIO, "cannot give %s to uid %u", dst,
				       r->jail_uid);
out:
	close(fd);
	free(dst);
	return rc;
}

/* "<mount>/<parent>/<id>" for each controller's mount the jailer will
 * write to, once each, into r->cgroups (removed at cleanup: the jailer
 * leaves them behind). */
static int note_cgroups(aeth__vm_record *r, const aeth__jail_conf *c)
{
	const char *mounts[] = {c->cg.memory, c->cg.cpu, c->cg.pids};

	for (size_t i = 0; i < AETH__ARRAY_LEN(mounts); i++) {
		bool seen = false;

		for (size_t k = 0; k < i; k++)
			seen |= !strcmp(mounts[k], mounts[i]);
		if (seen)
			continue;
		r->cgroups[r->ncgroups] = aeth__sprintf("%s/%s/%s", mounts[i],
							c->cgroup_parent, r->id);
		if (!r->cgroups[r->ncgroups])
			return AETH_ENOMEM;
		r->ncgroups++;
	}
	return 0;
}

static bool file_exists(const char *dir, const char *sub, const char *file)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, file);
	return access(path, F_OK) == 0;
}

/*
 * The jailer's command line: its own flags, then after "--" firecracker's
 * (it passes --id itself). No --daemonize: we start it detached already,
 * and its and Firecracker's stdout/stderr stay in firecracker.log.
 * --new-pid-ns gives Firecracker a pid namespace of its own, as the QEMU
 * jail does; its pid is then in the pid file.
 */
static char **jailer_argv(const aeth__fc_jail *j, const aeth__vm_record *r)
{
	const aeth__jail_conf *c = r->jail;
	aeth__argv a;

	if (aeth__argv_init(&a, FC_JAIL_ARGS_MAX) != 0)
		return NULL;
#define ADD(s) aeth__argv_add(&a, (s))
#define ADDF(...) aeth__argv_addf(&a, __VA_ARGS__)
	ADD(c->fc_jailer);
	ADD("--id");
	ADD(r->id);
	ADD("--exec-file");
	ADD(j->exec_file);
	ADD("--uid");
	ADDF("%u", r->jail_uid);
	ADD("--gid");
	ADDF("%u", r->jail_uid);
	ADD("--chroot-base-dir");
	ADD(c->fc_chroot_base);
	ADD("--new-pid-ns");
	if (r->ncgroups) {
		aeth__cgroup_limits lim;

		aeth__jail_cgroup_limits(r, &lim);
		ADD("--cgroup-version");
		ADDF("%d", c->cg.version);
		ADD("--parent-cgroup");
		ADD(c->cgroup_parent);
		/* The same limits as the QEMU jail's cgroup.c writes itself. */
		ADD("--cgroup");
		ADDF("%s=%llu", c->cg.version == 2 ? "memory.max" :
			"memory.limit_in_bytes", lim.memory_bytes);
		if (c->cg.version == 1 &&
		    file_exists(c->cg.memory, ".", "memory.memsw.limit_in_bytes")) {
			ADD("--cgroup");
			ADDF("memory.memsw.limit_in_bytes=%llu", lim.memory_bytes);
		}
		if (c->cg.version == 2 &&
		    file_exists(c->cg.memory, c->cgroup_parent, "memory.swap.max")) {
			ADD("--cgroup");
			ADD("memory.swap.max=0");
		}
		ADD("--cgroup");
		if (c->cg.version == 2) {
			ADDF("cpu.max=%u 100000", lim.cpu_millicores * 100);
		} else {
			ADD("cpu.cfs_period_us=100000");
			ADD("--cgroup");
			ADDF("cpu.cfs_quota_us=%u", lim.cpu_millicores * 100);
		}
		ADD("--cgroup");
		ADDF("pids.max=%u", lim.pids);
	}
	ADD("--");
	ADD("--api-sock");
	ADD(AETH__FC_JAIL_API_SOCK);
#undef ADD
#undef ADDF
	return aeth__argv_done(&a);
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return aeth__error_errno(AETH_EIO, "cannot create %s", path);
}

int aeth__fc_jail_build(aeth__fc_jail *j, aeth__vm_record *r)
{
	const aeth__jail_conf *c = r->jail;
	char *parent = aeth__strdup(j->dir), *slash;
	int rc;

	if (!parent)
		return AETH_ENOMEM;
	/* A jail left by a crash: the jailer would refuse its pid file and
	 * device nodes (it creates them exclusively). */
	aeth__rm_rf(j->dir);
	slash = strrchr(parent, '/');
	*slash = '\0';
	rc = make_dir(parent);
	free(parent);
	if (rc == 0)
		rc = make_dir(j->dir);
	if (rc == 0)
		rc = make_dir(j->root);
	if (rc == 0)
		rc = aeth__jail_take_uid(r, c);
	if (rc == 0)
		rc = place_file(r, j->root, "kernel", r->kernel_path,
				AETH__FC_JAIL_KERNEL, false);
	if (rc == 0 && r->initrd_path)
		rc = place_file(r, j->root, "initramfs", r->initrd_path,
				AETH__FC_JAIL_INITRD, false);
	if (rc == 0 && r->rootfs_path) {
		rc = host_path(r, &r->overlay_path, j->root, AETH__FC_JAIL_DISK);
		if (rc == 0)
			rc = place_file(r, j->root, "root filesystem", r->rootfs_path,
					AETH__FC_JAIL_DISK, true);
	}
	if (rc == 0 && c->cgroups && c->cg.version)
		rc = note_cgroups(r, c);
	if (rc == 0 && !(j->argv = jailer_argv(j, r)))
		rc = AETH_ENOMEM;
	return rc;
}

/* The pid in the jailer's pid file, 0 while it is not (fully) there. */
static pid_t read_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	ssize_t n;
	long v;
	char *end;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	return v > 0 && v <= INT_MAX && (*end == '\0' || *end == '\n') ? (pid_t)v : 0;
}

int aeth__fc_jail_wait_pid(const aeth__fc_jail *j, aeth__vm_record *r,
			   pid_t jailer, int64_t deadline_ms)
{
	int64_t step = 2;

	for (;;) {
		pid_t pid = read_pid_file(j->pid_file);

		/* With --new-pid-ns the jailer writes the file and exits:
		 * look at the file once more after it is gone. */
		if (!pid && !aeth__vm_pid_alive(jailer, r->id, 0))
			pid = read_pid_file(j->pid_file);
		if (pid) {
			r->pid = pid;
			r->pid_starttime = aeth__vm_pid_starttime(pid);
			return 0;
		}
		if (!aeth__vm_pid_alive(jailer, r->id, 0)) {
			char *log = aeth__vm_file_tail(r->vmm_log, 1024);
			int rc = aeth__error_set(AETH_EUNAVAILABLE,
						 "Firecracker's jailer %s (pid %d) for VM %s "
						 "exited without starting %s: %s",
						 r->jail->fc_jailer, (int)jailer, r->id,
						 j->exec_file, log && *log ? log :
						 "(no output in its log)");

			free(log);
			return rc;
		}
		if (aeth__now_ms() >= deadline_ms)
			return aeth__error_set(AETH_ETIMEOUT, "Firecracker's jailer %s "
					       "(pid %d) for VM %s wrote no pid file "
					       "%s in time: see %s", r->jail->fc_jailer,
					       (int)jailer, r->id, j->pid_file,
					       r->vmm_log);
		aeth__sleep_ms(step);
		if (step < 32)
			step *= 2;
	}
}

const char *aeth__fc_jail_inner(const char *root, const char *host)
{
	size_t n = root ? strlen(root) : 0;

	if (!root || !host || strncmp(host, root, n) != 0 || host[n] != '/')
		return NULL;
	return host + n;
}

char *aeth__fc_jail_root_of(const aeth__vm_record *r)
{
	size_t n = r->api_sock ? strlen(r->api_sock) : 0;
	size_t k = strlen(AETH__FC_JAIL_API_SOCK), id = strlen(r->id);
	char *root;

	/* <base>/<name>/<id>/root/api.sock; unjailed: <state dir>/api.sock */
	if (n <= k + id + 6 ||
	    strcmp(r->api_sock + n - k, AETH__FC_JAIL_API_SOCK) != 0)
		return NULL;
	if (!(root = aeth__strdup(r->api_sock)))
		return NULL;
	root[n - k] = '\0';
	n -= k;
	if (n < id + 6 || strcmp(root + n - 5, "/root") != 0 ||
	    strncmp(root + n - 5 - id, r->id, id) != 0 ||
	    root[n - 6 - id] != '/') {
		free(root);
		return NULL;
	}
	return root;
}

void aeth__fc_jail_cleanup(aeth__vm_record *r)
{
	char *root = aeth__fc_jail_root_of(r);

	if (root) {
		/* <dir>/root -> <dir> = <base>/<name>/<id> */
		root[strlen(root) - 5] = '\0';
		aeth__rm_rf(root);
		free(root);
	}
	/* cgroups, then the uid: nothing of it is left by now */
	aeth__jail_cleanup(r);
}

void aeth__fc_jail_clear(aeth__fc_jail *j)
{
	free(j->exec_file);
	free(j->dir);
	free(j->root);
	free(j->pid_file);
	aeth_strarray_free(j->argv);
	memset(j, 0, sizeof(*j));
}
