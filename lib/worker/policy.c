/*
 * lib/worker/policy.c - the worker's catalogue and limits (policy.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"
#include "jail/jail_rules.h"
#include "vm/vm_internal.h"
#include "worker/endpoints.h"
#include "worker/policy.h"

static const char *cfg_str(const aeth_config *cfg, const char *key)
{
	const char *v = NULL;

	return aeth_config_get_string(&v, cfg, key) == 0 && v && *v ? v : NULL;
}

static uint64_t cfg_u64(const aeth_config *cfg, const char *key)
{
	int64_t v = 0;

	aeth_config_get_int(&v, cfg, key);
	return v > 0 ? (uint64_t)v : 0;
}

static bool cfg_bool(const aeth_config *cfg, const char *key)
{
	bool v = false;

	aeth_config_get_bool(&v, cfg, key);
	return v;
}

/* "a,b" into a NULL-terminated array (empty text: an empty array). */
static char **split(const char *list)
{
	size_t n = 1;
	char **v, *copy, *save = NULL;

	for (const char *p = list; p && *p; p++)
		n += *p == ',';
	if (!(v = calloc(n + 1, sizeof(*v))) || !(copy = aeth__strdup(list ? list : ""))) {
		free(v);
		return NULL;
	}
	n = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (!(v[n++] = aeth__strdup(t))) {
			aeth_strarray_free(v);
			v = NULL;
			break;
		}
	free(copy);
	return v;
}

/* `file` as an absolute path: as is, or below `dir`. */
static char *under(const char *dir, const char *file)
{
	if (!file || !*file)
		return NULL;
	return file[0] == '/' ? aeth__strdup(file) : aeth__sprintf("%s/%s", dir, file);
}

static int add_image(aeth__policy *p, const char *name, const char *dir,
		     const char *kernel, const char *initrd, const char *rootfs)
{
	aeth__image *g = realloc(p->images, (p->nimages + 1) * sizeof(*g));

	if (!g)
		return aeth__error_oom();
	p->images = g;
	g += p->nimages++;
	memset(g, 0, sizeof(*g));
	g->name = aeth__strdup(name);
	g->kernel = under(dir, kernel);
	g->initrd = under(dir, initrd);
	g->rootfs = under(dir, rootfs);
	if (!g->name || !g->kernel || (initrd && *initrd && !g->initrd) ||
	    (rootfs && *rootfs && !g->rootfs))
		return aeth__error_oom();
	return 0;
}

static int add_profile(aeth__policy *p, const char *name, const char *rules)
{
	aeth__profile *f;

	for (size_t i = 0; i < p->nprofiles; i++)
		if (!strcmp(p->profiles[i].name, name)) {
			aeth_strarray_free(p->profiles[i].allow);
			p->profiles[i].allow = split(rules);
			return p->profiles[i].allow ? 0 : aeth__error_oom();
		}
	f = realloc(p->profiles, (p->nprofiles + 1) * sizeof(*f));
	if (!f)
		return aeth__error_oom();
	p->profiles = f;
	f += p->nprofiles++;
	f->name = aeth__strdup(name);
	f->allow = split(rules);
	return f->name && f->allow ? 0 : aeth__error_oom();
}

static int load_images(aeth__policy *p, const aeth_config *cfg, const char *dir)
{
	char **names = NULL;
	int rc;

	/* "default": the vmm.* keys (absolute paths allowed: the operator's) */
	if ((rc = add_image(p, "default", dir,
			    cfg_str(cfg, "vmm.kernel") ? cfg_str(cfg, "vmm.kernel")
						       : "vmlinux",
			    cfg_str(cfg, "vmm.initrd") ? cfg_str(cfg, "vmm.initrd")
						       : "initrd.cpio",
			    cfg_str(cfg, "vmm.rootfs") ? cfg_str(cfg, "vmm.rootfs")
						       : "rootfs.ext4")) != 0)
		return rc;
	if ((rc = aeth_config_names(&names, cfg, "images")) != 0)
		return rc;
	for (char **n = names; rc == 0 && *n; n++) {
		char key[3][128];

		if (!strcmp(*n, "default")) {
			rc = aeth__error_set(AETH_EINVALID, "images.default: the "
					     "default image is vmm.kernel, "
					     "vmm.initrd and vmm.rootfs; give "
					     "this image another name");
			break;
		}
		snprintf(key[0], sizeof(key[0]), "images.%s.kernel", *n);
		snprintf(key[1], sizeof(key[1]), "images.%s.initrd", *n);
		snprintf(key[2], sizeof(key[2]), "images.%s.rootfs", *n);
		rc = add_image(p, *n, dir, cfg_str(cfg, key[0]), cfg_str(cfg, key[1]),
			       cfg_str(cfg, key[2]));
	}
	aeth_strarray_free(names);
	return rc;
}

