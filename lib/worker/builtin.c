/*
 * lib/worker/builtin.c - the seed's task types: vm:create, vm:execute,
 * vm:delete. Each writes the vms / executions rows as it goes. Problems
 * retrying cannot fix (bad payload, unknown or deleted VM, a VM owned by
 * another worker) fail the task at once, not after a retry storm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "queue/queue_output.h"
#include "vm/vm_internal.h"
#include "worker/exec_glue.h"
#include "client/client_internal.h"
#include "metrics/metrics.h"
#include "task/task.h"
#include "vm/vm_internal.h"
#include "worker/pool.h"
#include "worker/worker_internal.h"

static int fail_now(aeth_task *t, const char *fmt, ...) AETH__PRINTF(2, 3);

static int fail_now(aeth_task *t, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return aeth_task_fail(t, 0, msg);
}

/* The failure message for the last library error, retryable or not. */
static int fail_last(aeth_task *t, int rc, const char *what)
{
	char msg[1024];
	bool retry = !(rc == AETH_EINVALID || rc == AETH_ENOTFOUND ||
		       rc == AETH_ESTATE);

	snprintf(msg, sizeof(msg), "%s: %s", what, aeth_error_last());
	return aeth_task_fail(t, retry, msg);
}

/* What a vm:create resolved to: the options of aeth_vm_create() plus the
 * resources it reserved against the worker's limits. */
typedef struct {
	aeth_vm_options o;
	const aeth__image *image;
	const char *network;      /* "none", "tap" or the profile's name */
	uint64_t overlay_mb;
	bool reserved;
	aeth_vm *pooled;          /* a warm pool's VM, taken for this create */
} create_plan;

/* A ready VM of this shape from a warm pool, if one is: c->pooled. */
static void take_pooled(aeth_worker *w, const create_plan *c, bool disk,
			create_plan *out)
{
	aeth__pool_shape shape;

	if (!w->pools || c->o.net == AETH_NET_TAP)
		return;
	shape.vcpus = c->o.vcpus;
	shape.memory_mb = c->o.memory_mb;
	shape.image = c->image->name;
	shape.network = c->network;
	shape.rootfs = disk;
	aeth__pool_take(&out->pooled, w, &shape);
}

/* Reserve the quotas of a new VM; a limit that pool VMs fill gives way:
 * spares are deleted before a user is refused. */
static int reserve(aeth_worker *w, const create_plan *c)
{
	int rc;

	while ((rc = aeth__quota_reserve(w, c->o.memory_mb, c->overlay_mb)) ==
	       AETH_EBUSY && aeth__pool_evict(w))
		;
	return rc;
}

/*
 * Check a vm:create against the worker's catalogue and limits and fill
 * the plan: the image (never a host path from the payload), the network
 * profile or an allowlisted tap, vCPUs and memory within the per-VM
 * limits, the lifetime, and a reservation of the worker's quotas. 0, or
 * aeth_task_fail()'s code with the rule named (no retry: asking again
 * would be refused again).
 */
