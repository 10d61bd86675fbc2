/*
 * lib/worker/pool.c - warm pools (pool.h, docs/worker.md "Warm pools").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "agent/agent_client.h"
#include "metrics/metrics.h"
#include "vm/vm_internal.h"
#include "worker/pool.h"
#include "worker/worker_internal.h"

#define POOL_TICK_MS 1000
/* After a pool VM could not be made: wait, doubling up to the max. */
#define BACKOFF_MIN_MS 2000
#define BACKOFF_MAX_MS 60000
/* A ready VM's agent must answer a ping this fast. */
#define PING_TIMEOUT_MS 2000
/* The pool thread pings each ready VM this often, so that a hand-out
 * needs no round trip to the guest (~10 ms under TCG on a busy host)
 * while every VM handed out answered a moment ago... */
#define PING_EVERY_MS 2000
/* ...at most this long ago; else the hand-out pings it first. */
#define FRESH_MS 4000

/* A ready VM: when its agent last answered (aeth__now_ms()), and whether
 * the pool thread is pinging it right now (then it is not taken). */
typedef struct {
	aeth_vm *vm;
	int64_t ok_ms;
	bool checking;
} ready_vm;

typedef struct {
	char *name;
	unsigned int size, vcpus, memory_mb;
	const aeth__image *image;
	const aeth__profile *profile;   /* NULL: network "none" */
	char *network;
	bool rootfs;
	uint64_t overlay_mb;
	ready_vm *ready;                /* oldest first */
	size_t nready;
	unsigned int booting;
	unsigned long handed_out, made, failed;
	unsigned int backoff_ms;
	int64_t next_try_ms;
	char last_error[256];
} pool_t;

struct aeth__pools {
	pool_t *p;
	size_t n;
	pthread_mutex_t mu;       /* the lists and counters above */
	pthread_cond_t cond;      /* wakes the pool thread */
	bool stop;
	pthread_t thread;
	bool started;
	char *tag_prefix;         /* "<worker id>/" */
};

static const char *cfg_str(const aeth_config *cfg, const char *key)
{
	const char *v = NULL;

	return aeth_config_get_string(&v, cfg, key) == 0 && v ? v : "";
}

static unsigned int cfg_uint(const aeth_config *cfg, const char *key)
{
	return (unsigned int)strtoul(cfg_str(cfg, key), NULL, 10);
}

static int load_one(aeth_worker *w, pool_t *p, const char *name)
{
	const aeth__policy *pol = &w->policy;
	char key[160];

#define KEY(f) (snprintf(key, sizeof(key), "pool.%s." f, name), key)
	p->name = aeth__strdup(name);
	p->size = cfg_uint(w->cfg, KEY("size"));
	p->vcpus = cfg_uint(w->cfg, KEY("vcpus"));
	p->memory_mb = cfg_uint(w->cfg, KEY("memory_mb"));
	p->network = aeth__strdup(cfg_str(w->cfg, KEY("network")));
	p->rootfs = !strcmp(cfg_str(w->cfg, KEY("rootfs")), "true");
	p->image = aeth__policy_image(pol, cfg_str(w->cfg, KEY("image")));
	if (!p->name || !p->network)
		return AETH_ENOMEM;
	if (!p->image)
		return aeth__error_set(AETH_EINVALID, "pool.%s.image: no image \"%s\" "
				       "in this worker's catalogue", name,
				       cfg_str(w->cfg, KEY("image")));
#undef KEY
	if (!p->vcpus)
		p->vcpus = w->vcpus;
	if (!p->memory_mb)
		p->memory_mb = w->memory_mb;
	if (strcmp(p->network, "none") != 0) {
		if (!pol->network)
			return aeth__error_set(AETH_EINVALID, "pool.%s.network: "
					       "\"%s\", but vmm.network is false",
					       name, p->network);
		if (!(p->profile = aeth__policy_profile(pol, p->network)))
			return aeth__error_set(AETH_EINVALID, "pool.%s.network: no "
					       "network profile \"%s\"", name,
					       p->network);
	}
	if (p->rootfs && !p->image->rootfs)
		return aeth__error_set(AETH_EINVALID, "pool.%s.rootfs: image \"%s\" "
				       "has no root disk", name, p->image->name);
	if (p->vcpus > pol->vm_vcpus || p->memory_mb > pol->vm_memory_mb)
		return aeth__error_set(AETH_EINVALID, "pool.%s: %u vCPUs and %u MiB "
				       "pass limits.vm_vcpus (%u) or "
				       "limits.vm_memory_mb (%u)", name, p->vcpus,
				       p->memory_mb, pol->vm_vcpus,
				       pol->vm_memory_mb);
	p->overlay_mb = p->rootfs ? aeth__overlay_mb(p->image->rootfs) : 0;
	return 0;
}

