/*
 * lib/worker/worker.c - worker options, handler registration, stop, free.
 * The run loop itself is in run.c, the slots in slot.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/exec_glue.h"
#include "task/task.h"
#include "worker/pool.h"
#include "worker/worker_internal.h"

void aeth__worker_say(struct aeth_worker *w, const char *task_id,
		      const char *fmt, ...)
{
	char raw[1024], line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* one line each: a name or command cannot forge another */
	aeth__escape_text(line, sizeof(line), raw, false);
	/* debug: the event callback is the primary output of these lines */
	aeth__debug("%s%s%s", task_id ? task_id : "", task_id ? ": " : "", line);
	if (!w->on_event)
		return;
	if (aeth__log_json()) {
		/* logging.format json: the line as a JSON object with the same
		 * fields as the log's (docs/metrics.md) */
		aeth__buf b = AETH__BUF_INIT;
		char saved[80];

		snprintf(saved, sizeof(saved), "%s", aeth__log_ctx_task_get());
		if (task_id)
			aeth__log_ctx_task(task_id);
		aeth__log_format_line(&b, "info", line);
		aeth__log_ctx_task(saved);
		if (b.data)
			w->on_event(task_id, b.data, w->userdata);
		aeth__buf_free(&b);
		return;
	}
	w->on_event(task_id, line, w->userdata);
}

/* hostname-pid-random: unique per process, readable in `ps` and the DB. */
static char *default_id(void)
{
	char host[256] = "host";
	char rnd[37];

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	aeth__uuid_new(rnd);
	rnd[8] = '\0';
	return aeth__sprintf("%s-%d-%s", host, (int)getpid(), rnd);
}

/* worker.host_id, else this machine's id (/etc/machine-id), else its
 * host name: what says two workers see the same VMs (adopt.c). */
static char *host_id(const aeth_worker *w)
{
	const char *v = NULL;
	char buf[256] = "";
	FILE *f;

	if (aeth_config_get_string(&v, w->cfg,
				   "worker.host_id") == 0 && v && *v)
		return strdup(v);
	if ((f = fopen("/etc/machine-id", "re"))) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		buf[strcspn(buf, " \n")] = '\0';
	}
	if (!buf[0] && gethostname(buf, sizeof(buf) - 1) != 0)
		strcpy(buf, "localhost");
	return strdup(buf);
}

static bool id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 200)
		return false;
	for (const char *p = id; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("_.-:", *p))
			return false;
	return true;
}

static char *env_or(const char *v, const char *env)
{
	if (!v)
		v = getenv(env);
	return v && *v ? strdup(v) : NULL;
}

/* Set `key` in the worker's configuration from an option field. */
static int overlay(aeth_worker *w, const char *key, const char *value)
{
	int rc = value ? aeth_config_set(w->cfg, key, value) : 0;

	return rc ? aeth__error_wrap(rc, "worker option for %s", key) : 0;
}

static int overlay_uint(aeth_worker *w, const char *key, unsigned int v)
{
	char text[16];

	snprintf(text, sizeof(text), "%u", v);
	return v ? overlay(w, key, text) : 0;
}

/* The worker's own configuration: the caller's (copied), or defaults
 * and environment, with the option fields laid over it; the policy and
 * the VMM's settings are read from it, so there is one place for each. */
static int build_config(aeth_worker *w, const aeth_worker_options *o)
{
	int rc = o->config ? aeth_config_dup(&w->cfg, o->config)
			   : aeth_config_load(&w->cfg, NULL);

	if (rc == 0)
		rc = overlay(w, "vmm.image_dir", o->image_dir);
	if (rc == 0)
		rc = overlay(w, "vmm.state_dir", o->state_dir);
	if (rc == 0)
		rc = overlay(w, "vmm.backend", o->backend);
	if (rc == 0)
		rc = overlay(w, "vmm.accel", o->accel);
	if (rc == 0)
		rc = overlay_uint(w, "queue.concurrency", o->concurrency);
	if (rc == 0)
		rc = overlay_uint(w, "worker.shutdown_timeout_ms", o->grace_ms);
	if (rc == 0)
		rc = overlay_uint(w, "vmm.vcpus", o->vcpus);
	if (rc == 0)
		rc = overlay_uint(w, "vmm.memory_mb", o->memory_mb);
	if (rc == 0 && o->rootfs_path && *o->rootfs_path)
		rc = overlay(w, "vmm.rootfs", o->rootfs_path);
	if (rc == 0 && o->use_rootfs)
		rc = overlay(w, "vmm.use_rootfs", "true");
	if (rc == 0 && o->deny_network)
		rc = overlay(w, "vmm.network", "false");
	if (rc == 0)
		rc = aeth__policy_load(&w->policy, w->cfg);
	return rc;
}

static char *cfg_dup(const aeth_worker *w, const char *key)
{
	const char *v = NULL;

	return aeth_config_get_string(&v, w->cfg,
				      key) == 0 && v && *v ? strdup(v)
									  : NULL;
}

