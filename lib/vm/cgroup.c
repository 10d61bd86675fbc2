/*
 * lib/vm/cgroup.c - per-VM cgroups on v1 and v2 hosts (cgroup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "vm/cgroup.h"

/* Field `n` (0-based) of a mountinfo line, or NULL. */
static char *field(char *line, int n, char **save)
{
	char *t = strtok_r(line, " ", save);

	while (t && n-- > 0)
		t = strtok_r(NULL, " ", save);
	return t;
}

static bool has_opt(const char *opts, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = opts; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

static bool file_has_word(const char *path, const char *word)
{
	char buf[512], *save = NULL;
	FILE *f = fopen(path, "re");
	bool found = false;

	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		for (char *t = strtok_r(buf, " \n", &save); t && !found;
		     t = strtok_r(NULL, " \n", &save))
			found = !strcmp(t, word);
	fclose(f);
	return found;
}

int aeth__cgroup_probe(aeth__cgroup_host *h)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], v2[512] = "";

	memset(h, 0, sizeof(*h));
	if (!f) {
		snprintf(h->detail, sizeof(h->detail), "cannot read /proc/self/mountinfo");
		return AETH_EUNAVAILABLE;
	}
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *dash = strstr(line, " - "), *mnt, *type, *opts;

		if (!dash)
			continue;
		*dash = '\0';
		mnt = field(line, 4, &save);
		save = NULL;
		type = field(dash + 3, 0, &save);
		field(NULL, 0, &save); /* source */
		opts = strtok_r(NULL, " \n", &save);
		if (!mnt || !type)
			continue;
		if (!strcmp(type, "cgroup2") && !v2[0])
			snprintf(v2, sizeof(v2), "%s", mnt);
		if (strcmp(type, "cgroup") != 0 || !opts)
			continue;
		if (has_opt(opts, "memory"))
			snprintf(h->memory, sizeof(h->memory), "%s", mnt);
		if (has_opt(opts, "cpu"))
			snprintf(h->cpu, sizeof(h->cpu), "%s", mnt);
		if (has_opt(opts, "pids"))
			snprintf(h->pids, sizeof(h->pids), "%s", mnt);
	}
	fclose(f);
	if (h->memory[0] && h->cpu[0] && h->pids[0]) {
		h->version = 1;
		snprintf(h->detail, sizeof(h->detail), "cgroup v1: memory at %s, "
			 "cpu at %s, pids at %s", h->memory, h->cpu, h->pids);
		return 0;
	}
	if (v2[0]) {
		char ctl[600];

		snprintf(ctl, sizeof(ctl), "%s/cgroup.controllers", v2);
		if (file_has_word(ctl, "memory") && file_has_word(ctl, "cpu") &&
		    file_has_word(ctl, "pids")) {
			h->version = 2;
			snprintf(h->memory, sizeof(h->memory), "%s", v2);
			snprintf(h->cpu, sizeof(h->cpu), "%s", v2);
			snprintf(h->pids, sizeof(h->pids), "%s", v2);
			snprintf(h->detail, sizeof(h->detail), "cgroup v2 at %s", v2);
			return 0;
		}
	}
	memset(h->memory, 0, sizeof(h->memory));
	snprintf(h->detail, sizeof(h->detail), "no cgroup hierarchy with the "
		 "memory, cpu and pids controllers (cgroup v2 at %s lacks them "
		 "and no complete set of v1 controllers is mounted)",
		 v2[0] ? v2 : "(none)");
	h->version = 0;
	return AETH_EUNAVAILABLE;
}

static int put(const char *dir, const char *file, const char *value)
{
	char path[1024];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return aeth__error_errno(AETH_EUNAVAILABLE, "cannot open %s", path);
	n = write(fd, value, strlen(value));
	close(fd);
	if (n != (ssize_t)strlen(value))
		return aeth__error_errno(AETH_EUNAVAILABLE, "cannot write '%s' to %s",
					 value, path);
	return 0;
}

/* Like put(), for a file that may not exist on this kernel (memsw). */
static void put_optional(const char *dir, const char *file, const char *value)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (access(path, W_OK) == 0)
		put(dir, file, value);
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	return aeth__error_errno(AETH_EUNAVAILABLE, "cannot create cgroup %s",
				 path);
}

