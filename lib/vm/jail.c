/*
 * lib/vm/jail.c - confinement of a VMM, the library's side (jail.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "jail/jail.h"
#include "vm/backend.h"
#include "vm/jail.h"
#include "vm/handles.h"
#include "vm/vm_internal.h"

#ifndef AETH_LIBEXECDIR
#define AETH_LIBEXECDIR "/usr/local/libexec"
#endif

#define DEFAULT_UID_BASE 1900000000u
#define DEFAULT_UID_COUNT 65536u
#define VMM_PIDS_MAX 256

/* ---- the manager's settings ---- */

bool aeth__jail_binary_trusted(const char *path, char *why, size_t n)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
		snprintf(why, n, "%s is not an executable file", path);
		return false;
	}
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022)) {
		snprintf(why, n, "%s is owned by uid %u with mode %04o: only its "
			 "owner (root) may be able to write it", path,
			 (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
		return false;
	}
	return true;
}

/* Any object of this library, for dladdr() to say where the library is. */
static const char jailer_anchor = 0;

/* aeth-jailer: the option, $AETH_JAILER, beside this library (a build
 * tree: <build>/lib/jail/aeth-jailer), or the installed one. */
static char *find_jailer(const char *opt)
{
	const char *env = getenv("AETH_JAILER");
	Dl_info info;

	if (opt && *opt)
		return aeth__find_program(opt);
	if (env && *env)
		return aeth__find_program(env);
	if (dladdr(&jailer_anchor, &info) && info.dli_fname) {
		char *lib = realpath(info.dli_fname, NULL), *slash, *p = NULL;

		if (lib && (slash = strrchr(lib, '/'))) {
			*slash = '\0';
			p = aeth__sprintf("%s/jail/aeth-jailer", lib);
			if (p && access(p, X_OK) != 0) {
				free(p);
				p = NULL;
			}
		}
		free(lib);
		if (p)
			return p;
	}
	return aeth__find_program(AETH_LIBEXECDIR "/aetherium/aeth-jailer");
}

/* Can this process make the namespaces the jailer needs (a user
 * namespace first when it is not root)? In a child, so nothing changes
 * here. 0, or the errno of the unshare that failed. */
static int namespaces_work(bool as_root)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (!as_root && unshare(CLONE_NEWUSER) != 0)
			_exit(errno & 0xff);
		_exit(unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID |
			      CLONE_NEWIPC | CLONE_NEWUTS) == 0 ? 0 : errno & 0xff);
	}
	if (pid < 0)
		return errno;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
}

static bool userns_works(void)
{
	return namespaces_work(false) == 0;
}

static int jail_off(aeth__jail_conf *c, const char *fmt, ...) AETH__PRINTF(2, 3);
static int jail_off(aeth__jail_conf *c, const char *fmt, ...)
{
	va_list ap;

	c->on = false;
	free(c->why_off);
	va_start(ap, fmt);
	if (vasprintf(&c->why_off, fmt, ap) < 0)
		c->why_off = NULL;
	va_end(ap);
	return 0;
}

int aeth__jail_conf_common(aeth__jail_conf *c, const aeth_vmm_options *o,
			   const char *state_dir)
{
	memset(c, 0, sizeof(*c));
	c->as_root = geteuid() == 0;
	c->uid_base = o->jail_uid_base ? o->jail_uid_base : DEFAULT_UID_BASE;
	c->uid_count = o->jail_uid_count ? o->jail_uid_count : DEFAULT_UID_COUNT;
	if (c->uid_base == 0 || c->uid_count > 0xfffffffeu - c->uid_base)
		return aeth__error_set(AETH_EINVALID, "jail uid range %u + %u is "
				       "not within 1 .. 4294967294",
				       c->uid_base, c->uid_count);
	c->cgroups = !o->no_cgroups;
	c->cgroup_parent = aeth__strdup(o->cgroup_parent && *o->cgroup_parent ?
					o->cgroup_parent : "aetherium");
	c->uids_dir = aeth__sprintf("%s/uids", state_dir);
	if (!c->cgroup_parent || !c->uids_dir)
		return AETH_ENOMEM;
	if (strstr(c->cgroup_parent, "..") || c->cgroup_parent[0] == '/')
		return aeth__error_set(AETH_EINVALID, "vmm.cgroup_parent '%s' must "
				       "be a relative path below the cgroup "
				       "mounts, without '..'", c->cgroup_parent);
	return 0;
}

