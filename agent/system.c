/*
 * agent/system.c - what the agent does for the guest: PID 1 duties
 * (mounts, kernel modules, network, power off) and facts for hello.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

static void mount_one(const char *src, const char *dst, const char *type,
		      unsigned long flags, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		agent_log("mount %s on %s: %s", type, dst, strerror(errno));
}

void agent_pid1_setup(void)
{
	int fd;

	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "mode=0620,ptmxmode=0666");
	mount_one("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=1777");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	/* The kernel may start us without fds 0-2 when /dev was empty. */
	fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		for (int i = 0; i < 3; i++)
			if (fcntl(i, F_GETFD) < 0)
				dup2(fd, i);
		close(fd);
	}
	agent_pid1_env();
	sethostname("aetherium", 9);
}

/* The kernel starts init with HOME=/ and TERM=linux; commands want more. */
void agent_pid1_env(void)
{
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		       "/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("TERM", "linux", 0);
	if (chdir("/") < 0)
		agent_log("chdir /: %s", strerror(errno));
}

/*
 * Module parameters from the kernel command line: the kernel applies
 * `<module>.<param>=<value>` only to built-in code, and modprobe (which
 * we do not have) passes them for modules. Firecracker describes its
 * virtio-mmio devices this way (virtio_mmio.device=...).
 */
static char *module_params(const char *cmdline, const char *ko_path)
{
	const char *base = strrchr(ko_path, '/');
	char name[512], *out = calloc(1, strlen(cmdline) + 1);
	size_t n, o = 0;

	base = base ? base + 1 : ko_path;
	snprintf(name, sizeof(name), "%s", base);
	name[strcspn(name, ".")] = 0;
	for (char *c = name; *c; c++)
		if (*c == '-')
			*c = '_';
	n = strlen(name);
	for (const char *p = cmdline; out && *p;) {
		size_t w;
		bool match = true;

		p += strspn(p, " ");
		w = strcspn(p, " ");
		for (size_t i = 0; i < n && match; i++)
			match = i < w && (p[i] == name[i] ||
					  (p[i] == '-' && name[i] == '_'));
		if (match && w > n + 1 && p[n] == '.') {
			if (o)
				out[o++] = ' ';
			memcpy(out + o, p + n + 1, w - n - 1);
			o += w - n - 1;
		}
		p += w;
	}
	return out;
}

/* Load each module listed in `list_path` (absolute .ko paths), in order. */
void agent_load_modules(const char *list_path, const char *cmdline)
{
	FILE *fp = fopen(list_path, "re");
	char line[512];

	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp)) {
		char *params;
		int fd;

		line[strcspn(line, "\r\n")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			agent_log("module %s: %s", line, strerror(errno));
			continue;
		}
		params = module_params(cmdline, line);
		if (syscall(SYS_finit_module, fd, params ? params : "", 0) < 0 &&
		    errno != EEXIST)
			agent_log("loading module %s: %s", line,
				  strerror(errno));
		free(params);
		close(fd);
	}
	fclose(fp);
}

char *agent_read_cmdline(void)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return strdup("");
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return strdup(buf);
}

/* The value of `key=` on the kernel command line (malloc'd) or NULL. */
char *agent_cmdline_get(const char *cmdline, const char *key)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (p && *p) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return strndup(p + klen + 1, n - klen - 1);
		p += n;
	}
	return NULL;
}

static int run_quiet(const char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void agent_network_setup(const char *cmdline)
{
	char *ip = agent_cmdline_get(cmdline, "aeth.ip");
	char *gw = agent_cmdline_get(cmdline, "aeth.gw");
	char *dns = agent_cmdline_get(cmdline, "aeth.dns");
	const char *lo[] = {"ip", "link", "set", "lo", "up", NULL};

	run_quiet(lo);
	if (ip) {
		const char *addr[] = {"ip", "addr", "add", ip, "dev", "eth0",
				      NULL};
		const char *up[] = {"ip", "link", "set", "eth0", "up", NULL};

		if (run_quiet(addr) != 0 || run_quiet(up) != 0)
			agent_log("network: cannot configure eth0 with %s", ip);
	}
	if (ip && gw) {
		const char *route[] = {"ip", "route", "add", "default", "via",
				       gw, NULL};

		if (run_quiet(route) != 0)
			agent_log("network: cannot add a route via %s", gw);
	}
	agent_write_resolv(cmdline);
	free(ip);
	free(gw);
	free(dns);
}

void agent_write_resolv(const char *cmdline)
{
	char *dns = agent_cmdline_get(cmdline, "aeth.dns");
	FILE *fp;

	if (!dns)
		return;
	unlink("/etc/resolv.conf"); /* may be a symlink to elsewhere */
	fp = fopen("/etc/resolv.conf", "we");
	if (fp) {
		fprintf(fp, "nameserver %s\n", dns);
		fclose(fp);
	}
	free(dns);
}

static bool cmdline_has(const char *cmdline, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = cmdline; *p;) {
		size_t w;

		p += strspn(p, " ");
		w = strcspn(p, " ");
		if (w == n && strncmp(p, word, n) == 0)
			return true;
		p += w;
	}
	return false;
}