int aeth__pools_load(aeth_worker *w)
{
	struct aeth__pools *ps;
	char **names = NULL;
	size_t n = 0;
	int rc;

	if ((rc = aeth_config_names(&names, w->cfg, "pool")) != 0)
		return rc;
	while (names[n])
		n++;
	if (n == 0) {
		aeth_strarray_free(names);
		return 0;
	}
	if (!(ps = calloc(1, sizeof(*ps))) || !(ps->p = calloc(n, sizeof(pool_t)))) {
		free(ps);
		aeth_strarray_free(names);
		return aeth__error_oom();
	}
	pthread_mutex_init(&ps->mu, NULL);
	pthread_cond_init(&ps->cond, NULL);
	w->pools = ps;
	ps->tag_prefix = aeth__sprintf("%s/", w->id);
	rc = ps->tag_prefix ? 0 : AETH_ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = load_one(w, &ps->p[i], names[i]);
		ps->n++;
	}
	aeth_strarray_free(names);
	if (rc)
		aeth__pools_free(w);
	return rc;
}

void aeth__pools_free(aeth_worker *w)
{
	struct aeth__pools *ps = w->pools;

	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		for (size_t j = 0; j < ps->p[i].nready; j++)
			aeth_vm_free(ps->p[i].ready[j].vm);
		free(ps->p[i].ready);
		free(ps->p[i].name);
		free(ps->p[i].network);
	}
	free(ps->p);
	free(ps->tag_prefix);
	pthread_mutex_destroy(&ps->mu);
	pthread_cond_destroy(&ps->cond);
	free(ps);
	w->pools = NULL;
}

/* ---- quota bookkeeping (w->vm_mu) ---- */

static void count(aeth_worker *w, const pool_t *p, int delta)
{
	pthread_mutex_lock(&w->vm_mu);
	w->pool_vms += (unsigned int)delta;
	w->pool_memory_mb += (uint64_t)(int64_t)delta * p->memory_mb;
	w->pool_overlay_mb += (uint64_t)(int64_t)delta * p->overlay_mb;
	pthread_mutex_unlock(&w->vm_mu);
}

/* ---- one VM ---- */

/* Kill and remove a pool VM without asking its guest. */
static void discard(aeth_vm *vm, const char *why)
{
	aeth__vm_fail(vm, why);
	if (aeth_vm_delete(vm) != 0)
		aeth__warn("pool VM %s: %s", aeth_vm_id(vm), aeth_error_last());
	aeth_vm_free(vm);
}

/* ok_ms: when its agent last answered (0: not known, ping it soon). */
static bool push_ready(pool_t *p, aeth_vm *vm, int64_t ok_ms)
{
	ready_vm *r = realloc(p->ready, (p->nready + 1) * sizeof(*r));

	if (!r)
		return false;
	p->ready = r;
	p->ready[p->nready++] = (ready_vm){vm, ok_ms, false};
	return true;
}

static aeth_vm *remove_at(pool_t *p, size_t j, int64_t *ok_ms)
{
	aeth_vm *vm = p->ready[j].vm;

	if (ok_ms)
		*ok_ms = p->ready[j].ok_ms;
	memmove(p->ready + j, p->ready + j + 1,
		(p->nready - j - 1) * sizeof(*p->ready));
	p->nready--;
	return vm;
}

/* The oldest (or newest) ready VM nobody is pinging, taken out; NULL:
 * none. */