int aeth__jail_conf_init(aeth__jail_conf *c, const aeth_vmm_options *o,
			 const char *state_dir)
{
	aeth_jail_mode mode = o->jail;
	char why[600];
	int rc;

	if ((rc = aeth__jail_conf_common(c, o, state_dir)) != 0)
		return rc;
	c->overlay_base = o->overlay_dir && *o->overlay_dir
				  ? aeth__strdup(o->overlay_dir)
				  : aeth__vmm_default_overlay_dir();
	if (!c->overlay_base)
		return AETH_ENOMEM;
	if ((rc = aeth__private_dir(c->overlay_base,
				    "overlay dir (vmm.overlay_dir)")) != 0)
		return rc;
	if (mode == AETH_JAIL_OFF)
		return jail_off(c, "vmm.jail is off");
	if (mode > AETH_JAIL_OFF)
		return aeth__error_set(AETH_EINVALID, "unknown jail mode %d",
				       (int)mode);
	c->jailer = find_jailer(o->jailer_binary);
	if (!c->jailer) {
		if (mode == AETH_JAIL_AUTO && !c->as_root)
			return jail_off(c, "aeth-jailer was not found");
		return aeth__error_set(AETH_EINVALID, "aeth-jailer was not found "
				       "(set $AETH_JAILER or vmm.jailer to its path; "
				       "it is installed in %s/aetherium): VMMs are "
				       "not started unconfined unless vmm.jail is off",
				       AETH_LIBEXECDIR);
	}
	if (c->as_root && !aeth__jail_binary_trusted(c->jailer, why, sizeof(why)))
		return aeth__error_set(AETH_EINVALID, "refusing to run aeth-jailer "
				       "as root: %s", why);
	if (!c->as_root && !userns_works()) {
		if (mode == AETH_JAIL_ON)
			return aeth__error_set(AETH_EINVALID, "vmm.jail is on, but "
					       "this host does not let an "
					       "unprivileged process create user "
					       "namespaces: run the worker as root, "
					       "or set vmm.jail: off");
		return jail_off(c, "not root, and this host allows no user "
				"namespaces");
	}
	c->on = true;
	if (c->cgroups && c->as_root)
		aeth__cgroup_probe(&c->cg);
	return 0;
}

void aeth__jail_conf_clear(aeth__jail_conf *c)
{
	free(c->jailer);
	free(c->uids_dir);
	free(c->cgroup_parent);
	free(c->overlay_base);
	free(c->why_off);
	free(c->fc_jailer);
	free(c->fc_chroot_base);
	memset(c, 0, sizeof(*c));
}

/* ---- one VM ---- */

static char *uid_file(const aeth__jail_conf *c, unsigned int uid)
{
	return aeth__sprintf("%s/%u", c->uids_dir, uid);
}

/* The VM whose id is in a uid file is gone: its state dir is. */
static bool uid_file_stale(const char *path, const aeth__vm_record *r)
{
	char id[40] = "", *dir;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;
	bool stale;

	if (fd < 0)
		return false;
	n = read(fd, id, sizeof(id) - 1);
	close(fd);
	if (n < 36 || !aeth__uuid_valid((id[36] = '\0', id)))
		return true;
	/* <vms dir>/<id>: r->state_dir is <vms dir>/<our id> */
	dir = aeth__sprintf("%.*s/%s", (int)(strlen(r->state_dir) - 37),
			    r->state_dir, id);
	stale = dir && access(dir, F_OK) != 0 && errno == ENOENT;
	free(dir);
	return stale;
}

/* An O_EXCL file per uid, starting from a point that depends on the VM
 * id so that VMs rarely probe the same files. */
