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
#include <unistd.h>

#include <cjson/cJSON.h>

#include "worker/exec_glue.h"
#include "worker/payload.h"
#include "worker/registry.h"
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

/* The root disk of the worker: vmm.rootfs, else <image dir>/rootfs.ext4
 * with the image dir resolved as vm.h does. malloc'd. */
static char *worker_rootfs(const aeth_worker *w)
{
	const char *dir = w->image_dir, *home = getenv("HOME");

	if (w->rootfs_path)
		return strdup(w->rootfs_path);
	if (!dir || !*dir)
		dir = getenv("AETH_IMAGE_DIR");
	if (dir && *dir)
		return aeth__sprintf("%s/rootfs.ext4", dir);
	return aeth__sprintf("%s/.cache/aetherium/image/rootfs.ext4",
			     home && *home ? home : "/root");
}

/*
 * Turn the payload's "network" / "rootfs" into VM options (rootfs_out is
 * malloc'd or NULL), checking here what the worker host must have: a
 * root disk that exists and is readable. 0, or aeth_task_fail()'s code.
 */
static int vm_extras(aeth_task *t, const aeth__create_payload *p,
		     aeth_vm_options *o, char **rootfs_out)
{
	aeth_worker *w = t->slot->w;
	aeth__rootfs_field rf = p->rootfs;
	char *path = NULL;

	*rootfs_out = NULL;
	if (p->network == AETH__NET_USER || p->network == AETH__NET_TAP) {
		if (w->deny_network) {
			return fail_now(t, "vm:create: \"network\": \"%s\" is "
					"refused by worker %s (config vmm.network is "
					"false); use \"network\": \"none\" or enable "
					"vmm.network", aeth__net_field_name(p->network),
					w->id);
		}
		o->net = p->network == AETH__NET_USER ? AETH_NET_USER : AETH_NET_TAP;
		o->tap_name = p->tap;
	}
	if (rf == AETH__ROOTFS_UNSET)
		rf = w->use_rootfs ? AETH__ROOTFS_DEFAULT : AETH__ROOTFS_OFF;
	if (rf == AETH__ROOTFS_OFF)
		return 0;
	path = rf == AETH__ROOTFS_PATH ? strdup(p->rootfs_path) : worker_rootfs(w);
	if (!path)
		return aeth_task_fail(t, 1, "out of memory");
	if (access(path, R_OK) != 0) {
		int e = errno, rc;
		char eb[128];
		const char *why = e == ENOENT ? "does not exist" :
				  strerror_r(e, eb, sizeof(eb));

		if (rf == AETH__ROOTFS_DEFAULT)
			rc = fail_now(t, "vm:create: root filesystem %s %s on worker %s: "
				 "build it with scripts/build-image.sh --rootfs (or set "
				 "vmm.rootfs to an existing image)", path,
				 why, w->id);
		else
			rc = fail_now(t, "vm:create: root filesystem %s %s on worker %s: "
				 "give the path of an ext4 image on the worker host, "
				 "or \"rootfs\": true for the one scripts/build-image.sh "
				 "--rootfs builds", path,
				 why, w->id);
		free(path);
		return rc;
	}
	*rootfs_out = path;
	o->rootfs_path = path;
	return 0;
}

/* vms.metadata: {"network": "user"[, "tap": "tap0"]} */
static char *vm_metadata(const aeth_vm_options *o)
{
	cJSON *m = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(m, "network", o->net == AETH_NET_USER ? "user" :
				o->net == AETH_NET_TAP ? "tap" : "none");
	if (o->net == AETH_NET_TAP && o->tap_name)
		cJSON_AddStringToObject(m, "tap", o->tap_name);
	s = m ? cJSON_PrintUnformatted(m) : NULL;
	cJSON_Delete(m);
	return s;
}