static int plan_create(aeth_task *t, const aeth__create_payload *p,
		       create_plan *c)
{
	aeth_worker *w = t->slot->w;
	const aeth__policy *pol = &w->policy;
	bool disk = p->rootfs == AETH__ROOTFS_ON ||
		    (p->rootfs == AETH__ROOTFS_UNSET && pol->use_rootfs);
	unsigned int ttl = p->ttl_s ? p->ttl_s : pol->ttl_s;
	int rc;

	c->o.vcpus = p->vcpus ? p->vcpus : w->vcpus;
	c->o.memory_mb = p->memory_mb ? p->memory_mb : w->memory_mb;
	if (!(c->image = aeth__policy_image(pol, p->image))) {
		char *names = aeth__policy_image_names(pol);

		rc = fail_now(t, "vm:create: worker %s has no image \"%s\" (its "
			      "images: %s)", w->id, p->image, names ? names : "?");
		free(names);
		return rc;
	}
	c->o.kernel_path = c->image->kernel;
	c->o.initrd_path = c->image->initrd;
	if (disk && !c->image->rootfs)
		return fail_now(t, "vm:create: image \"%s\" of worker %s has no root "
				"disk; ask for \"rootfs\": false or another image",
				c->image->name, w->id);
	if (disk && access(c->image->rootfs, R_OK) != 0)
		return fail_now(t, "vm:create: the root disk %s of image \"%s\" is "
				"missing on worker %s: build it with "
				"scripts/build-image.sh --rootfs (or fix images: in "
				"its configuration)", c->image->rootfs,
				c->image->name, w->id);
	c->o.rootfs_path = disk ? c->image->rootfs : NULL;
	c->overlay_mb = disk ? aeth__overlay_mb(c->image->rootfs) : 0;
	c->network = aeth__create_network_name(p);
	if ((p->network == AETH__NET_PROFILE || p->network == AETH__NET_TAP) &&
	    !pol->network)
		return fail_now(t, "vm:create: \"network\": \"%s\" is refused by "
				"worker %s (its vmm.network is false); use "
				"\"network\": \"none\"", c->network, w->id);
	if (p->network == AETH__NET_PROFILE) {
		const aeth__profile *prof = aeth__policy_profile(pol, p->profile);

		if (!prof) {
			char *names = aeth__policy_profile_names(pol);

			rc = fail_now(t, "vm:create: worker %s has no network profile "
				      "\"%s\" (its profiles: none, %s)", w->id,
				      p->profile, names ? names : "?");
			free(names);
			return rc;
		}
		c->o.net = AETH_NET_USER;
		c->o.net_allow = (const char *const *)prof->allow;
	} else if (p->network == AETH__NET_TAP) {
		if (!aeth__policy_tap_allowed(pol, p->tap))
			return fail_now(t, "vm:create: tap device \"%s\" is not in "
					"worker %s's network.taps allowlist", p->tap,
					w->id);
		c->o.net = AETH_NET_TAP;
		c->o.tap_name = p->tap;
	}
	if (c->o.vcpus > pol->vm_vcpus)
		return fail_now(t, "vm:create: %u vCPUs asked; worker %s allows at "
				"most %u per VM (limits.vm_vcpus)", c->o.vcpus, w->id,
				pol->vm_vcpus);
	if (c->o.memory_mb > pol->vm_memory_mb)
		return fail_now(t, "vm:create: %u MiB of memory asked; worker %s "
				"allows at most %u MiB per VM (limits.vm_memory_mb)",
				c->o.memory_mb, w->id, pol->vm_memory_mb);
	if (ttl > pol->ttl_max_s)
		return fail_now(t, "vm:create: a lifetime (ttl) of %u s asked; "
				"worker %s allows at most %u s (limits.ttl_max_s)",
				ttl, w->id, pol->ttl_max_s);
	c->o.ttl_s = ttl;
	take_pooled(w, c, disk, c);
	if (c->pooled)
		return 0;
	if (reserve(w, c) != 0)
		return fail_now(t, "vm:create: %s", aeth_error_last());
	c->reserved = true;
	return 0;
}

/* vms.metadata: what the VM was made from, when it ends, and where it
 * lives (host and state dir: who may adopt it, adopt.c). */
static char *vm_metadata(const aeth_worker *w, const create_plan *c,
			 const aeth_vm *vm)
{
	cJSON *m = cJSON_CreateObject();
	int64_t exp = vm ? aeth_vm_expires_ms(vm) : 0;
	char *s;

	cJSON_AddStringToObject(m, "host", w->host_id);
	cJSON_AddStringToObject(m, "state_dir", aeth_vmm_state_dir(w->vmm));
	cJSON_AddStringToObject(m, "image", c->image->name);
	cJSON_AddStringToObject(m, "network", c->network);
	if (vm)
		cJSON_AddStringToObject(m, "origin",
					aeth_origin_name(aeth_vm_origin(vm)));
	if (c->o.net == AETH_NET_TAP && c->o.tap_name)
		cJSON_AddStringToObject(m, "tap", c->o.tap_name);
	if (c->o.ttl_s) {
		char when[32];
		time_t t = (time_t)(exp / 1000);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		cJSON_AddNumberToObject(m, "ttl_s", c->o.ttl_s);
		cJSON_AddStringToObject(m, "expires_at", when);
	}
	s = m ? cJSON_PrintUnformatted(m) : NULL;
	cJSON_Delete(m);
	return s;
}