int aeth__jail_take_uid(aeth__vm_record *r, const aeth__jail_conf *c)
{
	unsigned int start = 0;
	int rc;

	if ((rc = aeth__private_dir(c->uids_dir, "uid directory")) != 0)
		return rc;
	for (const char *p = r->id; *p; p++)
		start = start * 31 + (unsigned char)*p;
	for (unsigned int i = 0; i < c->uid_count; i++) {
		unsigned int uid = c->uid_base + (start + i) % c->uid_count;
		char *path = uid_file(c, uid);
		int fd;

		if (!path)
			return AETH_ENOMEM;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  0600);
		if (fd < 0 && errno == EEXIST && uid_file_stale(path, r)) {
			unlink(path);
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
					O_NOFOLLOW, 0600);
		}
		free(path);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return aeth__error_errno(AETH_EIO, "cannot reserve a uid in %s",
						 c->uids_dir);
		if (write(fd, r->id, 36) != 36) {
			close(fd);
			return aeth__error_errno(AETH_EIO, "cannot reserve uid %u", uid);
		}
		close(fd);
		r->jail_uid = uid;
		return 0;
	}
	return aeth__error_set(AETH_EBUSY, "all %u VMM uids from %u are in use "
			       "(vmm.jail_uid_count)", c->uid_count, c->uid_base);
}

static int make_overlay_dir(aeth__vm_record *r, const aeth__jail_conf *c)
{
	char *dir = aeth__sprintf("%s/%s", c->overlay_base, r->id);

	if (!dir)
		return AETH_ENOMEM;
	free(r->overlay_path);
	r->overlay_path = dir;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return aeth__error_errno(AETH_EIO, "cannot create the VM's overlay "
					 "directory %s", dir);
	if (r->jail_uid && chown(dir, r->jail_uid, r->jail_uid) != 0)
		return aeth__error_errno(AETH_EIO, "cannot give %s to uid %u", dir,
					 r->jail_uid);
	return 0;
}

void aeth__jail_cgroup_limits(const aeth__vm_record *r, aeth__cgroup_limits *lim)
{
	lim->memory_bytes = ((unsigned long long)r->memory_mb + AETH__VMM_OVERHEAD_MB)
			    << 20;
	/* each vCPU a core, and half a core for the VMM's own threads */
	lim->cpu_millicores = r->vcpus * 1000 + 500;
	lim->pids = VMM_PIDS_MAX;
}

static int make_cgroup(aeth__vm_record *r, const aeth__jail_conf *c)
{
	aeth__cgroup_limits lim;

	aeth__jail_cgroup_limits(r, &lim);
	return aeth__cgroup_create(&c->cg, c->cgroup_parent, r->id, &lim,
				   r->cgroups, &r->ncgroups);
}

