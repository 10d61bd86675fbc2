/*
 * lib/worker/check.c - aeth_worker_check(): the seed's troubleshooting
 * steps done by the program: VMM binaries, a working accelerator, the
 * guest image, Redis, PostgreSQL and its schema; each failure with a fix.
 * Risky ways of reaching Redis and PostgreSQL (infra_warnings.h), and
 * servers that may lose what they acknowledged (durability.h), are
 * warnings.
 */
#include <dirent.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "aetherium/config.h"
#include "aetherium/queue.h"
#include "aetherium/vm.h"
#include "aetherium/worker.h"
#include "internal.h"
#ifdef AETH_HAVE_HTTP
#include "http/http.h"
#endif
#include "queue/queue_internal.h"
#include "worker/durability.h"
#include "worker/infra_warnings.h"
#include "vm/vm_internal.h"
#include "worker/policy.h"
#include "store/store_internal.h"
#include "worker/worker_internal.h"

#define SERVICES_FIX \
	"scripts/services.sh start; eval \"$(scripts/services.sh env)\""
#define CRED_FIX(key, env) \
	"correct " key " or " env " as the message says; " \
	"docs/deploy-credentials.md"

typedef struct {
	aeth_check_cb cb;
	void *ud;
	int failures;
	const aeth_config *cfg;
} checker;

static void report(checker *c, const char *what, int status, const char *fix,
		   const char *fmt, ...) AETH__PRINTF(5, 6);

static void report(checker *c, const char *what, int status, const char *fix,
		   const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (status == 2)
		c->failures++;
	if (c->cb)
		c->cb(what, status, detail, fix ? fix : "", c->ud);
}

/* Full path of `prog` on PATH into out, or false. */
static bool which(const char *prog, char *out, size_t n)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path ? path : "/usr/bin:/bin"), *save = NULL;
	bool found = false;

	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(out, n, "%s/%s", d, prog);
		found = access(out, X_OK) == 0;
	}
	free(copy);
	return found;
}

static const char *cfg_str(const aeth_config *cfg, const char *key)
{
	const char *v = NULL;

	return aeth_config_get_string(&v, cfg, key) == 0 && v && *v ? v : NULL;
}

static void check_binaries(checker *c, const char *backend)
{
	char path[4096];
	bool fc = backend && !strcmp(backend, "firecracker");

	if (which("qemu-system-x86_64", path, sizeof(path)))
		report(c, "qemu", 0, NULL, "%s", path);
	else
		report(c, "qemu", fc ? 1 : 2, "scripts/setup.sh (apt-get install "
		       "qemu-system-x86)", "qemu-system-x86_64 is not on PATH");
	if (which("firecracker", path, sizeof(path)))
		report(c, "firecracker", 0, NULL, "%s", path);
	else
		report(c, "firecracker", fc ? 2 : 1, "install a firecracker binary on "
		       "PATH, or use vmm.backend: qemu", "firecracker is not on PATH%s",
		       fc ? "" : " (only needed with vmm.backend: firecracker)");
}

static void check_accel(checker *c)
{
	aeth_accel_info info;

	memset(&info, 0, sizeof(info));
	info.version = AETH_ACCEL_INFO_VERSION;
	if (aeth_accel_probe(&info, NULL) != 0) {
		report(c, "accelerator", 2, NULL, "probe failed: %s", aeth_error_last());
		return;
	}
	if (info.kvm_usable)
		report(c, "accelerator", 0, NULL, "hardware KVM works (boots in ~100 ms)");
	else if (info.tcg_available)
		report(c, "accelerator", 1, "run on a host with hardware "
		       "virtualisation for ~100 ms boots", "TCG (software emulation, "
		       "boots take seconds)%s%s", info.kvm_pvm ? "; /dev/kvm is PVM "
		       "(kvm_pvm), which only runs PVM guest kernels" : "",
		       info.kvm_device ? "" : "; /dev/kvm does not work");
	else
		report(c, "accelerator", 2, "scripts/setup.sh (qemu-system-x86)",
		       "neither a usable KVM nor QEMU for TCG");
}