static int limit_v1(const char *mount, const char *dir,
		    const aeth__cgroup_limits *l, const aeth__cgroup_host *h)
{
	char v[64];
	int rc = 0;

	if (!strcmp(mount, h->memory) && l->memory_bytes) {
		snprintf(v, sizeof(v), "%llu", l->memory_bytes);
		rc = put(dir, "memory.limit_in_bytes", v);
		if (rc == 0) /* swap must not let the VMM past the limit */
			put_optional(dir, "memory.memsw.limit_in_bytes", v);
	}
	if (rc == 0 && !strcmp(mount, h->cpu) && l->cpu_millicores) {
		snprintf(v, sizeof(v), "%u", l->cpu_millicores * 100);
		rc = put(dir, "cpu.cfs_period_us", "100000");
		if (rc == 0)
			rc = put(dir, "cpu.cfs_quota_us", v);
	}
	if (rc == 0 && !strcmp(mount, h->pids) && l->pids) {
		snprintf(v, sizeof(v), "%u", l->pids);
		rc = put(dir, "pids.max", v);
	}
	return rc;
}

static int limit_v2(const char *dir, const aeth__cgroup_limits *l)
{
	char v[64];
	int rc = 0;

	if (l->memory_bytes) {
		snprintf(v, sizeof(v), "%llu", l->memory_bytes);
		rc = put(dir, "memory.max", v);
		if (rc == 0)
			put_optional(dir, "memory.swap.max", "0");
	}
	if (rc == 0 && l->cpu_millicores) {
		snprintf(v, sizeof(v), "%u 100000", l->cpu_millicores * 100);
		rc = put(dir, "cpu.max", v);
	}
	if (rc == 0 && l->pids) {
		snprintf(v, sizeof(v), "%u", l->pids);
		rc = put(dir, "pids.max", v);
	}
	return rc;
}

int aeth__cgroup_create(const aeth__cgroup_host *h, const char *parent,
			const char *id, const aeth__cgroup_limits *lim,
			char *dirs[AETH__CGROUP_MAX_DIRS], size_t *ndirs)
{
	const char *mounts[AETH__CGROUP_MAX_DIRS];
	size_t nm = 0;
	int rc = 0;

	*ndirs = 0;
	if (h->version == 0)
		return aeth__error_set(AETH_EUNAVAILABLE, "%s", h->detail);
	mounts[nm++] = h->memory;
	if (h->version == 1) {
		if (strcmp(h->cpu, h->memory))
			mounts[nm++] = h->cpu;
		if (strcmp(h->pids, h->memory) && strcmp(h->pids, h->cpu))
			mounts[nm++] = h->pids;
	}
	for (size_t i = 0; i < nm && rc == 0; i++) {
		char *top = aeth__sprintf("%s/%s", mounts[i], parent);
		char *dir = top ? aeth__sprintf("%s/%s", top, id) : NULL;

		if (!top || !dir)
			rc = AETH_ENOMEM;
		if (rc == 0)
			rc = make_dir(top);
		/* v2: the controllers must be enabled for the children of the
		 * root and of the parent (subtree_control), top-down. */
		if (rc == 0 && h->version == 2) {
			rc = put(mounts[i], "cgroup.subtree_control",
				 "+memory +cpu +pids");
			if (rc == 0)
				rc = put(top, "cgroup.subtree_control",
					 "+memory +cpu +pids");
		}
		if (rc == 0 && mkdir(dir, 0755) != 0 && errno != EEXIST)
			rc = aeth__error_errno(AETH_EUNAVAILABLE,
					       "cannot create cgroup %s", dir);
		if (rc == 0) {
			dirs[(*ndirs)++] = dir;
			dir = NULL;
			rc = h->version == 2 ? limit_v2(dirs[*ndirs - 1], lim)
					     : limit_v1(mounts[i], dirs[*ndirs - 1],
							lim, h);
		}
		free(top);
		free(dir);
	}
	if (rc != 0) {
		aeth__error_wrap(rc, "VM %s: cannot set up its cgroup (set "
				 "vmm.cgroups: false to run without limits, not "
				 "recommended)", id);
		aeth__cgroup_remove(dirs, *ndirs);
		for (size_t i = 0; i < *ndirs; i++) {
			free(dirs[i]);
			dirs[i] = NULL;
		}
		*ndirs = 0;
	}
	return rc;
}

void aeth__cgroup_remove(char *const *dirs, size_t ndirs)
{
	for (size_t i = 0; i < ndirs; i++) {
		if (!dirs[i])
			continue;
		for (int tries = 0; tries < 50; tries++) {
			if (rmdir(dirs[i]) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY) {
				aeth__warn("cannot remove cgroup %s: %s", dirs[i],
					   strerror(errno));
				break;
			}
			aeth__sleep_ms(20); /* a killed VMM lingers for a moment */
		}
	}
}
