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

#include "vm/vm_internal.h"
#include "worker/exec_glue.h"
#include "task/task.h"
#include "client/client_internal.h"
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
} create_plan;

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
	if (aeth__quota_reserve(w, c->o.memory_mb, c->overlay_mb) != 0)
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

int aeth__handle_create(aeth_task *t, void *userdata)
{
	aeth__slot *s = t->slot;
	aeth_worker *w = s->w;
	const char *payload = aeth_task_payload(t);
	create_plan c;
	aeth__create_payload p;
	aeth__vm_row row = {0};
	aeth_vm *vm = NULL;
	char *result, *meta = NULL;
	int rc;

	(void)userdata;
	memset(&c, 0, sizeof(c));
	c.o = (aeth_vm_options)AETH_VM_OPTIONS_INIT;
	if (aeth__create_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	c.o.name = p.name;
	if ((rc = plan_create(t, &p, &c)) != 0)
		goto out;
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
	row.id = aeth_vm_id(vm);
	row.name = p.name;
	row.orchestrator = aeth_vm_backend(vm);
	row.vcpus = c.o.vcpus;
	row.memory_mb = c.o.memory_mb;
	row.kernel_path = aeth_vm_kernel_path(vm);
	row.rootfs_path = aeth_vm_rootfs_path(vm);
	row.socket_path = aeth_vm_agent_socket(vm);
	row.owner_worker = w->id;
	row.metadata = meta;
	if ((rc = aeth__rec_vm_insert(s->rec, &row)) != 0) {
		rc = fail_last(t, AETH_EUNAVAILABLE, "cannot record the VM");
		aeth_vm_delete(vm);
		goto out;
	}
	if (aeth__rec_task_vm(s->rec, t->qt->id, row.id) != 0)
		aeth__warn("task %s: cannot record its VM %s: %s", t->qt->id,
			   row.id, aeth_error_last());
	aeth__worker_say(w, t->qt->id, "✓ VM created: %s", row.id);
	if ((rc = aeth_vm_start(vm)) != 0) {
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
	aeth__worker_say(w, t->qt->id, "✓ VM started");
	result = aeth__create_result(row.id, p.name);
	rc = result ? aeth_task_set_result(t, result) : AETH_ENOMEM;
	free(result);
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
 * what is left of it may be removed.
 */
static int take_vm(aeth_task *t, const char *vm_id, bool exclusive,
		   bool ended_ok, aeth__vmref **ref)
{
	aeth__slot *s = t->slot;
	aeth_worker *w = s->w;
	char status[32], owner[256];
	int rc = aeth__rec_vm_lookup(s->rec, vm_id, status, owner);

	if (rc == AETH_ENOTFOUND)
		return fail_now(t, "VM %s does not exist", vm_id);
	if (rc != 0)
		return fail_last(t, AETH_EUNAVAILABLE, "cannot look the VM up");
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
			cJSON_AddStringToObject(o, k, eq + 1);
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
		       const aeth__execute_payload *p, const aeth__exec_out *r,
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
		   aeth__exec_out *r, int64_t started, int64_t ended)
{
	aeth__slot *s = t->slot;

	aeth__rec_vm_status(s->rec, p->vm_id, "failed", r->lost);
	r->error = r->lost;
	record_exec(s, t->qt->id, p, r, started, ended, NULL);
	aeth__worker_say(s->w, t->qt->id, "✗ VM %s failed: %s", p->vm_id,
			 r->lost);
	return fail_now(t, "VM %s was killed and marked failed: %s. Create a "
			"new VM (vm:create) to go on; give commands that may not "
			"end a \"timeout_ms\"", p->vm_id, r->lost);
}

int aeth__handle_execute(aeth_task *t, void *userdata)
{
	aeth__slot *s = t->slot;
	const char *payload = aeth_task_payload(t);
	aeth__execute_payload p;
	aeth__exec_out r = {0};
	aeth__vmref *ref = NULL;
	int64_t started, ended;
	char *result;
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
	if ((rc = idempotent_replay(t, &p)) != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	if ((rc = take_vm(t, p.vm_id, false, false, &ref)) != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	aeth__worker_say(s->w, t->qt->id, "Executing in VM %s: %s%s", p.vm_id,
			 p.command, p.argc > 1 ? " ..." : "");
	started = aeth__wall_ms();
	rc = aeth__worker_exec(ref->vm, &p, s->w->policy.exec_timeout_ms,
			       &t->slot->cancel, &r);
	ended = aeth__wall_ms();
	aeth__vm_release(s->w, ref, false);
	if (rc != 0 && r.lost) {
		rc = vm_lost(t, &p, &r, started, ended);
		goto out;
	}
	if (rc != 0) {
		char *why = strdup(aeth_error_last());

		r.error = why;
		record_exec(s, t->qt->id, &p, &r, started, ended, NULL);
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
	if (record_exec(s, t->qt->id, &p, &r, started, ended, result) ==
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
	char *result;
	int rc;

	(void)userdata;
	if (aeth__delete_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	if ((rc = take_vm(t, p.vm_id, true, true, &ref)) < 0 || rc == 1) {
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