/* The root disk (vm:create "rootfs"): optional unless vmm.use_rootfs. */
static void check_rootfs(checker *c, const aeth_config *cfg, const char *dir)
{
	const char *disk = cfg_str(cfg, "vmm.rootfs");
	char def[4200], fix[4300];
	bool use = false;
	struct stat st;

	if (!disk) {
		snprintf(def, sizeof(def), "%s/rootfs.ext4", dir);
		disk = def;
	}
	aeth_config_get_bool(&use, cfg, "vmm.use_rootfs");
	snprintf(fix, sizeof(fix), "scripts/build-image.sh --rootfs --out %s", dir);
	if (stat(disk, &st) == 0)
		report(c, "root disk", 0, NULL, "%s (vm:create \"rootfs\": true, "
		       "-rootfs default)", disk);
	else
		report(c, "root disk", use ? 2 : 1, fix, "no root disk %s: vm:create "
		       "with \"rootfs\": true (aeth-submit -rootfs default) fails%s",
		       disk, use ? ", and so does every vm:create (vmm.use_rootfs "
		       "is true)" : "; initramfs-only guests work");
}

static void check_image(checker *c, const aeth_config *cfg)
{
	const char *dir = cfg_str(cfg, "vmm.image_dir");
	char def[4096], path[4200];
	static const char *const files[] = {"vmlinux", "initrd.cpio",
					    "manifest.json"};
	char fix[4300], missing[64];
	struct stat st, agent;
	const char *agent_bin = getenv("AETH_AGENT_BIN");
	bool ok = true;

	if (!dir) {
		const char *home = getenv("HOME");

		dir = getenv("AETH_IMAGE_DIR");
		if (!dir) {
			snprintf(def, sizeof(def), "%s/.cache/aetherium/image",
				 home ? home : "/root");
			dir = def;
		}
	}
	/* the fix names the directory the worker reads (AETH_IMAGE_DIR or
	 * vmm.image_dir), which build-image.sh writes with --out */
	snprintf(fix, sizeof(fix), "scripts/build-image.sh --out %s", dir);
	missing[0] = '\0';
	for (size_t i = 0; i < AETH__ARRAY_LEN(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (stat(path, &st) != 0) {
			size_t n = strlen(missing);

			snprintf(missing + n, sizeof(missing) - n, "%s%s",
				 n ? ", " : "", files[i]);
			ok = false;
		}
	}
	if (!ok) {
		report(c, "guest image", 2, fix, "no guest image in %s (missing: %s)",
		       dir, missing);
	}
	if (ok && agent_bin && stat(agent_bin, &agent) == 0 &&
	    agent.st_mtime > st.st_mtime) {
		report(c, "guest image", 1, fix, "the agent %s is newer than the "
		       "image in %s", agent_bin, dir);
		ok = false;
	}
	if (ok)
		report(c, "guest image", 0, NULL, "%s (vmlinux, initrd.cpio, "
		       "manifest.json)", dir);
	check_rootfs(c, cfg, dir);
}

static void on_finding(const char *what, int status, const char *detail,
		       const char *fix, void *userdata);

static void check_redis(checker *c, const aeth_config *cfg)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;
	aeth__redis_url u;
	int rc;

	o.url = cfg_str(cfg, "redis.url");
	if ((rc = aeth_queue_open(&q, &o)) == 0 && (rc = aeth_queue_ping(q)) == 0 &&
	    aeth__redis_url_parse(aeth__redis_url_resolve(o.url), &u) == 0) {
		/* its display form: the URL itself may hold a password */
		report(c, "redis", 0, NULL, "%s answers", u.display);
		aeth__redis_url_clear(&u);
		aeth__redis_durability(q, on_finding, c);
	} else {
		/* a server that answers but refuses: the URL is what to fix */
		report(c, "redis", 2, rc == AETH_EINVALID ? CRED_FIX("redis.url",
		       "AETH_REDIS_URL") : SERVICES_FIX, "%s", aeth_error_last());
	}
	aeth_queue_free(q);
}