static int load_profiles(aeth__policy *p, const aeth_config *cfg)
{
	char **names = NULL;
	int rc;

	/* "user" exists even when not configured: a network card that
	 * reaches nothing */
	if ((rc = add_profile(p, "user", "")) != 0 ||
	    (rc = aeth_config_names(&names, cfg, "network.profiles")) != 0)
		return rc;
	for (char **n = names; rc == 0 && *n; n++) {
		char key[128];

		if (!strcmp(*n, "none") || !strcmp(*n, "tap")) {
			rc = aeth__error_set(AETH_EINVALID, "network.profiles.%s: "
					     "\"%s\" is a network mode, not a "
					     "profile name; choose another", *n, *n);
			break;
		}
		snprintf(key, sizeof(key), "network.profiles.%s.allow", *n);
		rc = add_profile(p, *n, cfg_str(cfg, key));
	}
	aeth_strarray_free(names);
	return rc;
}

/* limits.memory_mb 0: three quarters of the host's memory. */
static uint64_t host_memory_mb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);

	if (pages <= 0 || size <= 0)
		return 0;
	return (uint64_t)pages / 1024 * (uint64_t)size / 1024 * 3 / 4;
}

/* limits.overlay_mb 0: nine tenths of the space free where overlays go
 * (the dir, or its parent before the first VM made it). */
static uint64_t free_overlay_mb(const aeth_config *cfg)
{
	const char *dir = cfg_str(cfg, "vmm.overlay_dir");
	char *path = dir ? aeth__strdup(dir) : aeth__vmm_default_overlay_dir(), *slash;
	struct statvfs v;
	int rc = -1;

	if (path)
		rc = statvfs(path, &v);
	if (rc != 0 && path && (slash = strrchr(path, '/')) && slash != path) {
		*slash = '\0';
		rc = statvfs(path, &v);
	}
	free(path);
	if (rc != 0)
		return 0;
	return (uint64_t)v.f_bavail * v.f_frsize / (1024 * 1024) * 9 / 10;
}

int aeth__policy_load(aeth__policy *p, const aeth_config *cfg)
{
	const char *dir = cfg_str(cfg, "vmm.image_dir");
	char *real;
	int rc;

	memset(p, 0, sizeof(*p));
	/* the operator's own path may have links; what is below may not */
	real = dir ? realpath(dir, NULL) : NULL;
	if ((rc = load_images(p, cfg, real ? real : dir ? dir : ".")) == 0)
		rc = load_profiles(p, cfg);
	free(real);
	if (rc == 0 && !(p->taps = split(cfg_str(cfg, "network.taps"))))
		rc = AETH_ENOMEM;
	p->network = cfg_bool(cfg, "vmm.network");
	p->use_rootfs = cfg_bool(cfg, "vmm.use_rootfs");
	p->vm_vcpus = (unsigned int)cfg_u64(cfg, "limits.vm_vcpus");
	p->vm_memory_mb = (unsigned int)cfg_u64(cfg, "limits.vm_memory_mb");
	p->vms = (unsigned int)cfg_u64(cfg, "limits.vms");
	p->memory_mb = cfg_u64(cfg, "limits.memory_mb");
	if (!p->memory_mb)
		p->memory_mb = host_memory_mb();
	p->overlay_mb = cfg_u64(cfg, "limits.overlay_mb");
	if (!p->overlay_mb)
		p->overlay_mb = free_overlay_mb(cfg);
	p->ttl_s = (unsigned int)cfg_u64(cfg, "limits.ttl_s");
	p->ttl_max_s = (unsigned int)cfg_u64(cfg, "limits.ttl_max_s");
	p->exec_timeout_ms = (unsigned int)cfg_u64(cfg, "limits.exec_timeout_ms");
	p->exec_timeout_max_ms = (unsigned int)cfg_u64(cfg, "limits.exec_timeout_max_ms");
	if (rc == 0 && p->ttl_s > p->ttl_max_s)
		rc = aeth__error_set(AETH_EINVALID, "limits.ttl_s (%u) is more than "
				     "limits.ttl_max_s (%u)", p->ttl_s, p->ttl_max_s);
	if (rc == 0 && p->exec_timeout_ms > p->exec_timeout_max_ms)
		rc = aeth__error_set(AETH_EINVALID, "limits.exec_timeout_ms (%u) is "
				     "more than limits.exec_timeout_max_ms (%u)",
				     p->exec_timeout_ms, p->exec_timeout_max_ms);
	if (rc != 0)
		aeth__policy_clear(p);
	return rc;
}