static aeth_vm *pop_ready(pool_t *p, bool oldest, int64_t *ok_ms)
{
	for (size_t k = 0; k < p->nready; k++) {
		size_t j = oldest ? k : p->nready - 1 - k;

		if (!p->ready[j].checking)
			return remove_at(p, j, ok_ms);
	}
	return NULL;
}

/* How long a hand-out or an eviction waits for a VM the pool thread is
 * pinging (a spare taken back after a restart: its first ping says
 * hello again, ~150 ms). */
#define WAIT_CHECK_MS 5000

static bool any_checking(const pool_t *p)
{
	for (size_t j = 0; j < p->nready; j++)
		if (p->ready[j].checking)
			return true;
	return false;
}

/* pop_ready(), waiting (ps->mu held) while the only ready VMs are being
 * pinged. */
static aeth_vm *pop_ready_wait(struct aeth__pools *ps, pool_t *p, bool oldest,
			       int64_t *ok_ms)
{
	int64_t deadline = aeth__now_ms() + WAIT_CHECK_MS;
	aeth_vm *vm;

	while (!(vm = pop_ready(p, oldest, ok_ms)) && any_checking(p) &&
	       aeth__now_ms() < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ps->cond, &ps->mu, &ts);
	}
	return vm;
}

static ready_vm *find_ready(pool_t *p, const aeth_vm *vm)
{
	for (size_t j = 0; j < p->nready; j++)
		if (p->ready[j].vm == vm)
			return &p->ready[j];
	return NULL;
}

/* Create and start one VM of pool p, tagged as its own. */
static aeth_vm *make_vm(aeth_worker *w, pool_t *p)
{
	aeth_vm_options o = AETH_VM_OPTIONS_INIT;
	aeth_vm *vm = NULL;
	char name[96], *tag;
	int rc;

	snprintf(name, sizeof(name), "pool-%s", p->name);
	o.name = name;
	o.vcpus = p->vcpus;
	o.memory_mb = p->memory_mb;
	o.kernel_path = p->image->kernel;
	o.initrd_path = p->image->initrd;
	o.rootfs_path = p->rootfs ? p->image->rootfs : NULL;
	o.net = p->profile ? AETH_NET_USER : AETH_NET_NONE;
	o.net_allow = p->profile ? (const char *const *)p->profile->allow : NULL;
	/* an unused pool VM is replaced when its lifetime ends; a hand-out
	 * gives it the user's lifetime from then on */
	o.ttl_s = w->policy.ttl_s;
	tag = aeth__sprintf("%s%s", w->pools->tag_prefix, p->name);
	rc = tag ? aeth_vm_create(&vm, w->vmm, &o) : AETH_ENOMEM;
	if (rc == 0)
		rc = aeth__vm_set_pool(vm, tag);
	if (rc == 0)
		rc = aeth_vm_start(vm);
	free(tag);
	if (rc == 0)
		return vm;
	pthread_mutex_lock(&w->pools->mu);
	snprintf(p->last_error, sizeof(p->last_error), "%s", aeth_error_last());
	pthread_mutex_unlock(&w->pools->mu);
	if (vm) {
		aeth_vm_delete(vm);
		aeth_vm_free(vm);
	}
	return NULL;
}

/* ---- the pool thread ---- */

/* The guest of a VM answers now (its agent reconnected if needed). */
static bool answers(aeth_vm *vm)
{
	aeth__agent *a = NULL;

	if (!aeth__vm_vmm_alive(vm) || aeth__vm_agent(vm, &a) != 0)
		return false;
	return aeth__agent_ping(a, PING_TIMEOUT_MS) == 0;
}

/* Why a ready VM must go (its VMM died, its lifetime ended unused), or
 * NULL. */
static const char *unfit(aeth_vm *vm, int64_t wall)
{
	int64_t exp = aeth_vm_expires_ms(vm);

	if (!aeth__vm_vmm_alive(vm))
		return "its VMM died";
	if (exp && wall >= exp)
		return "its lifetime ended unused";
	return NULL;
}

static void drop_ready(aeth_worker *w, pool_t *p, aeth_vm *vm, const char *why)
{
	aeth__worker_say(w, NULL, "Pool %s: VM %s removed (%s)", p->name,
			 aeth_vm_id(vm), why);
	discard(vm, why);
	count(w, p, -1);
}