static void check_postgres(checker *c, const aeth_config *cfg)
{
	aeth__rec *r = NULL;
	int version = 0, rc;

	if (aeth__rec_open(&r, cfg_str(cfg, "database.url")) != 0) {
		/* the store's message has the fix for TLS, password and
		 * pg_hba.conf failures; only a server not there is ours */
		report(c, "postgresql", 2, strstr(aeth_error_last(),
		       "is the server running") ? SERVICES_FIX :
		       CRED_FIX("database.url", "AETH_DATABASE_URL"), "%s",
		       aeth_error_last());
		return;
	}
	report(c, "postgresql", 0, NULL, "reachable");
	aeth__pg_durability(aeth__rec_store(r), on_finding, c);
	rc = aeth__rec_schema_version(r, &version);
	if (rc == 0 && version >= (int)aeth__rec_schema_known())
		report(c, "database schema", 0, NULL, "migration %d applied (vms, "
		       "tasks, executions)", version);
	else if (rc == 0 && version > 0)
		report(c, "database schema", 1, "start aeth-worker once (it migrates "
		       "on start)", "migration %d of %zu applied: this version "
		       "has newer ones", version, aeth__rec_schema_known());
	else
		report(c, "database schema", 1, "start aeth-worker once (it migrates "
		       "on start)", "not migrated yet%s%s", rc ? ": " : "",
		       rc ? aeth_error_last() : "");
	aeth__rec_free(r);
}

static void on_access_warning(const char *what, const char *detail,
			      const char *fix, void *userdata)
{
	report(userdata, what, 1, fix, "%s", detail);
}

static void check_access(checker *c, const aeth_config *cfg,
			 const aeth__policy *pol)
{
	int n = aeth__infra_warnings(cfg_str(cfg, "redis.url"),
				     cfg_str(cfg, "database.url"),
				     aeth_config_path(cfg), on_access_warning, c);

	if (pol)
		n += aeth__policy_exposure(pol, cfg_str(cfg, "redis.url"),
					   cfg_str(cfg, "database.url"),
					   on_access_warning, c);
	if (n == 0)
		report(c, "service access", 0, NULL, "no unauthenticated or "
		       "clear-text path to Redis or PostgreSQL found, and no "
		       "network profile reaches them");
}

static void on_finding(const char *what, int status, const char *detail,
		       const char *fix, void *userdata)
{
	report(userdata, what, status, fix, "%s", detail);
}

/* Snapshots (docs/vm.md): on or off, where, how many there are. */
static void check_snapshots(checker *c, const aeth_config *cfg,
			    const aeth_vmm_options *o, const aeth_vmm *m)
{
	const char *dir = cfg_str(cfg, "vmm.snapshot_dir");
	char *def = aeth__sprintf("%s/snapshots", aeth_vmm_state_dir(m));
	DIR *d;
	struct dirent *e;
	int n = 0;

	if (o->snapshots == AETH_SNAPSHOTS_OFF) {
		report(c, "snapshots", 0, NULL, "off (vmm.snapshots): every VM "
		       "boots its kernel");
		free(def);
		return;
	}
	if (!dir || !*dir)
		dir = def;
	if ((d = opendir(dir))) {
		while ((e = readdir(d)))
			n += strlen(e->d_name) == 16 &&
			     strspn(e->d_name, "0123456789abcdef") == 16;
		closedir(d);
	}
	if (aeth_vmm_jailed(NULL, m) == 1)
		report(c, "snapshots", 0, NULL, "auto: VMs without a root disk "
		       "or tap start from the snapshot of their shape, kept in "
		       "%s (%d there now); they give back memory their guests "
		       "free", dir ? dir : "?", n);
	else
		report(c, "snapshots", 1, "turn the VMM jail on (vmm.jail: auto "
		       "as root, docs/security.md), or vmm.snapshots: off to "
		       "boot VMs that give freed memory back", "auto, kept in %s "
		       "(%d there now), but without the jail restored VMs keep "
		       "every page their guests once wrote until deleted (no "
		       "free page reporting: docs/vm.md \"Snapshots\")",
		       dir ? dir : "?", n);
	free(def);
}

/* How VMMs are confined here (lib/vm/jail.c knows; docs/security.md). */
static void check_confinement(checker *c, const aeth_config *cfg)
{
	aeth_vmm_options o;
	aeth_vmm *m = NULL;

	aeth__vmm_options_from_config(cfg, &o);
	if (aeth_vmm_open(&m, &o) != 0) {
		report(c, "jail", 2, "fix the setting it names (docs/security.md)",
		       "%s", aeth_error_last());
		return;
	}
	aeth__jail_report(m, on_finding, c);
	check_snapshots(c, cfg, &o, m);
	aeth_vmm_free(m);
}