static int copy_options(aeth_worker *w, const aeth_worker_options *o)
{
	int64_t n = 0;
	int rc;

	if ((rc = build_config(w, o)) != 0)
		return rc;
	w->id = o->id ? strdup(o->id) : env_or(NULL, "AETH_WORKER_ID");
	if (!w->id)
		w->id = default_id();
	if (!w->id)
		return aeth__error_oom();
	if (!id_valid(w->id))
		return aeth__error_set(AETH_EINVALID, "worker id \"%s\" is not valid: "
				       "use 1..200 of [A-Za-z0-9_.:-]", w->id);
	w->own_queue = aeth__sprintf("worker:%s", w->id);
	if (!(w->host_id = host_id(w)))
		return aeth__error_oom();
	w->database_url = env_or(o->database_url, "AETH_DATABASE_URL");
	w->redis_url = env_or(o->redis_url, "AETH_REDIS_URL");
	w->redis_ns = o->redis_ns ? strdup(o->redis_ns) : NULL;
	w->backend = cfg_dup(w, "vmm.backend");
	if (!w->own_queue || !w->backend)
		return aeth__error_oom();
	/* concurrency and grace: the option fields were laid over w->cfg
	 * (checked there: queue.concurrency is 1..256), so the options and
	 * the configuration have one default, keys.c's */
	aeth_config_get_int(&n, w->cfg, "queue.concurrency");
	w->concurrency = (unsigned int)n;
	w->lease_ms = o->lease_ms;
	if (!w->lease_ms && getenv("AETH_WORKER_LEASE_MS"))
		w->lease_ms = (unsigned int)strtoul(getenv("AETH_WORKER_LEASE_MS"),
						    NULL, 10);
	if (!w->lease_ms)
		w->lease_ms = 30000;
	if (w->lease_ms < 300)
		return aeth__error_set(AETH_EINVALID, "lease %u ms is too short "
				       "(at least 300)", w->lease_ms);
	aeth_config_get_int(&n, w->cfg, "worker.shutdown_timeout_ms");
	w->grace_ms = (unsigned int)n;
	aeth_config_get_int(&n, w->cfg, "vmm.vcpus");
	w->vcpus = (unsigned int)n;
	aeth_config_get_int(&n, w->cfg, "vmm.memory_mb");
	w->memory_mb = (unsigned int)n;
	w->on_event = o->on_event;
	w->userdata = o->userdata;
	w->migrate = o->migrate;
	if ((rc = aeth__pools_load(w)) != 0)
		return rc;
	return aeth__parse_queues(w, o->queues ? o->queues : "default");
}

static const aeth_worker_options worker_defaults = AETH_WORKER_OPTIONS_INIT;
static const size_t worker_sizes[] = {
	AETH__END(aeth_worker_options, migrate),      /* 1 */
	AETH__END(aeth_worker_options, deny_network), /* 2 */
	sizeof(aeth_worker_options),                  /* 3 */
};
const aeth__versioned aeth__worker_options_v = {
	"aeth_worker_options", "AETH_WORKER_OPTIONS_INIT",
	AETH_WORKER_OPTIONS_VERSION, worker_sizes, &worker_defaults,
};

int aeth_worker_options_init(aeth_worker_options *opts, unsigned int version)
{
	return aeth__versioned_init(&aeth__worker_options_v, opts, version);
}