/* The row of a VM being handed out or booted (strings borrowed). */
static void fill_row(aeth__vm_row *row, const aeth_worker *w,
		     const aeth__create_payload *p, const create_plan *c,
		     const aeth_vm *vm, const char *meta)
{
	row->id = aeth_vm_id(vm);
	row->name = p->name;
	row->orchestrator = aeth_vm_backend(vm);
	row->vcpus = c->o.vcpus;
	row->memory_mb = c->o.memory_mb;
	row->kernel_path = aeth_vm_kernel_path(vm);
	row->rootfs_path = aeth_vm_rootfs_path(vm);
	row->socket_path = aeth_vm_agent_socket(vm);
	row->owner_worker = w->id;
	row->metadata = meta;
}

/* The VM belongs to the tenant of the task that made it (a task put in
 * Redis without a row by a trusted program: "default"). */
static void row_tenant(aeth__vm_row *row, aeth__slot *s, aeth_task *t,
		       char tenant[65])
{
	if (aeth__rec_task_tenant(s->rec, t->qt->id, tenant) == 0)
		row->tenant = tenant;
	aeth_error_clear();
}

static int set_create_result(aeth_task *t, const aeth_vm *vm, const char *name,
			     int64_t ready_ms)
{
	char *result = aeth__create_result(aeth_vm_id(vm), name,
					   aeth_origin_name(aeth_vm_origin(vm)),
					   ready_ms);
	int rc = result ? aeth_task_set_result(t, result) : AETH_ENOMEM;

	free(result);
	return rc;
}

/*
 * A warm pool's VM for this create: it gets the payload's name and
 * lifetime, its row (as a cold VM's: creating, then running with its
 * paths) and joins the VM table; nothing boots.
 */
static int hand_out(aeth_task *t, const aeth__create_payload *p,
		    create_plan *c, int64_t t0)
{
	aeth__slot *s = t->slot;
	aeth_worker *w = s->w;
	aeth_vm *vm = c->pooled;
	aeth__vm_row row = {0};
	char *meta = NULL, tenant[65];
	int rc;

	c->pooled = NULL;
	if ((rc = aeth__vm_claim(vm, p->name, c->o.ttl_s, aeth__now_ms() - t0)) ||
	    !(meta = vm_metadata(w, c, vm))) {
		rc = fail_last(t, rc ? rc : AETH_ENOMEM, "cannot hand out a pool VM");
		aeth__pool_drop(w, vm);
		return rc;
	}
	fill_row(&row, w, p, c, vm, meta);
	aeth__log_ctx_vm(row.id);
	row_tenant(&row, s, t, tenant);
	if (aeth__rec_vm_insert(s->rec, &row) != 0) {
		rc = fail_last(t, AETH_EUNAVAILABLE, "cannot record the VM");
		aeth__pool_drop(w, vm);
		free(meta);
		return rc;
	}
	/* the row has its final paths already: only its status moves on */
	aeth__rec_vm_status(s->rec, row.id, "running", NULL);
	aeth__metric_inc(AETH__M_VM_BOOTS, "pool", "ok");
	aeth__metric_observe(AETH__M_VM_BOOT_SECONDS,
			     (double)(aeth__now_ms() - t0) / 1000.0, "pool", NULL);
	rc = set_create_result(t, vm, p->name, aeth__now_ms() - t0);
	/* the seed's lines, as for a boot; the result says "pool" */
	aeth__worker_say(w, t->qt->id, "Creating VM: %s (vcpu=%u, mem=%uMB)",
			 p->name, c->o.vcpus, c->o.memory_mb);
	aeth__worker_say(w, t->qt->id, "✓ VM created: %s", row.id);
	aeth__worker_say(w, t->qt->id, "✓ VM started");
	aeth__debug("VM %s handed out from a warm pool in %lld ms", row.id,
		    (long long)(aeth__now_ms() - t0));
	free(meta);
	if (aeth__vm_adopt(w, vm) == 0)
		aeth__pool_taken(w, vm);
	else
		aeth__pool_drop(w, vm);
	return rc;
}