/* Warm pools (docs/worker.md): each one's shape against the catalogue
 * and the limits (a worker with a bad one refuses to start). */
static void check_pools(checker *c, const aeth__policy *p)
{
	char **names = NULL;
	unsigned int vms = 0;
	uint64_t mem = 0;

	if (!c->cfg || aeth_config_names(&names, c->cfg, "pool") != 0)
		return;
	for (char **n = names; *n; n++) {
		char key[160], what[96];
		const char *image, *net;
		unsigned int size, vcpus, memory;

#define GET(f) (snprintf(key, sizeof(key), "pool.%s." f, *n), cfg_str(c->cfg, key))
		size = (unsigned int)strtoul(GET("size") ? GET("size") : "0", NULL, 10);
		vcpus = (unsigned int)strtoul(GET("vcpus") ? GET("vcpus") : "0", NULL, 10);
		memory = (unsigned int)strtoul(GET("memory_mb") ? GET("memory_mb") : "0",
					       NULL, 10);
		image = GET("image") ? GET("image") : "default";
		net = GET("network") ? GET("network") : "none";
#undef GET
		snprintf(what, sizeof(what), "pool %s", *n);
		if (!aeth__policy_image(p, image))
			report(c, what, 2, "name an image of the catalogue", "no image "
			       "\"%s\"", image);
		else if (strcmp(net, "none") && !aeth__policy_profile(p, net))
			report(c, what, 2, "name a network profile", "no network "
			       "profile \"%s\"", net);
		else {
			char v[16] = "default", m[16] = "default";

			if (vcpus)
				snprintf(v, sizeof(v), "%u", vcpus);
			if (memory)
				snprintf(m, sizeof(m), "%u", memory);
			report(c, what, 0, NULL, "%u VMs kept ready: %s vCPU, %s MiB, "
			       "image %s, network %s", size, v, m, image, net);
		}
		vms += size;
		mem += (uint64_t)size * (memory ? memory : 256);
	}
	if (vms > p->vms || mem > p->memory_mb)
		report(c, "pools", 1, "raise limits.vms / limits.memory_mb or make "
		       "the pools smaller", "the pools want %u VMs, %llu MiB: more "
		       "than limits.vms (%u) or limits.memory_mb (%llu) let them "
		       "hold, and nothing would be left for other shapes", vms,
		       (unsigned long long)mem, p->vms,
		       (unsigned long long)p->memory_mb);
	aeth_strarray_free(names);
}

/* The catalogue: every image file there and safe to open, each profile's
 * rules, each allowlisted tap present, the limits in force. */
static void check_catalogue(checker *c, const aeth__policy *p, bool fc)
{
	aeth__buf b = AETH__BUF_INIT;

	for (size_t i = 0; i < p->nimages; i++) {
		const aeth__image *g = &p->images[i];
		const char *files[3] = {g->kernel, g->initrd, g->rootfs};
		char what[96];
		bool ok = true;

		snprintf(what, sizeof(what), "image %s", g->name);
		for (size_t f = 0; f < 3 && ok; f++) {
			int fd = files[f] ? aeth__vm_open_image(NULL, f == 0 ?
					    "kernel" : f == 1 ? "initramfs" :
					    "root filesystem", files[f]) : 0;

			if (fd < 0) {
				/* the default image has its own lines above */
				if (i > 0)
					report(c, what, 2, "fix images: in the "
					       "configuration", "%s", aeth_error_last());
				ok = false;
			} else if (fd > 0) {
				close(fd);
			}
		}
		if (ok && i > 0)
			report(c, what, 0, NULL, "%s%s%s", g->kernel,
			       g->rootfs ? ", root disk " : "",
			       g->rootfs ? g->rootfs : "");
	}
	for (size_t i = 0; i < p->nprofiles; i++) {
		char what[96];

		aeth__buf_free(&b);
		for (char **r = p->profiles[i].allow; r && *r; r++)
			aeth__buf_printf(&b, "%s%s", b.len ? ", " : "", *r);
		snprintf(what, sizeof(what), "network %s", p->profiles[i].name);
		if (fc)
			report(c, what, 1, "use vmm.backend: qemu for profiles, or "
			       "taps (network.taps) with firecracker", "not usable: "
			       "the firecracker backend has no user networking");
		else
			report(c, what, 0, NULL, "guests reach %s", b.len ? b.data :
			       "nothing (a network card, no destination)");
	}
	aeth__buf_free(&b);
	for (char **t = p->taps; t && *t; t++)
		report(c, "tap", if_nametoindex(*t) ? 0 : 1, "create it (ip tuntap "
		       "add ...) or remove it from network.taps", "%s%s", *t,
		       if_nametoindex(*t) ? "" : ": no such device");
	check_pools(c, p);
	report(c, "limits", 0, NULL, "per VM: %u vCPUs, %u MiB; per worker: %u VMs, "
	       "%llu MiB guest memory, %llu MiB overlay disk; lifetime %u s "
	       "(at most %u); commands %u ms (at most %u)", p->vm_vcpus,
	       p->vm_memory_mb, p->vms, (unsigned long long)p->memory_mb,
	       (unsigned long long)p->overlay_mb, p->ttl_s, p->ttl_max_s,
	       p->exec_timeout_ms, p->exec_timeout_max_ms);
}

