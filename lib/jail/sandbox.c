/*
 * lib/jail/sandbox.c - namespaces, the VMM's root and its credentials,
 * for aeth-jailer (jailer.h). Runs in the jailer and in its VMM-to-be
 * child, as root (or as the caller in a user namespace).
 *
 * The VMM's root is a tmpfs holding, read-only, /usr (binary, libraries,
 * QEMU's modules and firmware) and the top-level links or directories the
 * dynamic loader needs (/lib64 ...), /etc/ld.so.cache (and resolv.conf
 * for a profile with "dns"); a /dev with a few harmless nodes (plus
 * /dev/kvm when KVM is used); /proc of its own pid namespace; /var/tmp is
 * the VM's overlay directory, where QEMU keeps its copy-on-write disk
 * layer. Nothing else of the host is there: not /home, /root, /var, /run (with
 * the worker's state), the image directory (images come in as open
 * descriptors), nor other VMs' files.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/falloc.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail/jailer.h"

void jail_die(int err, const char *what)
{
	char msg[AETH__JAIL_STATUS_MAX - 64];
	int e = errno, n;

	n = snprintf(msg, sizeof(msg), "%s: %s", what, strerror(e));
	if (n > 0 && write(err, msg, (size_t)n < sizeof(msg) ? (size_t)n
							      : sizeof(msg) - 1) < 0) {
		/* the jailer sees the pipe close and reports that */
	}
	_exit(127);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

int jail_enter_userns(const char **what)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];

	*what = "unshare (user namespace)";
	if (unshare(CLONE_NEWUSER) != 0)
		return -1;
	*what = "writing the user namespace's id maps";
	if (write_file("/proc/self/setgroups", "deny") != 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned int)uid, (unsigned int)uid);
	if (write_file("/proc/self/uid_map", map) != 0)
		return -1;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned int)gid, (unsigned int)gid);
	return write_file("/proc/self/gid_map", map);
}