/*
 * Look after the ready VMs: remove those whose VMM died or whose lifetime
 * ended; ping the others every PING_EVERY_MS (outside the lock, the VM
 * marked so that nobody takes it meanwhile), removing one that does not
 * answer.
 */
static void check_ready(aeth_worker *w)
{
	struct aeth__pools *ps = w->pools;

	for (size_t i = 0; i < ps->n; i++) {
		pool_t *p = &ps->p[i];

		for (;;) {
			int64_t now = aeth__now_ms(), wall = aeth__wall_ms();
			aeth_vm *vm = NULL, *ping = NULL;
			const char *why = NULL;

			pthread_mutex_lock(&ps->mu);
			for (size_t j = 0; j < p->nready && !vm && !ping; j++) {
				ready_vm *r = &p->ready[j];

				if (r->checking)
					continue;
				if ((why = unfit(r->vm, wall)))
					vm = remove_at(p, j, NULL);
				else if (now - r->ok_ms >= PING_EVERY_MS) {
					r->checking = true;
					ping = r->vm;
				}
			}
			pthread_mutex_unlock(&ps->mu);
			if (vm) {
				drop_ready(w, p, vm, why);
				continue;
			}
			if (!ping)
				break;
			{
				bool ok = answers(ping);
				ready_vm *r;

				pthread_mutex_lock(&ps->mu);
				r = find_ready(p, ping);
				r->checking = false;
				r->ok_ms = aeth__now_ms();
				if (!ok)
					remove_at(p, (size_t)(r - p->ready), NULL);
				pthread_cond_broadcast(&ps->cond); /* a waiting take */
				pthread_mutex_unlock(&ps->mu);
				if (!ok)
					drop_ready(w, p, ping, "its agent did not answer");
			}
		}
	}
}

/* The pool that most needs a VM now, marked booting; NULL: none. */
static pool_t *next_to_fill(struct aeth__pools *ps)
{
	int64_t now = aeth__now_ms();
	pool_t *best = NULL;
	long most = 0;

	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < ps->n; i++) {
		pool_t *p = &ps->p[i];
		long missing = (long)p->size - (long)(p->nready + p->booting);

		if (missing > most && now >= p->next_try_ms) {
			most = missing;
			best = p;
		}
	}
	if (best)
		best->booting++;
	pthread_mutex_unlock(&ps->mu);
	return best;
}

/* Make one VM for the pool most in need. true when one was tried. */
static bool refill_one(aeth_worker *w)
{
	struct aeth__pools *ps = w->pools;
	pool_t *p = next_to_fill(ps);
	aeth_vm *vm;

	if (!p)
		return false;
	/* a pool VM counts like any VM: it waits while the limits are full
	 * (users' creates evict pool VMs, never the other way round) */
	if (aeth__quota_reserve(w, p->memory_mb, p->overlay_mb) != 0) {
		pthread_mutex_lock(&ps->mu);
		p->booting--;
		if (strcmp(p->last_error, aeth_error_last()) != 0) {
			snprintf(p->last_error, sizeof(p->last_error), "%s",
				 aeth_error_last());
			aeth__worker_say(w, NULL, "Pool %s waits: %s", p->name,
					 p->last_error);
		}
		p->next_try_ms = aeth__now_ms() + BACKOFF_MIN_MS;
		pthread_mutex_unlock(&ps->mu);
		return false;
	}
	vm = make_vm(w, p);
	/* its quota moves from "being created" to the pool */
	aeth__quota_release(w, p->memory_mb, p->overlay_mb);
	if (vm)
		count(w, p, +1);
	pthread_mutex_lock(&ps->mu);
	p->booting--;
	if (vm && !push_ready(p, vm, aeth__now_ms())) {
		pthread_mutex_unlock(&ps->mu);
		discard(vm, "out of memory");
		count(w, p, -1);
		return true;
	}
	if (vm) {
		p->made++;
		p->backoff_ms = 0;
		p->last_error[0] = '\0';
	} else {
		p->failed++;
		p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (p->backoff_ms > BACKOFF_MAX_MS)
			p->backoff_ms = BACKOFF_MAX_MS;
		p->next_try_ms = aeth__now_ms() + p->backoff_ms;
	}
	pthread_mutex_unlock(&ps->mu);
	if (vm)
		aeth__worker_say(w, NULL, "Pool %s: VM %s ready (%s, %lld ms)", p->name,
				 aeth_vm_id(vm), aeth_origin_name(aeth_vm_origin(vm)),
				 (long long)aeth_vm_start_ms(vm));
	else
		aeth__warn("pool %s: cannot make a VM: %s (next try in %u s)",
			   p->name, p->last_error, p->backoff_ms / 1000);
	return true;
}

