/*
 * lib/vm/cgroup.h - one cgroup per VM with memory, CPU and pids limits,
 * on cgroup v2 (unified) hosts and on v1 hosts (one hierarchy per
 * controller, as on this project's machines). The VMM and its relay are
 * moved in by aeth-jailer (--cgroup) before they allocate anything.
 */
#ifndef AETH_VM_CGROUP_H
#define AETH_VM_CGROUP_H

#include <stddef.h>

#define AETH__CGROUP_MAX_DIRS 3 /* v1: memory, cpu, pids */

typedef struct {
	int version;                 /* 2, 1, or 0: no usable cgroups */
	/* v2: the unified mount; v1: the mount of each controller */
	char memory[512], cpu[512], pids[512];
	char detail[2048];           /* what was found, for -check */
} aeth__cgroup_host;

typedef struct {
	unsigned long long memory_bytes; /* 0 = no limit */
	unsigned int cpu_millicores;     /* 1000 = one core; 0 = no limit */
	unsigned int pids;               /* 0 = no limit */
} aeth__cgroup_limits;

/* Find the cgroup mounts (/proc/self/mountinfo). Always fills *h; 0 when
 * memory, cpu and pids are all available, AETH_EUNAVAILABLE if not. */
int aeth__cgroup_probe(aeth__cgroup_host *h);

/*
 * Create <mount>/<parent>/<id> for each controller with `lim`, and list
 * the directories made in dirs[] (strings malloc'd, *ndirs set; on
 * failure everything made is removed). `parent` is relative to the
 * controllers' mounts ("aetherium"). AETH_EUNAVAILABLE with the reason
 * (not root, no controller, a read-only cgroup fs).
 */
int aeth__cgroup_create(const aeth__cgroup_host *h, const char *parent,
			const char *id, const aeth__cgroup_limits *lim,
			char *dirs[AETH__CGROUP_MAX_DIRS], size_t *ndirs);

/* Remove the directories (their processes must be gone; retried for a
 * moment while the kernel lets go of a killed VMM). Never fails. */
void aeth__cgroup_remove(char *const *dirs, size_t ndirs);

#endif