/* The mount flags a bind of `src` must keep (locked in a user namespace). */
static unsigned long kept_flags(const char *src)
{
	struct statvfs v;
	unsigned long f = 0;

	if (statvfs(src, &v) != 0)
		return 0;
	if (v.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (v.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (v.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (v.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	return f;
}

/* Bind `src` at `dst` (which exists) and remount it with `flags` added. */
static int bind(const char *src, const char *dst, unsigned long flags)
{
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
		return -1;
	return mount(NULL, dst, NULL,
		     MS_BIND | MS_REMOUNT | flags | kept_flags(src), NULL);
}

/* An empty file to bind a file or device node onto. */
static int touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static char *path_in(char *buf, size_t size, const char *root, const char *p)
{
	if ((size_t)snprintf(buf, size, "%s%s", root, p) >= size) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return buf;
}

/* The top-level entries the dynamic loader and /usr may need, as on the
 * host: a link stays a link (merged /usr), a directory is bound read-only. */
static int mirror_top(const char *root, const char **what)
{
	static const char *const names[] = {"/bin", "/sbin", "/lib", "/lib32",
					    "/lib64", "/libx32"};
	char dst[4096], target[4096];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stat st;
		ssize_t n;

		*what = names[i];
		if (lstat(names[i], &st) != 0)
			continue;
		if (!path_in(dst, sizeof(dst), root, names[i]))
			return -1;
		if (S_ISLNK(st.st_mode)) {
			n = readlink(names[i], target, sizeof(target) - 1);
			if (n < 0)
				return -1;
			target[n] = '\0';
			if (symlink(target, dst) != 0)
				return -1;
		} else if (S_ISDIR(st.st_mode)) {
			if (mkdir(dst, 0755) != 0 ||
			    bind(names[i], dst, MS_RDONLY | MS_NOSUID | MS_NODEV) != 0)
				return -1;
		}
	}
	return 0;
}

static int bind_file(const char *root, const char *p, unsigned long flags)
{
	char dst[4096];

	if (!path_in(dst, sizeof(dst), root, p) || touch(dst) != 0)
		return -1;
	return bind(p, dst, flags);
}

static int make_dev(const char *root, const jail_spec *s, const char **what)
{
	static const char *const safe[] = {"/dev/null", "/dev/zero", "/dev/full",
					   "/dev/random", "/dev/urandom"};
	char dst[4096];

	*what = "mkdir /dev";
	if (!path_in(dst, sizeof(dst), root, "/dev") || mkdir(dst, 0755) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]) + s->ndevs; i++) {
		const char *d = i < sizeof(safe) / sizeof(safe[0])
					? safe[i]
					: s->devs[i - sizeof(safe) / sizeof(safe[0])];

		*what = d;
		if (strncmp(d, "/dev/", 5) != 0 || strchr(d + 5, '/')) {
			errno = EINVAL; /* only /dev/NAME: no directories to make */
			return -1;
		}
		if (bind_file(root, d, MS_NOSUID | MS_NOEXEC) != 0)
			return -1;
	}
	return 0;
}

static int build_root(const jail_spec *s, const char *r, char *p, size_t np,
		      char *old, size_t nold, const char **what);

int jail_build_root(const jail_spec *s, const char **what)
{
	const char *r = s->root;
	char p[4096], old[4096];
	mode_t mask = umask(022); /* the modes below are meant as given */
	int rc;

	rc = build_root(s, r, p, sizeof(p), old, sizeof(old), what);
	umask(mask);
	return rc;
}

static int build_root(const jail_spec *s, const char *r, char *p, size_t np,
		      char *old, size_t nold, const char **what)
{
	*what = "making the mounts private";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	*what = "mounting the VMM's root (tmpfs)";
	if (mount("aeth-jail", r, "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=0755,size=1m,nr_inodes=256") != 0)
		return -1;
	*what = "/usr";
	if (!path_in(p, np, r, "/usr") || mkdir(p, 0755) != 0 ||
	    bind("/usr", p, MS_RDONLY | MS_NOSUID | MS_NODEV) != 0)
		return -1;
	if (mirror_top(r, what) != 0)
		return -1;
	*what = "/etc";
	if (!path_in(p, np, r, "/etc") || mkdir(p, 0755) != 0)
		return -1;
	*what = "/etc/ld.so.cache";
	if (access("/etc/ld.so.cache", R_OK) == 0 &&
	    bind_file(r, "/etc/ld.so.cache", MS_RDONLY | MS_NOSUID | MS_NODEV) != 0)
		return -1;
	*what = "/etc/resolv.conf";
	if (s->resolv_conf &&
	    bind_file(r, "/etc/resolv.conf", MS_RDONLY | MS_NOSUID | MS_NODEV) != 0)
		return -1;
	if (make_dev(r, s, what) != 0)
		return -1;
	*what = "mounting /proc";
	if (!path_in(p, np, r, "/proc") || mkdir(p, 0555) != 0 ||
	    mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
		return -1;
	/* QEMU puts snapshot=on layers in $TMPDIR, but turns "/tmp" into
	 * /var/tmp (a tmpfs /tmp is no place for disk images): use that */
	*what = "binding the overlay directory at /var/tmp";
	if (!path_in(p, np, r, "/var") || mkdir(p, 0755) != 0 ||
	    !path_in(p, np, r, "/var/tmp") || mkdir(p, 0700) != 0 ||
	    bind(s->tmp, p, MS_NOSUID | MS_NODEV | MS_NOEXEC) != 0)
		return -1;
	*what = "pivot_root";
	if (!path_in(old, nold, r, "/.old") || mkdir(old, 0700) != 0 ||
	    syscall(SYS_pivot_root, r, old) != 0 || chdir("/") != 0)
		return -1;
	*what = "detaching the host's mounts";
	if (umount2("/.old", MNT_DETACH) != 0 || rmdir("/.old") != 0)
		return -1;
	*what = "making the VMM's root read-only";
	return mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
		     NULL);
}

static int drop_capabilities(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	return (int)syscall(SYS_capset, &h, d);
}

int jail_drop_privileges(const jail_spec *s, bool switch_ids, const char **what)
{
	*what = "dropping the capability bounding set";
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return -1;
	if (switch_ids) {
		*what = "setgroups";
		if (setgroups(s->ngroups, s->groups) != 0)
			return -1;
		*what = "setresgid";
		if (setresgid(s->gid, s->gid, s->gid) != 0)
			return -1;
		*what = "setresuid";
		if (setresuid(s->uid, s->uid, s->uid) != 0)
			return -1;
	}
	*what = "clearing capabilities";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
	    errno != EINVAL)
		return -1;
	if (drop_capabilities() != 0)
		return -1;
	*what = "PR_SET_NO_NEW_PRIVS";
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

#if defined(__x86_64__)
#define JAIL_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define JAIL_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

int jail_ram_discard_filter(const char **what)
{
#ifdef JAIL_AUDIT_ARCH
	/* The mode is an int: its 32 bits are the low half of args[1]
	 * (little-endian on both architectures above). */
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, JAIL_AUDIT_ARCH, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fallocate, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
			 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};

	*what = "installing the seccomp filter of --ram-discard private";
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
#else
	*what = "--ram-discard private (not on this architecture)";
	errno = ENOSYS;
	return -1;
#endif
}