/*
 * aeth.root=/dev/vda: mount the root disk, move /dev /proc /sys /run /tmp
 * onto it, make it / and exec its agent as the same PID 1 (with
 * AETH_ROOTED=1). On any failure, log and stay in the initramfs.
 */
void agent_switch_root(const char *cmdline, char **argv)
{
	static const char *const moves[] = {"/dev", "/proc", "/sys", "/run",
					    "/tmp"};
	static const char agent[] = "/usr/sbin/aeth-agent";
	char *root = agent_cmdline_get(cmdline, "aeth.root");
	char *fstype = agent_cmdline_get(cmdline, "aeth.rootfstype");
	unsigned long flags = cmdline_has(cmdline, "aeth.rootro") ? MS_RDONLY : 0;
	char path[256];
	int i;

	if (!root)
		goto out;
	for (i = 0; i < 250 && access(root, F_OK) < 0; i++)
		usleep(20 * 1000);
	mkdir("/newroot", 0755);
	if (mount(root, "/newroot", fstype ? fstype : "ext4", flags, NULL) < 0) {
		agent_log("mounting the root disk %s: %s; staying in the "
			  "initramfs", root, strerror(errno));
		goto out;
	}
	if (access("/newroot/usr/sbin/aeth-agent", X_OK) < 0) {
		agent_log("%s has no %s; staying in the initramfs", root, agent);
		umount("/newroot");
		goto out;
	}
	for (i = 0; i < (int)(sizeof(moves) / sizeof(moves[0])); i++) {
		snprintf(path, sizeof(path), "/newroot%s", moves[i]);
		mkdir(path, 0755);
		if (mount(moves[i], path, NULL, MS_MOVE, NULL) < 0)
			agent_log("moving %s: %s", moves[i], strerror(errno));
	}
	if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0) {
		agent_log("switching to the root disk: %s", strerror(errno));
		goto out;
	}
	setenv("AETH_ROOTED", "1", 1);
	execv(agent, argv);
	agent_log("exec %s: %s", agent, strerror(errno));
out:
	free(root);
	free(fstype);
}

static void json_str(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	for (; *s && o + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
		else if (c < 0x20)
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}

char *agent_info_json(const struct agent *a)
{
	struct utsname u;
	char rel[256] = "", mach[128] = "", *s = NULL;
	double up = 0;
	FILE *fp = fopen("/proc/uptime", "re");

	if (fp) {
		if (fscanf(fp, "%lf", &up) != 1)
			up = 0;
		fclose(fp);
	}
	if (uname(&u) == 0) {
		json_str(rel, sizeof(rel), u.release);
		json_str(mach, sizeof(mach), u.machine);
	}
	if (asprintf(&s, "{\"agent_version\":\"%s\",\"protocol\":%d,"
		     "\"kernel\":\"%s\",\"machine\":\"%s\","
		     "\"uptime_ms\":%lld,\"agent_uptime_ms\":%lld,"
		     "\"pid1\":%s,\"pid\":%d,\"vm_id\":\"%s\"}",
		     AGENT_VERSION, AETH__PROTO_LEVEL, rel, mach,
		     (long long)(up * 1000), (long long)(agent_now_ms() - a->boot_ms),
		     a->pid1 ? "true" : "false", (int)getpid(), a->vm_id) < 0)
		return NULL;
	return s;
}

/*
 * PID 1 or service: stop everything, flush disks, end the VM. A reset
 * rather than a power-off: both backends run the VMM so that a guest reset
 * ends it (QEMU -no-reboot, Firecracker reboot=k), while Firecracker keeps
 * its process alive after a guest power-off, halting the vCPUs.
 */
void agent_poweroff(struct agent *a)
{
	agent_exec_kill_all(a, true);
	if (a->pid1) {
		kill(-1, SIGTERM);
		usleep(200 * 1000);
		kill(-1, SIGKILL);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	sync();
	reboot(RB_AUTOBOOT);
	agent_log("reboot failed: %s", strerror(errno));
}