/* metrics.listen: off, or an address this build can serve. Not bound
 * here: a running worker may hold it. */
static void check_metrics(checker *c, const aeth_config *cfg)
{
	const char *listen = cfg_str(cfg, "metrics.listen");
	bool remote = false;
#ifdef AETH_HAVE_HTTP
	char *host = NULL, *up = NULL;
	int port = 0;
#endif

	aeth_config_get_bool(&remote, cfg, "metrics.allow_remote");
	if (!listen || !strcmp(listen, "off")) {
		report(c, "metrics", 0, NULL, "off (set metrics.listen, e.g. "
		       "127.0.0.1:9464, for GET /metrics; docs/metrics.md)");
		return;
	}
#ifndef AETH_HAVE_HTTP
	report(c, "metrics", 2, "install libmicrohttpd-dev (scripts/setup.sh) and "
	       "rebuild, or unset metrics.listen", "metrics.listen is %s but this "
	       "libaetherium was built without HTTP", listen);
#else
	if (aeth__http_parse_listen(listen, &host, &port, &up) != 0) {
		report(c, "metrics", 2, "fix metrics.listen", "%s", aeth_error_last());
		return;
	}
	if (!up && !remote && strncmp(host, "127.", 4) && strcmp(host, "::1") &&
	    strcmp(host, "localhost"))
		report(c, "metrics", 2, "listen on 127.0.0.1 or a unix: socket, or "
		       "set metrics.allow_remote: true (plain HTTP, no auth)",
		       "metrics.listen %s is not a loopback address", listen);
	else
		report(c, "metrics", 0, NULL, "GET /metrics and /healthz on %s%s",
		       listen, remote ? " (metrics.allow_remote: true)" : "");
	free(host);
	free(up);
#endif
}

int aeth_worker_check(const aeth_config *cfg, aeth_check_cb cb, void *userdata)
{
	checker c = {cb, userdata, 0, NULL};
	aeth_config *own = NULL;
	aeth__policy pol;
	bool loaded = false;

	if (!cfg) {
		if (aeth_config_load(&own, NULL) != 0)
			return AETH_ERROR;
		cfg = own;
	}
	c.cfg = cfg;
	check_binaries(&c, cfg_str(cfg, "vmm.backend"));
	check_accel(&c);
	check_confinement(&c, cfg);
	check_image(&c, cfg);
	if (aeth__policy_load(&pol, cfg) == 0) {
		check_catalogue(&c, &pol, cfg_str(cfg, "vmm.backend") &&
				!strcmp(cfg_str(cfg, "vmm.backend"), "firecracker"));
		loaded = true;
	} else {
		report(&c, "catalogue", 2, "fix the key it names", "%s",
		       aeth_error_last());
	}
	check_redis(&c, cfg);
	check_postgres(&c, cfg);
	check_access(&c, cfg, loaded ? &pol : NULL);
	check_metrics(&c, cfg);
	if (loaded)
		aeth__policy_clear(&pol);
	aeth_config_free(own);
	return c.failures ? aeth__error_set(AETH_ERROR, "%d check(s) failed",
					   c.failures) : 0;
}