static void *pool_main(void *arg)
{
	aeth_worker *w = arg;
	struct aeth__pools *ps = w->pools;

	for (;;) {
		bool stop;

		pthread_mutex_lock(&ps->mu);
		stop = ps->stop;
		pthread_mutex_unlock(&ps->mu);
		if (stop || atomic_load(&w->stopping))
			break;
		check_ready(w);
		/* one VM at a time; straight on to the next while some pool
		 * misses one, else wait for a tick or a hand-out */
		if (refill_one(w))
			continue;
		pthread_mutex_lock(&ps->mu);
		if (!ps->stop) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += POOL_TICK_MS / 1000;
			pthread_cond_timedwait(&ps->cond, &ps->mu, &ts);
		}
		pthread_mutex_unlock(&ps->mu);
	}
	return NULL;
}

int aeth__pools_start(aeth_worker *w)
{
	if (!w->pools)
		return 0;
	if (pthread_create(&w->pools->thread, NULL, pool_main, w) != 0)
		return aeth__error_errno(AETH_ERROR, "cannot start the pool thread");
	w->pools->started = true;
	return 0;
}

void aeth__pools_stop(aeth_worker *w)
{
	struct aeth__pools *ps = w->pools;
	unsigned int n = 0;

	if (!ps)
		return;
	pthread_mutex_lock(&ps->mu);
	ps->stop = true;
	pthread_cond_broadcast(&ps->cond);
	pthread_mutex_unlock(&ps->mu);
	if (ps->started)
		pthread_join(ps->thread, NULL);
	ps->started = false;
	/* spares nobody owns: they go with the worker */
	for (size_t i = 0; i < ps->n; i++) {
		aeth_vm *vm;

		while ((vm = pop_ready(&ps->p[i], true, NULL))) {
			discard(vm, "its worker stopped");
			count(w, &ps->p[i], -1);
			n++;
		}
	}
	if (n)
		aeth__worker_say(w, NULL, "Stopping: deleted %u pool VM%s", n,
				 n == 1 ? "" : "s");
}

/* ---- hand-out ---- */

static bool fits(const pool_t *p, const aeth__pool_shape *s)
{
	return p->vcpus == s->vcpus && p->memory_mb == s->memory_mb &&
	       !strcmp(p->image->name, s->image) && !strcmp(p->network, s->network) &&
	       p->rootfs == s->rootfs;
}

int aeth__pool_take(aeth_vm **out, aeth_worker *w, const aeth__pool_shape *shape)
{
	struct aeth__pools *ps = w->pools;

	*out = NULL;
	for (size_t i = 0; ps && i < ps->n; i++) {
		pool_t *p = &ps->p[i];

		if (!fits(p, shape))
			continue;
		for (;;) {
			aeth__agent *a = NULL;
			int64_t ok_ms = 0;
			aeth_vm *vm;

			pthread_mutex_lock(&ps->mu);
			vm = pop_ready_wait(ps, p, true, &ok_ms);
			if (vm)
				p->handed_out++;
			pthread_cond_broadcast(&ps->cond); /* refill */
			pthread_mutex_unlock(&ps->mu);
			if (!vm)
				break;
			/* answered a moment ago on a connection still up, or now */
			if ((aeth__now_ms() - ok_ms < FRESH_MS &&
			     aeth__vm_vmm_alive(vm) && aeth__vm_agent(vm, &a) == 0 &&
			     aeth__agent_alive(a)) || answers(vm)) {
				*out = vm;
				return 0;
			}
			aeth__warn("pool %s: VM %s does not answer; deleting it", p->name,
				   aeth_vm_id(vm));
			pthread_mutex_lock(&ps->mu);
			p->handed_out--;
			pthread_mutex_unlock(&ps->mu);
			discard(vm, "it did not answer when handed out");
			count(w, p, -1);
		}
	}
	aeth_error_clear();
	return AETH_ENOTFOUND;
}