int aeth_worker_new(aeth_worker **out, const aeth_worker_options *opts)
{
	aeth_worker_options o;
	aeth_worker *w;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_worker_new: out is NULL");
	*out = NULL;
	if ((rc = aeth__versioned_copy(&aeth__worker_options_v, &o, opts)) != 0)
		return rc;
	opts = &o;
	if (!(w = calloc(1, sizeof(*w))))
		return aeth__error_oom();
	w->stop_pipe[0] = w->stop_pipe[1] = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_mutex_init(&w->vm_mu, NULL);
	if (pipe2(w->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = aeth__error_errno(AETH_EIO, "cannot make the worker's stop pipe");
		aeth_worker_free(w);
		return rc;
	}
	if ((rc = copy_options(w, opts)) != 0) {
		aeth_worker_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int rebuild_types(aeth_worker *w)
{
	aeth__buf b = AETH__BUF_INIT;

	for (size_t i = 0; i < w->nhandlers; i++)
		if (aeth__buf_printf(&b, "%s%s", i ? ", " : "",
				     w->handlers[i].type) != 0) {
			aeth__buf_free(&b);
			return AETH_ENOMEM;
		}
	free(w->types);
	w->types = aeth__buf_detach(&b, NULL);
	return w->types ? 0 : aeth__error_oom();
}

int aeth_worker_handle(aeth_worker *w, const char *type, aeth_task_handler fn,
		       void *userdata)
{
	aeth__handler *h;
	int rc;

	if (!w || !type || !fn)
		return aeth__error_set(AETH_EINVALID, "aeth_worker_handle: NULL argument");
	if ((rc = aeth__task_type_check(type)) != 0)
		return rc;
	for (size_t i = 0; i < w->nhandlers; i++)
		if (!strcmp(w->handlers[i].type, type)) {
			w->handlers[i].fn = fn;
			w->handlers[i].userdata = userdata;
			return 0;
		}
	h = realloc(w->handlers, (w->nhandlers + 1) * sizeof(*h));
	if (!h)
		return aeth__error_oom();
	w->handlers = h;
	h += w->nhandlers;
	if (!(h->type = strdup(type)))
		return aeth__error_oom();
	h->fn = fn;
	h->userdata = userdata;
	w->nhandlers++;
	return rebuild_types(w);
}

int aeth_worker_handle_builtin(aeth_worker *w)
{
	int rc = aeth_worker_handle(w, AETH__TASK_CREATE, aeth__handle_create, NULL);

	if (rc == 0)
		rc = aeth_worker_handle(w, AETH__TASK_EXECUTE, aeth__handle_execute, NULL);
	if (rc == 0)
		rc = aeth_worker_handle(w, AETH__TASK_DELETE, aeth__handle_delete, NULL);
	if (rc == 0)
		rc = aeth_worker_handle(w, AETH__TASK_FILE_PUT, aeth__handle_file_put,
					NULL);
	if (rc == 0)
		rc = aeth_worker_handle(w, AETH__TASK_FILE_GET, aeth__handle_file_get,
					NULL);
	return rc;
}

const char *aeth_worker_id(const aeth_worker *w)
{
	return w ? w->id : NULL;
}

const char *aeth_worker_types(aeth_worker *w)
{
	return w && w->types ? w->types : "";
}

void aeth_worker_stop(aeth_worker *w)
{
	int saved = errno; /* a signal handler must not change errno */

	if (w && w->stop_pipe[1] >= 0) {
		ssize_t r = write(w->stop_pipe[1], "x", 1);

		(void)r; /* full pipe: a stop is already pending */
	}
	errno = saved;
}

void aeth_worker_free(aeth_worker *w)
{
	if (!w)
		return;
	if (w->threads_stuck) {
		/* A handler never returned; its thread still uses this state.
		 * Leaking is the only safe choice; the process ends soon. */
		return;
	}
	aeth__vm_table_free(w);
	aeth__pools_free(w);
	aeth_strarray_free(w->pool_swept);
	aeth_vmm_free(w->vmm);
	for (size_t i = 0; i < w->nhandlers; i++)
		free(w->handlers[i].type);
	free(w->handlers);
	free(w->types);
	aeth_strarray_free(w->source_names);
	free(w->sources);
	free(w->slots);
	free(w->id);
	free(w->own_queue);
	free(w->database_url);
	free(w->redis_url);
	free(w->redis_ns);
	free(w->backend);
	free(w->host_id);
	aeth__policy_clear(&w->policy);
	aeth_config_free(w->cfg);
	if (w->stop_pipe[0] >= 0)
		close(w->stop_pipe[0]);
	if (w->stop_pipe[1] >= 0)
		close(w->stop_pipe[1]);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->vm_mu);
	free(w);
}

/* "critical=6,high=5,default" -> sources: worker:<id> (strict) first. */
int aeth__parse_queues(struct aeth_worker *w, const char *spec)
{
	char *copy = strdup(spec), *save = NULL, *tok;
	size_t cap = 2;
	int rc = 0;

	if (!copy)
		return aeth__error_oom();
	for (const char *p = spec; *p; p++)
		cap += *p == ',';
	w->sources = calloc(cap, sizeof(*w->sources));
	w->source_names = calloc(cap + 1, sizeof(char *));
	if (!w->sources || !w->source_names) {
		free(copy);
		return aeth__error_oom();
	}
	for (size_t i = 0; i < cap; i++)
		aeth_queue_source_init(&w->sources[i], AETH_QUEUE_SOURCE_VERSION);
	w->source_names[0] = strdup(w->own_queue);
	w->sources[0].name = w->source_names[0];
	w->sources[0].strict = 1;
	w->nsources = 1;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end = NULL;
		long weight = 1;

		while (*tok == ' ')
			tok++;
		if (eq) {
			*eq = '\0';
			errno = 0;
			weight = strtol(eq + 1, &end, 10);
			if (errno || end == eq + 1 || *end || weight < 1 || weight > 1000)
				rc = aeth__error_set(AETH_EINVALID, "queue weight \"%s\" "
						     "for \"%s\" is not a number "
						     "from 1 to 1000", eq + 1, tok);
		}
		if (rc == 0 && !aeth_queue_name_valid(tok))
			rc = aeth__error_set(AETH_EINVALID, "queue name \"%s\" is not "
					     "valid: use [A-Za-z0-9_:.-] (queues look "
					     "like critical=6,high=5,default=3)", tok);
		if (rc == 0) {
			size_t i = w->nsources++;

			w->source_names[i] = strdup(tok);
			w->sources[i].name = w->source_names[i];
			w->sources[i].weight = (unsigned int)weight;
			if (!w->source_names[i])
				rc = aeth__error_oom();
		}
	}
	free(copy);
	if (rc == 0 && w->nsources == 1)
		rc = aeth__error_set(AETH_EINVALID, "no queues given: use e.g. "
				     "-queues default");
	return rc;
}