/* "ok VMM RELAY" or "error ..." from the jailer, within the deadline. */
static int read_status(aeth__vm_record *r, int fd, int64_t deadline_ms)
{
	char line[AETH__JAIL_STATUS_MAX + 1];
	size_t got = 0;
	int vmm = 0, relay = 0;

	while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = deadline_ms - aeth__now_ms();
		ssize_t n;

		if (left <= 0)
			return aeth__error_set(AETH_ETIMEOUT, "aeth-jailer did not "
					       "report on VM %s in time", r->id);
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		n = read(fd, line + got, sizeof(line) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	line[got] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (sscanf(line, "ok %d %d", &vmm, &relay) == 2 && vmm > 0 && relay >= 0) {
		r->pid = vmm;
		r->pid_starttime = aeth__vm_pid_starttime(r->pid);
		r->helper_pid = relay;
		r->helper_starttime = relay ? aeth__vm_pid_starttime(relay) : 0;
		return 0;
	}
	for (char *p = line; *p; p++) /* it is our program, but be tidy */
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	if (!strncmp(line, "error ", 6))
		return aeth__error_set(AETH_EIO, "cannot start the VMM of VM %s in "
				       "its jail: %s", r->id, line + 6);
	return aeth__error_set(AETH_EIO, "aeth-jailer for VM %s ended without "
			       "reporting (see %s)", r->id,
			       r->vmm_log ? r->vmm_log : "its log");
}

int aeth__argv_init(aeth__argv *a, size_t max)
{
	a->n = 0;
	a->max = max;
	a->bad = false;
	a->v = calloc(max + 1, sizeof(*a->v));
	return a->v ? 0 : AETH_ENOMEM;
}

static void argv_put(aeth__argv *a, char *s)
{
	if (!s || a->n >= a->max) {
		free(s);
		a->bad = true;
		return;
	}
	a->v[a->n++] = s;
}

void aeth__argv_add(aeth__argv *a, const char *s)
{
	argv_put(a, aeth__strdup(s));
}

void aeth__argv_addf(aeth__argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	argv_put(a, s);
}

char **aeth__argv_done(aeth__argv *a)
{
	char **v = a->v;

	a->v = NULL;
	if (a->bad) {
		aeth_strarray_free(v);
		return NULL;
	}
	return v;
}

/* aeth-jailer's command line for r, then the VMM's. */
static char **jailer_argv(const aeth__vm_record *r, const aeth__jail_conf *c,
			  char *const vmm_argv[], size_t nfds, const char *root,
			  const char *exe)
{
	aeth__argv a;
	size_t nv = 0;
	struct stat kvm;

	while (vmm_argv[nv])
		nv++;
	if (aeth__argv_init(&a, 32 + 2 * AETH__CGROUP_MAX_DIRS +
			    2 * AETH__NET_ALLOW_MAX + nv) != 0)
		return NULL;
#define ADD(s) aeth__argv_add(&a, (s))
#define ADDF(...) aeth__argv_addf(&a, __VA_ARGS__)
	ADD(c->jailer);
	ADD("--id");
	ADD(r->id);
	ADD("--exec");
	ADD(exe);
	ADD("--root");
	ADD(root);
	ADD("--tmp");
	ADD(r->overlay_path);
	ADD("--vm-dir");
	ADD(r->state_dir);
	if (c->as_root) {
		ADD("--uid");
		ADDF("%u", r->jail_uid);
		ADD("--gid");
		ADDF("%u", r->jail_uid);
	}
	if (r->accel == AETH_ACCEL_KVM) {
		ADD("--dev");
		ADD("/dev/kvm");
		if (c->as_root && stat("/dev/kvm", &kvm) == 0 && kvm.st_gid) {
			ADD("--groups");
			ADDF("%u", (unsigned int)kvm.st_gid);
		}
	}
	for (size_t i = 0; i < r->ncgroups; i++) {
		ADD("--cgroup");
		ADD(r->cgroups[i]);
	}
	ADD("--fds");
	ADDF("%zu", nfds);
	for (size_t i = 0; r->net == AETH_NET_USER && r->net_allow &&
			   r->net_allow[i]; i++) {
		ADD("--allow");
		ADD(r->net_allow[i]);
	}
	if (r->boot_mode == AETH__BOOT_RESTORE) {
		/* its memory is a private mapping of a sealed memfd (qemu.c:
		 * free page reporting) */
		ADD("--ram-discard");
		ADD("private");
	}
	ADD("--");
	for (size_t i = 0; i < nv; i++)
		ADD(vmm_argv[i]);
#undef ADD
#undef ADDF
	return aeth__argv_done(&a);
}

static int spawn_jailed(aeth__vm_record *r, const aeth__jail_conf *c,
			char *const argv[], const int *fds, size_t nfds,
			int64_t deadline_ms)
{
	int all[1 + AETH__JAIL_MAX_FDS], st[2] = {-1, -1}, rc;
	char *root = aeth__sprintf("%s/root", r->state_dir);
	char *exe = aeth__find_program(argv[0]);
	char **jv = NULL;
	pid_t jailer = 0;

	if (!root)
		return AETH_ENOMEM;
	if (!exe) {
		rc = aeth__error_set(AETH_ENOTFOUND, "cannot run '%s': not found on "
				     "PATH (install it, e.g. apt-get install "
				     "qemu-system-x86, or set its path)", argv[0]);
		goto out;
	}
	if (mkdir(root, 0700) != 0 && errno != EEXIST) {
		rc = aeth__error_errno(AETH_EIO, "cannot create %s", root);
		goto out;
	}
	if ((c->as_root && (rc = aeth__jail_take_uid(r, c)) != 0) ||
	    (rc = make_overlay_dir(r, c)) != 0 ||
	    (c->cgroups && c->as_root && (rc = make_cgroup(r, c)) != 0))
		goto out;
	if (!(jv = jailer_argv(r, c, argv, nfds, root, exe))) {
		rc = AETH_ENOMEM;
		goto out;
	}
	if (pipe2(st, O_CLOEXEC) != 0) {
		rc = aeth__error_errno(AETH_EIO, "pipe for aeth-jailer");
		goto out;
	}
	all[0] = st[1];
	memcpy(all + 1, fds, nfds * sizeof(int));
	/* none of the worker's environment (its database and Redis URLs
	 * may hold passwords) for the jailer, which stays as the relay */
	rc = aeth__vm_spawn(jv, (char *const[]){"PATH=/usr/bin:/bin", NULL},
			    r->vmm_log, all, nfds + 1, &jailer);
	close(st[1]);
	st[1] = -1;
	if (rc == 0)
		rc = read_status(r, st[0], deadline_ms);
	/* a jailer that did not report may have started QEMU already: they
	 * share the jailer's process group (its own session) */
	if (rc != 0 && jailer > 0)
		kill(-jailer, SIGKILL);
out:
	if (st[0] >= 0)
		close(st[0]);
	if (st[1] >= 0)
		close(st[1]);
	aeth_strarray_free(jv);
	free(root);
	free(exe);
	if (rc)
		aeth__jail_cleanup(r);
	return rc;
}

int aeth__jail_spawn(aeth__vm_record *r, const aeth__jail_conf *c,
		     char *const argv[], const int *fds, size_t nfds,
		     int64_t deadline_ms)
{
	int all[1 + AETH__JAIL_MAX_FDS], devnull, rc;
	char *env[4] = {NULL, NULL, NULL, NULL};

	r->jail_uid = 0;
	r->helper_pid = 0;
	if (nfds > AETH__JAIL_MAX_FDS)
		return aeth__error_set(AETH_EINVALID, "VM %s: %zu descriptors for the "
				       "VMM, at most %d", r->id, nfds,
				       AETH__JAIL_MAX_FDS);
	if (c->on)
		return spawn_jailed(r, c, argv, fds, nfds, deadline_ms);
	/* No jail: QEMU's seccomp filter is all there is. Same descriptor
	 * layout, so the same command line works (fd 3 is /dev/null). */
	if ((rc = make_overlay_dir(r, c)) != 0)
		return rc;
	if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		return aeth__error_errno(AETH_EIO, "/dev/null");
	all[0] = devnull;
	memcpy(all + 1, fds, nfds * sizeof(int));
	env[0] = aeth__sprintf("TMPDIR=%s", r->overlay_path);
	env[1] = aeth__strdup("PATH=/usr/bin:/bin");
	env[2] = aeth__sprintf("AETH_VM_DIR=%s", r->state_dir);
	rc = env[0] && env[1] && env[2]
		     ? aeth__vm_spawn(argv, env, r->vmm_log, all, nfds + 1, &r->pid)
		     : AETH_ENOMEM;
	close(devnull);
	for (size_t i = 0; i < AETH__ARRAY_LEN(env); i++)
		free(env[i]);
	if (rc == 0)
		r->pid_starttime = aeth__vm_pid_starttime(r->pid);
	return rc;
}

void aeth__jail_release_uid(aeth__vm_record *r)
{
	if (r->jail_uid && r->jail && r->jail->uids_dir) {
		char *path = uid_file(r->jail, r->jail_uid);

		if (path)
			unlink(path);
		free(path);
	}
	r->jail_uid = 0;
}

void aeth__jail_cleanup(aeth__vm_record *r)
{
	/* Cleaning up after a failure must not replace its message. */
	int code = aeth_error_last_code();
	char *msg = code ? strdup(aeth_error_last()) : NULL;

	if (r->helper_pid)
		aeth__vm_pid_kill(r->helper_pid, r->id, r->helper_starttime);
	r->helper_pid = 0;
	r->helper_starttime = 0;
	aeth__cgroup_remove(r->cgroups, r->ncgroups);
	for (size_t i = 0; i < r->ncgroups; i++) {
		free(r->cgroups[i]);
		r->cgroups[i] = NULL;
	}
	r->ncgroups = 0;
	if (r->overlay_path) {
		aeth__rm_rf(r->overlay_path);
		free(r->overlay_path);
		r->overlay_path = NULL;
	}
	if (r->state_dir) {
		char *root = aeth__sprintf("%s/root", r->state_dir);

		if (root)
			rmdir(root);
		free(root);
	}
	aeth__jail_release_uid(r);
	if (msg)
		aeth__error_set(code, "%s", msg);
	free(msg);
}

/* ---- aeth-worker -check ---- */

/* QEMU starts with its seccomp filter on (a build without it refuses
 * -sandbox): `quit` on its monitor, at most 10 s. */
static bool sandbox_works(const char *qemu, char *why, size_t n)
{
	char *exe = aeth__find_program(qemu);
	int in[2], st = 0;
	pid_t pid;
	bool ok = false;

	if (!exe) {
		snprintf(why, n, "%s is not on PATH", qemu);
		return false;
	}
	if (pipe2(in, O_CLOEXEC) != 0) {
		free(exe);
		snprintf(why, n, "pipe: %s", strerror(errno));
		return false;
	}
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(in[0], 0);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl(exe, exe, "-M", "none", "-nodefaults", "-no-user-config",
		      "-display", "none", "-sandbox", "on,obsolete=deny,"
		      "elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		      "-monitor", "stdio", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	if (pid > 0) {
		int64_t deadline = aeth__now_ms() + 10000;
		pid_t r = 0;

		if (write(in[1], "quit\n", 5) != 5) {
			/* it exited already: its status says why */
		}
		while ((r = waitpid(pid, &st, WNOHANG)) == 0 &&
		       aeth__now_ms() < deadline)
			aeth__sleep_ms(20);
		if (r == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			snprintf(why, n, "%s did not quit within 10 s", exe);
		} else {
			ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
			if (!ok)
				snprintf(why, n, "%s refused -sandbox on (built "
					 "without seccomp?)", exe);
		}
	}
	close(in[1]);
	free(exe);
	return ok;
}

static void report_cgroups(const aeth__jail_conf *c, aeth__finding_cb cb,
			   void *ud)
{
	char detail[2600], top[600];

	if (!c->on || !c->as_root) {
		cb("cgroups", 1, !c->on ? "none: the jail is off" :
		   "none: a worker that is not root cannot create them; VMMs "
		   "have no memory, CPU or pids limits of their own",
		   !c->on ? "set vmm.jail: on" : "run the worker as root", ud);
		return;
	}
	if (!c->cgroups) {
		cb("cgroups", 1, "off (vmm.cgroups is false): VMMs have no memory, "
		   "CPU or pids limits of their own", "set vmm.cgroups: true", ud);
		return;
	}
	if (c->cg.version == 0) {
		cb("cgroups", 2, c->cg.detail, "mount the memory, cpu and pids "
		   "controllers (cgroup v2, or v1 hierarchies), or set "
		   "vmm.cgroups: false (not recommended)", ud);
		return;
	}
	snprintf(top, sizeof(top), "%s/%s", c->cg.memory, c->cgroup_parent);
	if (mkdir(top, 0755) != 0 && errno != EEXIST) {
		snprintf(detail, sizeof(detail), "cannot create %s: %s", top,
			 strerror(errno));
		cb("cgroups", 2, detail, "give the worker a writable cgroup "
		   "subtree (vmm.cgroup_parent), or set vmm.cgroups: false", ud);
		return;
	}
	snprintf(detail, sizeof(detail), "%s; one per VM below %s: memory = "
		 "guest + %d MiB, CPU = vCPUs + half a core, %d pids",
		 c->cg.detail, c->cgroup_parent, AETH__VMM_OVERHEAD_MB,
		 VMM_PIDS_MAX);
	cb("cgroups", 0, detail, NULL, ud);
}

/* The firecracker backend: Firecracker's own jailer, or nothing. */
static void report_firecracker(const aeth__jail_conf *c, aeth__finding_cb cb,
			       void *ud)
{
	char detail[1200];

	if (!c->on) {
		cb("jail", 1, c->why_off ? c->why_off : "off", "set "
		   "vmm.firecracker_jailer to Firecracker's jailer (see "
		   "docs/firecracker.md)", ud);
		return;
	}
	snprintf(detail, sizeof(detail), "on: each Firecracker starts under %s, "
		 "chrooted below %s, in its own mount and pid namespaces",
		 c->fc_jailer, c->fc_chroot_base);
	cb("jail", 0, detail, NULL, ud);
	snprintf(detail, sizeof(detail), "each Firecracker gets a uid of its own "
		 "from %u to %u", c->uid_base, c->uid_base + c->uid_count - 1);
	cb("vmm user", 0, detail, NULL, ud);
	report_cgroups(c, cb, ud);
}

void aeth__jail_report(const struct aeth_vmm *m, aeth__finding_cb cb, void *ud)
{
	const aeth__jail_conf *c = &m->jail;
	char detail[1200], why[600];
	struct statvfs v;
	int e;

	if (m->backend != &aeth__vm_backend_qemu) {
		report_firecracker(c, cb, ud);
		return;
	}
	if (c->on)
		snprintf(detail, sizeof(detail), "on: each QEMU starts under %s in "
			 "its own pid, mount, network, IPC and UTS namespaces with "
			 "a minimal root", c->jailer);
	else
		snprintf(detail, sizeof(detail), "OFF (%s): QEMU runs as this "
			 "process's user with the host's files and network; only "
			 "its seccomp filter confines it", c->why_off ?
			 c->why_off : "off");
	cb("jail", c->on ? 0 : 1, detail, c->on ? NULL :
	   "set vmm.jail: on (run the worker as root, or where user "
	   "namespaces are allowed)", ud);
	if (sandbox_works(m->qemu_binary, why, sizeof(why)))
		cb("seccomp", 0, "QEMU runs with -sandbox on (obsolete, "
		   "elevateprivileges, spawn, resourcecontrol denied)", NULL, ud);
	else
		cb("seccomp", 2, why, "install a QEMU built with seccomp "
		   "(Debian's qemu-system-x86 is)", ud);
	if ((e = namespaces_work(c->as_root)) == 0)
		cb("namespaces", 0, c->as_root ? "pid, mount, network, IPC, UTS" :
		   "user, pid, mount, network, IPC, UTS", NULL, ud);
	else {
		snprintf(detail, sizeof(detail), "unshare failed: %s", strerror(e));
		cb("namespaces", c->on ? 2 : 1, detail, "run the worker as root, "
		   "or allow user namespaces (kernel.unprivileged_userns_clone)",
		   ud);
	}
	if (c->on && c->as_root)
		snprintf(detail, sizeof(detail), "each VMM gets a uid of its own "
			 "from %u to %u (no capabilities, no_new_privs)",
			 c->uid_base, c->uid_base + c->uid_count - 1);
	else
		snprintf(detail, sizeof(detail), "VMMs run as uid %u%s",
			 (unsigned int)geteuid(), geteuid() == 0 ? " (root!)" :
			 c->on ? " in a user namespace, without capabilities" : "");
	cb("vmm user", c->on || geteuid() != 0 ? 0 : 1, detail, NULL, ud);
	report_cgroups(c, cb, ud);
	if (statvfs(c->overlay_base, &v) == 0)
		snprintf(detail, sizeof(detail), "%s (VMs' disk layers; %llu MiB "
			 "free)", c->overlay_base,
			 (unsigned long long)v.f_bavail * v.f_frsize >> 20);
	else
		snprintf(detail, sizeof(detail), "%s", c->overlay_base);
	cb("overlay dir", 0, detail, NULL, ud);
}