void aeth__policy_clear(aeth__policy *p)
{
	for (size_t i = 0; i < p->nimages; i++) {
		free(p->images[i].name);
		free(p->images[i].kernel);
		free(p->images[i].initrd);
		free(p->images[i].rootfs);
	}
	free(p->images);
	for (size_t i = 0; i < p->nprofiles; i++) {
		free(p->profiles[i].name);
		aeth_strarray_free(p->profiles[i].allow);
	}
	free(p->profiles);
	aeth_strarray_free(p->taps);
	memset(p, 0, sizeof(*p));
}

const aeth__image *aeth__policy_image(const aeth__policy *p, const char *name)
{
	for (size_t i = 0; i < p->nimages; i++)
		if (!strcmp(p->images[i].name, name ? name : "default"))
			return &p->images[i];
	return NULL;
}

const aeth__profile *aeth__policy_profile(const aeth__policy *p, const char *name)
{
	for (size_t i = 0; name && i < p->nprofiles; i++)
		if (!strcmp(p->profiles[i].name, name))
			return &p->profiles[i];
	return NULL;
}

bool aeth__policy_tap_allowed(const aeth__policy *p, const char *tap)
{
	for (char **t = p->taps; tap && t && *t; t++)
		if (!strcmp(*t, tap))
			return true;
	return false;
}

/* The rule of `prof` that lets a guest reach `ep`, or NULL. */
static const char *reaching(const aeth__profile *prof, const aeth__endpoint *ep)
{
	char probe[AETH__NET_RULE_LEN];
	aeth__net_rule addr, r;
	const char *why;
	bool ipv4;

	snprintf(probe, sizeof(probe), "%.40s:1", ep->host);
	ipv4 = aeth__net_rule_parse(probe, &addr, &why) == 0 &&
	       addr.kind == AETH__RULE_NET && addr.mask == 0xffffffffu;
	for (char **a = prof->allow; a && *a; a++) {
		if (aeth__net_rule_parse(*a, &r, &why) != 0 || r.port != ep->port)
			continue;
		if ((r.kind == AETH__RULE_HOST && ep->loopback) ||
		    (r.kind == AETH__RULE_NET && ipv4 &&
		     (addr.addr & r.mask) == r.addr) ||
		    (r.kind == AETH__RULE_PUBLIC && ipv4 &&
		     aeth__net_addr_public(addr.addr)))
			return *a;
	}
	return NULL;
}

static int exposed(const aeth__policy *p, const char *service,
		   const aeth__endpoint *ep, aeth__policy_warn_cb cb, void *ud)
{
	int n = 0;

	for (size_t i = 0; i < p->nprofiles; i++) {
		const char *rule = reaching(&p->profiles[i], ep);
		char detail[512];

		if (!rule)
			continue;
		snprintf(detail, sizeof(detail), "network profile \"%s\" lets guests "
			 "reach this worker's %s at %s:%u (rule \"%s\"): a guest "
			 "could read and drive every VM", p->profiles[i].name,
			 service, ep->host, ep->port, rule);
		cb(service[0] == 'R' ? "redis exposure" : "postgresql exposure",
		   detail, "narrow the rule, or reach the service over a Unix "
		   "socket or on a port no profile allows", ud);
		n++;
	}
	return n;
}

int aeth__policy_exposure(const aeth__policy *p, const char *redis_url,
			  const char *database_url, aeth__policy_warn_cb cb,
			  void *userdata)
{
	aeth__endpoint rd[AETH__PG_HOSTS_MAX], pg[AETH__PG_HOSTS_MAX];
	size_t nrd = 0, npg = 0;
	int n = 0;

	if (aeth__redis_endpoints(redis_url, rd, AETH__PG_HOSTS_MAX, &nrd))
		for (size_t i = 0; i < nrd; i++)
			n += exposed(p, "Redis", &rd[i], cb, userdata);
	if (aeth__pg_endpoints(database_url, pg, AETH__PG_HOSTS_MAX, &npg))
		for (size_t i = 0; i < npg; i++)
			n += exposed(p, "PostgreSQL", &pg[i], cb, userdata);
	aeth_error_clear(); /* an unparsable URL fails later, saying why */
	return n;
}

char *aeth__policy_image_names(const aeth__policy *p)
{
	aeth__buf b = AETH__BUF_INIT;

	for (size_t i = 0; i < p->nimages; i++)
		aeth__buf_printf(&b, "%s%s", i ? ", " : "", p->images[i].name);
	return aeth__buf_detach(&b, NULL);
}

char *aeth__policy_profile_names(const aeth__policy *p)
{
	aeth__buf b = AETH__BUF_INIT;

	for (size_t i = 0; i < p->nprofiles; i++)
		aeth__buf_printf(&b, "%s%s", i ? ", " : "", p->profiles[i].name);
	return aeth__buf_detach(&b, NULL);
}