static pool_t *pool_of(aeth_worker *w, const aeth_vm *vm)
{
	for (size_t i = 0; w->pools && i < w->pools->n; i++) {
		pool_t *p = &w->pools->p[i];

		if (p->vcpus == aeth_vm_vcpus(vm) &&
		    p->memory_mb == aeth_vm_memory_mb(vm) &&
		    (aeth_vm_rootfs_path(vm) != NULL) == p->rootfs)
			return p;
	}
	return NULL;
}

void aeth__pool_taken(aeth_worker *w, aeth_vm *vm)
{
	pool_t *p = pool_of(w, vm);

	if (p)
		count(w, p, -1);
}

void aeth__pool_drop(aeth_worker *w, aeth_vm *vm)
{
	pool_t *p = pool_of(w, vm);

	discard(vm, "its hand-out failed");
	if (p)
		count(w, p, -1);
}

bool aeth__pool_evict(aeth_worker *w)
{
	struct aeth__pools *ps = w->pools;
	pool_t *p = NULL;
	aeth_vm *vm = NULL;

	if (!ps)
		return false;
	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < ps->n; i++)
		if (ps->p[i].nready && (!p || ps->p[i].nready > p->nready))
			p = &ps->p[i];
	if (p)
		vm = pop_ready_wait(ps, p, false, NULL);
	pthread_mutex_unlock(&ps->mu);
	if (!vm)
		return false;
	aeth__worker_say(w, NULL, "Pool %s: VM %s deleted to make room for a "
			 "vm:create (limits.*)", p->name, aeth_vm_id(vm));
	discard(vm, "deleted to make room for a user's VM");
	count(w, p, -1);
	return true;
}

/* ---- restart and dead workers ---- */

static pool_t *pool_named(struct aeth__pools *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->p[i].name, name))
			return &ps->p[i];
	return NULL;
}

/* Does the VM (found on disk) have pool p's shape still? */
static bool same_shape(const pool_t *p, const aeth_vm *vm)
{
	const char *kernel = aeth_vm_kernel_path(vm);

	return aeth_vm_vcpus(vm) == p->vcpus &&
	       aeth_vm_memory_mb(vm) == p->memory_mb &&
	       kernel && !strcmp(kernel, p->image->kernel) &&
	       (aeth_vm_rootfs_path(vm) != NULL) == p->rootfs &&
	       (aeth__vm_net(vm) == AETH_NET_USER) == (p->profile != NULL);
}

/* Each VM in the state dir whose pool tag starts with `prefix`: fn. */
static void each_tagged(aeth_worker *w, const char *prefix,
			void (*fn)(aeth_worker *, aeth_vm *, const char *))
{
	char **ids = NULL;

	if (aeth_vm_list(&ids, w->vmm) != 0)
		return;
	for (char **id = ids; *id; id++) {
		aeth_vm *vm = NULL;
		const char *tag;

		if (aeth_vm_get(&vm, w->vmm, *id) != 0) {
			aeth_error_clear();
			continue;
		}
		tag = aeth__vm_pool(vm);
		if (tag && !strncmp(tag, prefix, strlen(prefix)))
			fn(w, vm, tag + strlen(prefix));
		else
			aeth_vm_free(vm);
	}
	aeth_strarray_free(ids);
}

static void take_back(aeth_worker *w, aeth_vm *vm, const char *name)
{
	struct aeth__pools *ps = w->pools;
	pool_t *p = ps ? pool_named(ps, name) : NULL;
	bool kept = false;

	if (p && same_shape(p, vm) && aeth_vm_status(vm) == AETH_VM_RUNNING) {
		pthread_mutex_lock(&ps->mu);
		/* its agent is reconnected by the pool thread's first ping */
		kept = p->nready < p->size && push_ready(p, vm, 0);
		pthread_mutex_unlock(&ps->mu);
	}
	if (kept) {
		count(w, p, +1);
		return;
	}
	discard(vm, "its pool changed or it is not running");
}