int aeth__handle_create(aeth_task *t, void *userdata)
{
	int64_t boot_t0;
	aeth__slot *s = t->slot;
	aeth_worker *w = s->w;
	const char *payload = aeth_task_payload(t);
	int64_t t0 = aeth__now_ms();
	create_plan c;
	aeth__create_payload p;
	aeth__vm_row row = {0};
	aeth_vm *vm = NULL;
	char *meta = NULL, tenant[65];
	int rc;

	(void)userdata;
	memset(&c, 0, sizeof(c));
	c.o = (aeth_vm_options)AETH_VM_OPTIONS_INIT;
	if (aeth__create_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	c.o.name = p.name;
	if ((rc = plan_create(t, &p, &c)) != 0)
		goto out;
	if (c.pooled) {
		rc = hand_out(t, &p, &c, t0);
		goto out;
	}
	aeth__worker_say(w, t->qt->id, "Creating VM: %s (vcpu=%u, mem=%uMB)",
			 p.name, c.o.vcpus, c.o.memory_mb);
	if (c.o.net != AETH_NET_NONE || c.o.rootfs_path || c.image != w->policy.images)
		aeth__worker_say(w, t->qt->id, "  image: %s, network: %s, root disk: %s",
				 c.image->name, c.network,
				 c.o.rootfs_path ? "yes" : "none (initramfs)");
	if ((rc = aeth_vm_create(&vm, w->vmm, &c.o)) != 0) {
		rc = fail_last(t, rc, "cannot create the VM");
		goto out;
	}
	if (!(meta = vm_metadata(w, &c, vm))) {
		rc = AETH_ENOMEM;
		aeth_vm_delete(vm);
		goto out;
	}
	fill_row(&row, w, &p, &c, vm, meta);
	aeth__log_ctx_vm(row.id);
	row_tenant(&row, s, t, tenant);
	if ((rc = aeth__rec_vm_insert(s->rec, &row)) != 0) {
		rc = fail_last(t, AETH_EUNAVAILABLE, "cannot record the VM");
		aeth_vm_delete(vm);
		goto out;
	}
	if (aeth__rec_task_vm(s->rec, t->qt->id, row.id) != 0)
		aeth__warn("task %s: cannot record its VM %s: %s", t->qt->id,
			   row.id, aeth_error_last());
	aeth__worker_say(w, t->qt->id, "✓ VM created: %s", row.id);
	boot_t0 = aeth__now_ms();
	rc = aeth_vm_start(vm);
	/* how: cold (a VMM booted) or snapshot (restored); hand_out() counts
	 * the pool's */
	aeth__metric_inc(AETH__M_VM_BOOTS, aeth_origin_name(aeth_vm_origin(vm)),
			 rc == 0 ? "ok" : "failed");
	if (rc == 0)
		aeth__metric_observe(AETH__M_VM_BOOT_SECONDS,
				     (double)(aeth__now_ms() - boot_t0) / 1000.0,
				     aeth_origin_name(aeth_vm_origin(vm)), NULL);
	if (rc != 0) {
		char *err = strdup(aeth_error_last());
		bool exited = aeth__vm_boot_vmm_exited(vm);

		aeth__rec_vm_status(s->rec, row.id, "failed", err ? err : "boot failed");
		aeth_vm_delete(vm);
		aeth_error_clear();
		aeth__error_set(rc, "%s", err ? err : "boot failed");
		free(err);
		/* a VMM that refused the VM (memory the host does not have, a
		 * broken image) refuses it again: one failure, one vms row */
		rc = exited ? fail_now(t, "VM did not boot: %s", aeth_error_last())
			    : fail_last(t, rc, "VM did not boot");
		goto out;
	}
	aeth__rec_vm_paths(s->rec, &row);
	aeth__rec_vm_status(s->rec, row.id, "running", NULL);
	/* the seed's line; how the VM was made is in the result */
	aeth__worker_say(w, t->qt->id, "✓ VM started");
	aeth__debug("VM %s: %s in %lld ms", row.id,
		    aeth_origin_name(aeth_vm_origin(vm)),
		    (long long)aeth_vm_start_ms(vm));
	rc = set_create_result(t, vm, p.name, aeth__now_ms() - t0);
	if (aeth__vm_adopt(w, vm) == 0)
		vm = NULL;
out:
	if (c.reserved) /* the VM, if any, is in the table now */
		aeth__quota_release(w, c.o.memory_mb, c.overlay_mb);
	aeth_vm_free(vm);
	free(meta);
	aeth__create_payload_clear(&p);
	return rc;
}

/* A task for a VM another worker owns goes to that worker's queue, once
 * (forward.c does it after the handler returns). Returns 1: forwarded. */
static int forward(aeth_task *t, const char *vm_id, const char *owner)
{
	aeth_worker *w = t->slot->w;

	if (aeth__forward_hops(aeth_task_payload(t)) > 0)
		return fail_now(t, "VM %s belongs to worker %s, not %s, and this "
				"task was already forwarded once: not forwarding "
				"it again", vm_id, owner, w->id);
	/* fail at once rather than leave it in a queue no one serves */
	if (aeth__owner_check(t->slot->q, vm_id, owner) != 0) {
		fail_now(t, "%s", aeth_error_last());
		return AETH_ESTATE;
	}
	free(t->forward_to);
	if (!(t->forward_to = aeth__sprintf("worker:%s", owner)))
		return AETH_ENOMEM;
	aeth__worker_say(w, t->qt->id, "VM %s belongs to worker %s: forwarding "
			 "task %s to queue %s", vm_id, owner, t->qt->id,
			 t->forward_to);
	return 1;
}

/*
 * Check in the database that the VM exists, is running and is ours, then
 * take it from the table (attaching it if needed). 1: forwarded to the
 * owner (the handler returns 0 and records nothing). With `ended_ok` (a
 * vm:delete), a failed or stopped VM of ours is 2: nothing to take, but
 * what is left of it may be removed. The VM's tenant goes to `tenant`.
 *
 * The tenant check is the second line behind the gateway's (which never
 * routes a tenant's task to another's VM): a task whose row names another
 * tenant than the VM's is told the VM does not exist, the words a
 * guessed id gets.
 */
int aeth__take_vm(aeth_task *t, const char *vm_id, bool exclusive,
		  bool ended_ok, aeth__vmref **ref, char tenant[65])
{
	aeth__slot *s = t->slot;
	aeth_worker *w = s->w;
	char status[32], owner[256], mine[65];
	int rc;

	aeth__log_ctx_vm(vm_id);
	rc = aeth__rec_vm_lookup_tenant(s->rec, vm_id, status, owner, tenant);

	if (rc == AETH_ENOTFOUND)
		return fail_now(t, "VM %s does not exist", vm_id);
	if (rc != 0)
		return fail_last(t, AETH_EUNAVAILABLE, "cannot look the VM up");
	rc = aeth__rec_task_tenant(s->rec, t->qt->id, mine);
	if (rc == 0 && strcmp(mine, tenant) != 0) {
		aeth__warn("task %s of tenant %s names VM %s of tenant %s: refused",
			   t->qt->id, mine, vm_id, tenant);
		return fail_now(t, "VM %s does not exist", vm_id);
	}
	if (rc != 0 && rc != AETH_ENOTFOUND)
		return fail_last(t, AETH_EUNAVAILABLE, "cannot look the task up");
	aeth_error_clear();
	if (!strcmp(status, "deleted"))
		return fail_now(t, "VM %s was deleted", vm_id);
	if (strcmp(status, "running") != 0 && !(ended_ok &&
	    (!strcmp(status, "failed") || !strcmp(status, "stopped"))))
		return fail_now(t, "VM %s is %s, not running", vm_id, status);
	if (strcmp(owner, w->id) != 0)
		return forward(t, vm_id, owner);
	if (strcmp(status, "running") != 0)
		return 2;
	rc = aeth__vm_acquire(w, vm_id, exclusive, ref);
	if (rc == AETH_ENOTFOUND) {
		aeth__rec_vm_status(s->rec, vm_id, "failed", aeth_error_last());
		return fail_last(t, rc, "VM lost");
	}
	if (rc != 0)
		return fail_last(t, rc, "cannot attach to the VM");
	if (aeth_vm_status((*ref)->vm) != AETH_VM_RUNNING) {
		aeth__rec_vm_status(s->rec, vm_id, "failed", "its VMM process died");
		aeth__vm_release(w, *ref, exclusive);
		*ref = NULL;
		return fail_now(t, "VM %s is not running any more (its VMM process "
				"died); create a new one", vm_id);
	}
	return 0;
}

static char *json_array(char *const *v)
{
	cJSON *a = cJSON_CreateArray();
	char *s;

	for (size_t i = 0; a && v && v[i]; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	s = a ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	return s;
}

/* The env of an execution as recorded: the names, each value replaced by
 * "[redacted]". Values often carry tokens and passwords, and the
 * executions table is read by operators and kept for long; the guest got
 * the real values, and the task's payload in Redis is gone with it. */
static char *json_env(char *const *env)
{
	cJSON *o;
	char *s;

	if (!env)
		return NULL;
	o = cJSON_CreateObject();
	for (size_t i = 0; o && env[i]; i++) {
		char *eq = strchr(env[i], '=');
		char *k = eq ? strndup(env[i], (size_t)(eq - env[i])) : NULL;

		if (k)
			cJSON_AddStringToObject(o, k, "[redacted]");
		free(k);
	}
	s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

/* The executions row of one run, with the result it gave (NULL: it did
 * not run to an end). AETH_EEXISTS: another task with the same
 * idempotency key was recorded first; other failures are logged only. */
static int record_exec(aeth__slot *s, const char *task_id,
		       const aeth__execute_payload *p, const char *tenant,
		       const aeth__exec_out *r,
		       int64_t started, int64_t ended, const char *result)
{
	char *args = json_array(p->argv + 1), *env = json_env(p->env);
	char *out = aeth__utf8_sanitize(r->out, r->out_len);
	char *err = aeth__utf8_sanitize(r->err, r->err_len);
	bool oom;
	char *out64 = aeth__base64_if_lossy(r->out, r->out_len, &oom);
	char *err64 = aeth__base64_if_lossy(r->err, r->err_len, &oom);
	aeth__exec_row e = {p->vm_id, task_id, p->command, args, env, r->exit_code,
			    out, err, r->error, started, ended, ended - started,
			    tenant,
			    r->out_truncated, r->err_truncated, r->timed_out,
			    r->signal, out64, err64, p->idempotency_key, result};
	int rc = aeth__rec_exec_insert(s->rec, &e);

	if (rc != 0 && rc != AETH_EEXISTS)
		aeth__warn("cannot record the execution in VM %s: %s", p->vm_id,
			   aeth_error_last());
	free(args);
	free(env);
	free(out);
	free(err);
	free(out64);
	free(err64);
	return rc == AETH_EEXISTS ? rc : 0;
}

/*
 * A vm:execute whose idempotency key ran before in that VM: the task
 * gets the first run's result and nothing runs. 1: done so; 0: the key
 * is new; <0: the task failed (the first run did not end with a result,
 * or the store could not tell: retryable).
 */
static int idempotent_replay(aeth_task *t, const aeth__execute_payload *p)
{
	char *result = NULL;
	int rc;

	if (!p->idempotency_key)
		return 0;
	rc = aeth__rec_exec_by_key(t->slot->rec, p->vm_id, p->idempotency_key,
				   &result);
	if (rc == AETH_ENOTFOUND)
		return 0;
	if (rc != 0)
		return fail_last(t, AETH_EUNAVAILABLE, "cannot look the "
				 "idempotency key up");
	if (!result)
		return fail_now(t, "vm:execute: the command with idempotency key "
				"\"%s\" in VM %s ran before and did not end with a "
				"result; use a new key to run it again",
				p->idempotency_key, p->vm_id);
	aeth__worker_say(t->slot->w, t->qt->id, "idempotency key \"%s\" ran "
			 "before in VM %s: its first result, not run again",
			 p->idempotency_key, p->vm_id);
	rc = aeth_task_set_result(t, result);
	free(result);
	return rc == 0 ? 1 : rc;
}

/* The guest stopped answering and exec_glue killed its VMM: record the
 * VM failed and fail the task for good (a retry would find it failed). */
static int vm_lost(aeth_task *t, const aeth__execute_payload *p,
		   const char *tenant, aeth__exec_out *r, int64_t started,
		   int64_t ended)
{
	aeth__slot *s = t->slot;

	aeth__rec_vm_status(s->rec, p->vm_id, "failed", r->lost);
	r->error = r->lost;
	record_exec(s, t->qt->id, p, tenant, r, started, ended, NULL);
	aeth__worker_say(s->w, t->qt->id, "✗ VM %s failed: %s", p->vm_id,
			 r->lost);
	return fail_now(t, "VM %s was killed and marked failed: %s. Create a "
			"new VM (vm:create) to go on; give commands that may not "
			"end a \"timeout_ms\"", p->vm_id, r->lost);
}

/* Where a running command's output goes besides the result: the task's
 * live stream when the payload asked for it (at most LIVE_MAX bytes, then
 * one note), and the API's cancel mark, looked at while it runs. */
#define LIVE_MAX (8u << 20)

typedef struct {
	aeth_queue *q;
	const char *task_id;
	bool live;
	size_t sent;
	bool warned;
} live_sink;

static void live_chunk(int stream, const void *data, size_t len, void *ud)
{
	live_sink *ls = ud;

	if (!ls->live)
		return;
	if (ls->sent + len > LIVE_MAX) {
		static const char note[] = "\n[aetherium: live output stops here "
					   "(8 MiB); the result keeps its own]\n";

		if (!ls->warned)
			aeth__queue_output_append(ls->q, ls->task_id, 'e', note,
						  sizeof(note) - 1);
		ls->warned = true;
		return;
	}
	ls->sent += len;
	if (aeth__queue_output_append(ls->q, ls->task_id, stream == 2 ? 'e' : 'o',
				      data, len) != 0) {
		aeth__warn("task %s: live output to Redis failed, not sending more: "
			   "%s", ls->task_id, aeth_error_last());
		ls->live = false;
	}
}

static bool live_cancelled(void *ud)
{
	live_sink *ls = ud;

	return aeth__queue_cancel_marked(ls->q, ls->task_id) == 1;
}

/* The last entry of the live stream: the exit code, or why there is none. */
static void live_end(live_sink *ls, const aeth__exec_out *r, int rc)
{
	cJSON *o;
	char *s;

	if (!ls->live)
		return;
	o = cJSON_CreateObject();
	if (rc == 0)
		cJSON_AddNumberToObject(o, "exit_code", r->exit_code);
	else
		cJSON_AddStringToObject(o, "error", r->lost ? r->lost
					: aeth_error_last());
	s = o ? cJSON_PrintUnformatted(o) : NULL;
	if (s)
		aeth__queue_output_append(ls->q, ls->task_id, 'x', s, strlen(s));
	cJSON_Delete(o);
	free(s);
}

int aeth__handle_execute(aeth_task *t, void *userdata)
{
	aeth__slot *s = t->slot;
	const char *payload = aeth_task_payload(t);
	aeth__execute_payload p;
	aeth__exec_out r = {0};
	aeth__vmref *ref = NULL;
	int64_t started, ended;
	char *result, tenant[65] = "";
	live_sink live;
	const aeth__exec_sink sink = {live_chunk, live_cancelled, &live};
	int rc;

	(void)userdata;
	if (aeth__execute_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	/* every command has a timeout, so no slot waits on a guest for good
	 * (limits.exec_timeout_ms when the payload gives none) */
	if (p.timeout_ms > s->w->policy.exec_timeout_max_ms) {
		rc = fail_now(t, "vm:execute: \"timeout_ms\" %u is more than worker "
			      "%s allows (limits.exec_timeout_max_ms: %u)", p.timeout_ms,
			      s->w->id, s->w->policy.exec_timeout_max_ms);
		goto out;
	}
	if ((rc = aeth__take_vm(t, p.vm_id, false, false, &ref, tenant)) != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	/* after take_vm(): the VM is this task's tenant's, so a key never
	 * replays another tenant's result */
	if ((rc = idempotent_replay(t, &p)) != 0) {
		aeth__vm_release(s->w, ref, false);
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	aeth__worker_say(s->w, t->qt->id, "Executing in VM %s: %s%s", p.vm_id,
			 p.command, p.argc > 1 ? " ..." : "");
	started = aeth__wall_ms();
	live = (live_sink){s->q, t->qt->id, p.live_output, 0, false};
	rc = aeth__worker_exec(ref->vm, &p, s->w->policy.exec_timeout_ms,
			       &t->slot->cancel, &sink, &r);
	live_end(&live, &r, rc);
	ended = aeth__wall_ms();
	aeth__vm_release(s->w, ref, false);
	if (rc != 0 && r.lost) {
		rc = vm_lost(t, &p, tenant, &r, started, ended);
		goto out;
	}
	if (rc != 0) {
		char *why = strdup(aeth_error_last());

		r.error = why;
		record_exec(s, t->qt->id, &p, tenant, &r, started, ended, NULL);
		r.error = NULL;
		aeth__error_set(rc, "%s", why ? why : "?");
		free(why);
		rc = fail_last(t, rc, "command failed to run");
		goto out;
	}
	{
		aeth__exec_fields f = {r.exit_code, r.out, r.err, r.out_len,
				       r.err_len, r.out_truncated, r.err_truncated,
				       r.timed_out, r.signal, r.duration_ms};

		result = aeth__execute_result(p.vm_id, &f);
	}
	if (!result) {
		rc = AETH_ENOMEM;
		goto out;
	}
	if (record_exec(s, t->qt->id, &p, tenant, &r, started, ended, result) ==
	    AETH_EEXISTS) {
		/* a task with the same key ran at the same time and was
		 * recorded first: its result is the one */
		free(result);
		rc = idempotent_replay(t, &p);
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	/* The task succeeds either way (the command ran); the mark says
	 * whether the command did. */
	aeth__worker_say(s->w, t->qt->id, "%s Command exited with status %d "
			 "(%lld ms)", r.exit_code == 0 ? "✓" : "✗", r.exit_code,
			 (long long)(ended - started));
	rc = aeth_task_set_result(t, result);
	free(result);
out:
	aeth__exec_out_clear(&r);
	aeth__execute_payload_clear(&p);
	return rc;
}

/* A failed or stopped VM: remove what is left of it on this host (state
 * dir, its entry in the table), if anything. */
static int delete_leftovers(aeth_worker *w, const char *vm_id)
{
	aeth__vmref *ref = NULL;
	aeth_vm *vm = NULL;
	int rc;

	if (aeth__vm_acquire(w, vm_id, true, &ref) == 0) {
		rc = aeth_vm_delete(ref->vm);
		if (rc == 0)
			ref->deleted = true;
		aeth__vm_release(w, ref, true);
		return rc;
	}
	aeth_error_clear();
	if (aeth_vm_get(&vm, w->vmm, vm_id) != 0) {
		aeth_error_clear(); /* nothing left here: fine */
		return 0;
	}
	rc = aeth_vm_delete(vm);
	aeth_vm_free(vm);
	return rc;
}

int aeth__handle_delete(aeth_task *t, void *userdata)
{
	aeth__slot *s = t->slot;
	const char *payload = aeth_task_payload(t);
	aeth__delete_payload p;
	aeth__vmref *ref = NULL;
	char *result, tenant[65] = "";
	int rc;

	(void)userdata;
	if (aeth__delete_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	if ((rc = aeth__take_vm(t, p.vm_id, true, true, &ref, tenant)) < 0 || rc == 1) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	aeth__worker_say(s->w, t->qt->id, "Deleting VM: %s", p.vm_id);
	if (rc == 2) {
		rc = delete_leftovers(s->w, p.vm_id);
	} else {
		rc = aeth_vm_delete(ref->vm);
		if (rc == 0)
			ref->deleted = true;
		aeth__vm_release(s->w, ref, true);
	}
	if (rc != 0) {
		rc = fail_last(t, rc, "cannot delete the VM");
		goto out;
	}
	aeth__rec_vm_status(s->rec, p.vm_id, "deleted", NULL);
	aeth__worker_say(s->w, t->qt->id, "✓ VM deleted: %s", p.vm_id);
	result = aeth__delete_result(p.vm_id);
	rc = result ? aeth_task_set_result(t, result) : AETH_ENOMEM;
	free(result);
out:
	aeth__delete_payload_clear(&p);
	return rc;
}