int aeth__handle_create(aeth_task *t, void *userdata)
{
	aeth__slot *s = t->slot;
	aeth_worker *w = s->w;
	const char *payload = aeth_task_payload(t);
	aeth_vm_options o = AETH_VM_OPTIONS_INIT;
	aeth__create_payload p;
	aeth__vm_row row = {0};
	aeth_vm *vm = NULL;
	char *result, *rootfs = NULL, *meta = NULL;
	int rc;

	(void)userdata;
	if (aeth__create_payload_parse(payload, strlen(payload), &p) != 0)
		return aeth_task_fail(t, 0, aeth_error_last());
	o.name = p.name;
	o.vcpus = p.vcpus ? p.vcpus : w->vcpus;
	o.memory_mb = p.memory_mb ? p.memory_mb : w->memory_mb;
	if ((rc = vm_extras(t, &p, &o, &rootfs)) != 0)
		goto out;
	if (!(meta = vm_metadata(&o))) {
		rc = AETH_ENOMEM;
		goto out;
	}
	aeth__worker_say(w, t->qt->id, "Creating VM: %s (vcpu=%u, mem=%uMB)",
			 p.name, o.vcpus, o.memory_mb);
	if (o.net != AETH_NET_NONE || o.rootfs_path)
		aeth__worker_say(w, t->qt->id, "  network: %s, root disk: %s",
				 o.net == AETH_NET_USER ? "user (NAT, host 10.0.2.2)" :
				 o.net == AETH_NET_TAP ? "tap" : "none",
				 o.rootfs_path ? o.rootfs_path : "none (initramfs)");
	if ((rc = aeth_vm_create(&vm, w->vmm, &o)) != 0) {
		rc = fail_last(t, rc, "cannot create the VM");
		goto out;
	}
	row.id = aeth_vm_id(vm);
	row.name = p.name;
	row.orchestrator = aeth_vm_backend(vm);
	row.vcpus = o.vcpus;
	row.memory_mb = o.memory_mb;
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
	aeth__worker_say(w, t->qt->id, "✓ VM created: %s", row.id);
	if ((rc = aeth_vm_start(vm)) != 0) {
		char *err = strdup(aeth_error_last());

		aeth__rec_vm_status(s->rec, row.id, "failed", err ? err : "boot failed");
		aeth_vm_delete(vm);
		aeth_error_clear();
		aeth__error_set(rc, "%s", err ? err : "boot failed");
		free(err);
		rc = fail_last(t, rc, "VM did not boot");
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
	aeth_vm_free(vm);
	free(rootfs);
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
 * owner (the handler returns 0 and records nothing).
 */
static int take_vm(aeth_task *t, const char *vm_id, bool exclusive,
		   aeth__vmref **ref)
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
	if (strcmp(status, "running") != 0)
		return fail_now(t, "VM %s is %s, not running", vm_id, status);
	if (strcmp(owner, w->id) != 0)
		return forward(t, vm_id, owner);
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

static void record_exec(aeth__slot *s, const char *task_id,
			const aeth__execute_payload *p,
			const aeth__exec_out *r, int64_t started, int64_t ended)
{
	char *args = json_array(p->argv + 1), *env = json_env(p->env);
	char *out = aeth__utf8_sanitize(r->out, r->out_len);
	char *err = aeth__utf8_sanitize(r->err, r->err_len);
	aeth__exec_row e = {p->vm_id, task_id, p->command, args, env, r->exit_code,
			    out, err, r->error, started, ended, ended - started};

	if (aeth__rec_exec_insert(s->rec, &e) != 0)
		aeth__warn("cannot record the execution in VM %s: %s", p->vm_id,
			   aeth_error_last());
	free(args);
	free(env);
	free(out);
	free(err);
}

/* The guest stopped answering and exec_glue killed its VMM: record the
 * VM failed and fail the task for good (a retry would find it failed). */
static int vm_lost(aeth_task *t, const aeth__execute_payload *p,
		   aeth__exec_out *r, int64_t started, int64_t ended)
{
	aeth__slot *s = t->slot;

	aeth__rec_vm_status(s->rec, p->vm_id, "failed", r->lost);
	r->error = r->lost;
	record_exec(s, t->qt->id, p, r, started, ended);
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
	if ((rc = take_vm(t, p.vm_id, false, &ref)) != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	aeth__worker_say(s->w, t->qt->id, "Executing in VM %s: %s%s", p.vm_id,
			 p.command, p.argc > 1 ? " ..." : "");
	started = aeth__wall_ms();
	rc = aeth__worker_exec(ref->vm, &p, s->w->exec_timeout_ms,
			       &t->slot->cancel, &r);
	ended = aeth__wall_ms();
	aeth__vm_release(s->w, ref, false);
	if (rc != 0 && r.lost) {
		rc = vm_lost(t, &p, &r, started, ended);
		goto out;
	}
	if (rc != 0) {
		r.error = aeth_error_last();
		record_exec(s, t->qt->id, &p, &r, started, ended);
		rc = fail_last(t, rc, "command failed to run");
		goto out;
	}
	record_exec(s, t->qt->id, &p, &r, started, ended);
	/* The task succeeds either way (the command ran); the mark says
	 * whether the command did. */
	aeth__worker_say(s->w, t->qt->id, "%s Command exited with status %d "
			 "(%lld ms)", r.exit_code == 0 ? "✓" : "✗", r.exit_code,
			 (long long)(ended - started));
	result = aeth__execute_result(p.vm_id, r.exit_code, r.out, r.out_len,
				      r.err, r.err_len);
	rc = result ? aeth_task_set_result(t, result) : AETH_ENOMEM;
	free(result);
out:
	aeth__exec_out_clear(&r);
	aeth__execute_payload_clear(&p);
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
	if ((rc = take_vm(t, p.vm_id, true, &ref)) != 0) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	aeth__worker_say(s->w, t->qt->id, "Deleting VM: %s", p.vm_id);
	rc = aeth_vm_delete(ref->vm);
	if (rc == 0)
		ref->deleted = true;
	aeth__vm_release(s->w, ref, true);
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