void aeth__pool_reconcile(aeth_worker *w)
{
	char *prefix = aeth__sprintf("%s/", w->id);
	unsigned int before = 0, after = 0;

	if (!prefix)
		return;
	for (size_t i = 0; w->pools && i < w->pools->n; i++)
		before += (unsigned int)w->pools->p[i].nready;
	each_tagged(w, prefix, take_back);
	for (size_t i = 0; w->pools && i < w->pools->n; i++)
		after += (unsigned int)w->pools->p[i].nready;
	if (after > before)
		aeth__worker_say(w, NULL, "Reconciled pool VMs of %s: %u taken back",
				 w->id, after - before);
	free(prefix);
}

static void delete_dead(aeth_worker *w, aeth_vm *vm, const char *name)
{
	aeth__worker_say(w, NULL, "Deleted pool VM %s (pool %s) of a dead worker",
			 aeth_vm_id(vm), name);
	discard(vm, "its worker died");
}

static bool swept(char **v, const char *id)
{
	for (; v && *v; v++)
		if (!strcmp(*v, id))
			return true;
	return false;
}

/* Once per dead worker (it makes no VMs any more): the registry keeps a
 * dead entry for a day, and the adopter asks every few seconds. */
void aeth__pool_reap_dead(aeth_worker *w, char *const *dead)
{
	for (; dead && *dead; dead++) {
		char *prefix, **grown;
		size_t n = 0;

		if (swept(w->pool_swept, *dead))
			continue;
		if ((prefix = aeth__sprintf("%s/", *dead)))
			each_tagged(w, prefix, delete_dead);
		free(prefix);
		while (w->pool_swept && w->pool_swept[n])
			n++;
		if ((grown = realloc(w->pool_swept, (n + 2) * sizeof(*grown)))) {
			w->pool_swept = grown;
			w->pool_swept[n] = aeth__strdup(*dead);
			w->pool_swept[n + (w->pool_swept[n] != NULL)] = NULL;
		}
	}
}

/* ---- visibility ---- */

void aeth__pools_collect(aeth_worker *w)
{
	struct aeth__pools *ps = w->pools;

	if (!ps)
		return;
	/* the names are the config's pool: entries, a bounded set */
	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < ps->n; i++) {
		const pool_t *p = &ps->p[i];

		aeth__metric_add(AETH__M_POOL_VMS, (double)p->nready, p->name,
				 "ready");
		aeth__metric_add(AETH__M_POOL_VMS, p->booting, p->name, "booting");
		aeth__metric_add(AETH__M_POOL_TARGET, p->size, p->name, NULL);
	}
	pthread_mutex_unlock(&ps->mu);
}

char *aeth__pools_json(aeth_worker *w)
{
	struct aeth__pools *ps = w->pools;
	cJSON *a;
	char *s;

	if (!ps || !(a = cJSON_CreateArray()))
		return NULL;
	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < ps->n; i++) {
		const pool_t *p = &ps->p[i];
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddItemToArray(a, o))
			break;
		cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddNumberToObject(o, "size", p->size);
		cJSON_AddNumberToObject(o, "ready", (double)p->nready);
		cJSON_AddNumberToObject(o, "booting", p->booting);
		cJSON_AddNumberToObject(o, "vcpus", p->vcpus);
		cJSON_AddNumberToObject(o, "memory_mb", p->memory_mb);
		cJSON_AddStringToObject(o, "image", p->image->name);
		cJSON_AddStringToObject(o, "network", p->network);
		cJSON_AddBoolToObject(o, "rootfs", p->rootfs);
		cJSON_AddNumberToObject(o, "handed_out", (double)p->handed_out);
		cJSON_AddNumberToObject(o, "made", (double)p->made);
		cJSON_AddNumberToObject(o, "failed", (double)p->failed);
		cJSON_AddStringToObject(o, "last_error", p->last_error);
	}
	pthread_mutex_unlock(&ps->mu);
	s = cJSON_PrintUnformatted(a);
	cJSON_Delete(a);
	return s;
}
