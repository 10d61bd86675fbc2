/*
 * aeth-submit - submit vm:create / vm:execute / vm:delete tasks, wait for
 * their results, list VMs and tasks. A thin shell around aeth_client_*
 * (include/aetherium/task.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aetherium/aetherium.h"
/* the text of the tables and task summaries: the CLI's own, unstable */
#define AETH_UNSTABLE
#include "aetherium/unstable/client.h"
#include "flags.h"

static const char usage[] =
	"Usage: aeth-submit -type TYPE [flags]      submit a task\n"
	"       aeth-submit -list vms|tasks|workers  list VMs, recent tasks or workers\n"
	"       aeth-submit -status TASK_ID [-wait]  show one task (-wait: once it ends)\n"
	"       aeth-submit -cancel TASK_ID          cancel a task that has not started\n"
	"\n"
	"Task types and their flags:\n"
	"  vm:create   -name NAME [-vcpus N] [-memory MB] [-image NAME]\n"
	"              [-net none|PROFILE] [-rootfs default|none] [-ttl DUR]\n"
	"  vm:execute  -vm-id ID -cmd COMMAND [-args \"WORDS\"] [-env KEY=VALUE]...\n"
	"              [-cwd DIR] [-stdin FILE|-] [-cmd-timeout DUR]\n"
	"              [-idempotency-key KEY]\n"
	"  vm:delete   -vm-id ID\n"
	"  vm:file_put, vm:file_get: -payload only (fields below)\n"
	"  any type    -payload JSON (the task's payload as is); a type other than\n"
	"              the built-in ones above must be handled by a live worker\n"
	"              taking tasks from -queue (aeth-submit -list workers)\n"
	"\n"
	"Flags (-flag value, -flag=value or --flag):\n"
	"  -wait          wait for the result and print it; for vm:execute the\n"
	"                 command's exit code becomes aeth-submit's exit status\n"
	"  -follow        vm:execute: print the command's output as it runs (stdout\n"
	"                 to stdout, stderr to stderr), then exit with its exit code\n"
		"  -timeout DUR   give up WAITING after DUR (e.g. 90s, 5m, 500ms; default\n"
	"                 none); the task goes on: -status ID shows it later,\n"
	"                 -cancel ID stops it if it has not started\n"
	"  -task-timeout DUR  the task's run-time limit (default 30m): past it the\n"
	"                 worker cancels it and it ends failed, \"timed out\"\n"
	"  -cmd-timeout DUR   vm:execute: the command's timeout in the guest\n"
	"                 (default the worker's limits.exec_timeout_ms, 10m);\n"
	"                 past it the command is killed and the result says\n"
	"                 \"timed_out\": true\n"
	"  -env KEY=VALUE vm:execute: an environment variable (repeat the flag)\n"
	"  -cwd DIR       vm:execute: the command's directory (absolute)\n"
	"  -stdin FILE    vm:execute: the command's stdin from FILE (- : this\n"
	"                 program's stdin); text, at most 512 KiB\n"
	"  -idempotency-key KEY  vm:execute: executes are at least once (a\n"
	"                 worker that dies mid-task leaves it to another); a\n"
	"                 second task with the same KEY for the same VM returns\n"
	"                 the first one's result instead of running again\n"
	"  -json          print JSON instead of text\n"
	"  -queue NAME    queue for vm:create (default \"default\"); executes and\n"
	"                 deletes always go to the queue of the worker owning the VM\n"
	"  -image NAME    vm:create: an image of the worker's catalogue (its\n"
	"                 images: section; default: vmm.kernel/initrd/rootfs)\n"
	"  -net PROFILE   vm:create: none (default: no network card) or a network\n"
	"                 profile of the worker, which lists what the guest may\n"
	"                 reach (\"user\": a card that reaches nothing unless the\n"
	"                 worker configures it). The guest is 10.0.2.15 and reaches\n"
	"                 the worker host's allowed ports at 10.0.2.2\n"
	"  -rootfs DISK   vm:create: default = boot with the image's root disk\n"
	"                 (Debian with git: scripts/build-image.sh --rootfs); none =\n"
	"                 initramfs only (busybox). Without -rootfs the worker's\n"
	"                 vmm.use_rootfs decides (default none)\n"
	"  -ttl DUR       vm:create: the VM's lifetime (e.g. 10m, 2h; default the\n"
	"                 worker's limits.ttl_s); past it the worker deletes the VM\n"
	"  -config FILE   YAML configuration; AETH_DATABASE_URL / AETH_REDIS_URL override\n"
	"  -h, --help     this help\n"
	"\n"
	;

static const char usage_more[] =
	"Payload fields (-payload JSON; docs/worker.md):\n"
	"  vm:create   name (required), vcpus, memory_mb, image, network, tap,\n"
	"              rootfs (true|false), ttl (seconds)\n"
	"  vm:execute  vm_id, command (required), args [..], env {..}, cwd,\n"
	"              timeout_ms, stdin, idempotency_key\n"
	"  vm:delete   vm_id (required)\n"
	"  vm:file_put vm_id, path, data (base64; at most 8 MiB), mode (0..4095;\n"
	"              0644 when absent)\n"
	"  vm:file_get vm_id, path; the result's data is base64\n"
	"A vm:execute result: vm_id, exit_code, stdout, stderr, stdout_truncated,\n"
	"stderr_truncated, timed_out, signal, duration_ms, and stdout_b64 /\n"
	"stderr_b64 (base64) when the output is not valid UTF-8.\n"
	"\n"
	"-args is ONE string split into words like a shell splits them, without\n"
	"expanding anything: blanks separate words; '...' keeps its text as is;\n"
	"\"...\" too, except \\\" \\\\ \\$ \\`; a backslash outside quotes keeps the next\n"
	"character; $HOME, * and ~ stay as they are. An unterminated quote is an error.\n"
	"\n"
	"Exit status: 0 ok; 1 a failure (server unreachable; task rejected, e.g.\n"
	"unknown VM, VM owner not running, or a type no live worker handles, and\n"
	"recorded as failed; task failed or -timeout passed);\n"
	"2 a usage error; with -wait on vm:execute, the command's own exit code.\n"
	"Servers: AETH_REDIS_URL and AETH_DATABASE_URL (eval \"$(scripts/services.sh env)\").\n"
	"\n"
	"Examples:\n"
	"  aeth-submit -type vm:create -name demo-vm\n"
	"  aeth-submit -type vm:execute -vm-id ID -cmd echo -args \"Hello from VM\"\n"
	"  aeth-submit -type vm:execute -vm-id ID -cmd ls -args \"-la\" -wait\n"
	"  aeth-submit -type vm:execute -vm-id ID -cmd sh -args \"-c 'echo $((6*7))'\" -wait\n"
	"  aeth-submit -type vm:delete -vm-id ID\n"
	"\n"
	"  # git clone workflow (docs/cli.md): a VM with git and a network\n"
	"  # (the worker's profile \"git\" allows host:9418; docs/security.md)\n"
	"  aeth-submit -type vm:create -name git-demo -net git -rootfs default -wait\n"
	"  aeth-submit -type vm:execute -vm-id ID -cmd git \\\n"
	"      -args \"clone git://10.0.2.2:9418/repo.git\" -wait\n"
	"  aeth-submit -type vm:execute -vm-id ID -cmd ls -args \"-la repo\" -wait\n"
	"  aeth-submit -type vm:delete -vm-id ID -wait\n"
	"\n"
	"  aeth-submit -list vms\n"
	"  aeth-submit -list workers\n"
	"  aeth-submit -status TASK_ID -json\n";

static int fail(const char *what)
{
	fprintf(stderr, "aeth-submit: %s: %s\n", what, aeth_error_last());
	return 1;
}

/* "90s", "5m", "500ms", "2h" or plain seconds -> ms; at least 1 ms (no
 * -timeout at all is how to wait without a limit). */
static int duration_ms(const char *s, unsigned int *ms)
{
	char *end = NULL;
	double v = strtod(s, &end);
	double unit = 1000;

	if (end == s || v < 0)
		return -1;
	if (!strcmp(end, "ms"))
		unit = 1;
	else if (!strcmp(end, "m"))
		unit = 60000;
	else if (!strcmp(end, "h"))
		unit = 3600000;
	else if (*end && strcmp(end, "s"))
		return -1;
	if (v * unit > 2e9 || v * unit < 1)
		return -1;
	*ms = (unsigned int)(v * unit);
	return 0;
}

#define STDIN_MAX (512 * 1024)

/* -stdin FILE or "-": the text (malloc'd), or NULL after saying why. */
static char *read_stdin_flag(const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *buf = f ? malloc(STDIN_MAX + 1) : NULL;
	size_t n = buf ? fread(buf, 1, STDIN_MAX + 1, f) : 0;

	if (!f || !buf || ferror(f) || n > STDIN_MAX || memchr(buf, 0, n)) {
		fprintf(stderr, "error: -stdin %s: %s\n", path,
			!f ? "cannot open it" : !buf ? "out of memory" :
			ferror(f) ? "cannot read it" : n > STDIN_MAX ?
			"more than 512 KiB" : "holds NUL bytes (text only)");
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
	}
	if (f && f != stdin)
		fclose(f);
	return buf;
}

static void progress(const char *id, const char *state, unsigned int waited,
		     void *userdata)
{
	(void)userdata;
	fprintf(stderr, "  ... task %s is %s (%us)\n", id, state, waited / 1000);
}

/* Print a JSON document as JSON or rendered as `what`. */
static int show(const char *json, const char *what, bool as_json)
{
	char *text = NULL;

	if (as_json) {
		printf("%s\n", json);
		return 0;
	}
	if (aeth_client_render(&text, json, what) != 0)
		return fail("render");
	fputs(text, stdout);
	aeth_free(text);
	return 0;
}

static void submitted(const char *type, const char *id, const char *name,
		      unsigned int vcpus, unsigned int mem, const char *backend,
		      bool as_json)
{
	if (as_json) {
		printf("{\"task_id\":\"%s\",\"type\":\"%s\"}\n", id, type);
	} else if (!strcmp(type, "vm:create")) {
		printf("✓ VM creation task submitted: %s\n  Name: %s\n"
		       "  Task will create a %s VM with %u vCPU and %uMB RAM\n", id,
		       name, backend, vcpus, mem);
	} else {
		printf("✓ %s task submitted: %s\n", type, id);
	}
	fflush(stdout);
}

static void on_output(int stream, const char *data, size_t len, void *ud)
{
	FILE *f = stream == 2 ? stderr : stdout;

	(void)ud;
	fwrite(data, 1, len, f);
	fflush(f);
}

/* A number flag with the range of configuration key `key`: 0, or 2
 * after saying what is allowed. */
static int flag_as_key(aeth_config *cfg, const char *flag, const char *key,
		       const char *text, unsigned int *out)
{
	int64_t v = 0;

	if (aeth_config_set(cfg, key, text) != 0 ||
	    aeth_config_get_int(&v, cfg, key) != 0) {
		fprintf(stderr, "error: -%s \"%s\": %s\n", flag, text,
			aeth_error_last());
		return 2;
	}
	*out = (unsigned int)v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *type = NULL, *name = NULL, *vm_id = NULL, *cmd = NULL;
	const char *args = NULL, *vcpus_s = NULL, *mem_s = NULL, *payload = NULL;
	const char *timeout_s = NULL, *queue = NULL, *config = NULL;
	const char *list = NULL, *status = NULL, *backend = NULL;
	const char *net = NULL, *rootfs = NULL, *image = NULL, *ttl_s = NULL;
	const char *cancel = NULL, *cwd = NULL, *stdin_path = NULL, *key = NULL;
	const char *cmd_timeout_s = NULL, *task_timeout_s = NULL;
	const char *env[65] = {NULL};
	size_t nenv = 0;
	bool wait = false, as_json = false, help = false, follow = false;
	cli_flag flags[] = {
		CLI_STR("type", &type), CLI_STR("name", &name),
		CLI_STR("vm-id", &vm_id), CLI_STR("cmd", &cmd),
		CLI_STR("args", &args), CLI_STR("vcpus", &vcpus_s),
		CLI_STR("memory", &mem_s), CLI_STR("payload", &payload),
		CLI_STR("timeout", &timeout_s), CLI_STR("queue", &queue),
		CLI_STR("config", &config), CLI_STR("list", &list),
		CLI_STR("status", &status), CLI_BOOL("wait", &wait),
		CLI_BOOL("json", &as_json), CLI_STR("net", &net),
		CLI_STR("rootfs", &rootfs), CLI_STR("image", &image),
		CLI_STR("ttl", &ttl_s), CLI_STR("cancel", &cancel),
		CLI_BOOL("follow", &follow),
		CLI_STR("cwd", &cwd), CLI_STR("stdin", &stdin_path),
		CLI_STR("idempotency-key", &key),
		CLI_STR("cmd-timeout", &cmd_timeout_s),
		CLI_STR("task-timeout", &task_timeout_s),
		CLI_LIST("env", env, 64, &nenv),
		CLI_END,
	};
	aeth_execute_options xo = AETH_EXECUTE_OPTIONS_INIT;
	char *stdin_text = NULL;
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	aeth_create_options vm = AETH_CREATE_OPTIONS_INIT;
	unsigned int vcpus = 0, mem = 0, timeout = 0, ttl = 0;
	int64_t dv = 0, dm = 0;
	aeth_config *cfg = NULL;
	aeth_client *c = NULL;
	char id[37] = "", *json = NULL, **words = NULL;
	int rc;

	if ((rc = cli_parse(argc, argv, flags, &help)) != 0)
		return rc;
	if (help || (!type && !list && !status && !cancel)) {
		fputs(usage, help ? stdout : stderr);
		fputs(usage_more, help ? stdout : stderr);
		return help ? 0 : 2;
	}
	if (timeout_s && duration_ms(timeout_s, &timeout) != 0) {
		fprintf(stderr, "error: -timeout \"%s\" is not a duration of at "
			"least 1ms like 90s, 5m or 500ms (leave -timeout out to "
			"wait without a limit)\n", timeout_s);
		return 2;
	}
	if (type && !payload && !strcmp(type, "vm:create") && !name) {
		fprintf(stderr, "error: vm:create needs -name NAME\n");
		return 2;
	}
	if (type && !payload && (!strcmp(type, "vm:execute") ||
				 !strcmp(type, "vm:delete")) && !vm_id) {
		fprintf(stderr, "error: %s needs -vm-id ID (aeth-submit -list vms "
			"shows them)\n", type);
		return 2;
	}
	if (type && !payload && !strcmp(type, "vm:execute") && !cmd) {
		fprintf(stderr, "error: vm:execute needs -cmd COMMAND, e.g. -cmd echo "
			"-args \"Hello from VM\"\n");
		return 2;
	}
	if (follow && (!type || strcmp(type, "vm:execute") || payload)) {
		fprintf(stderr, "error: -follow goes with -type vm:execute (without "
			"-payload)\n");
		return 2;
	}
	if ((cmd_timeout_s && duration_ms(cmd_timeout_s, &xo.timeout_ms) != 0) ||
	    (task_timeout_s && duration_ms(task_timeout_s, &so.timeout_ms) != 0)) {
		fprintf(stderr, "error: -%s \"%s\" is not a duration of at least "
			"1ms like 90s, 5m or 500ms\n", cmd_timeout_s ? "cmd-timeout" :
			"task-timeout", cmd_timeout_s ? cmd_timeout_s : task_timeout_s);
		return 2;
	}
	if ((nenv || cwd || stdin_path || key || cmd_timeout_s) &&
	    (!type || strcmp(type, "vm:execute") || payload)) {
		fprintf(stderr, "error: -env, -cwd, -stdin, -cmd-timeout and "
			"-idempotency-key go with -type vm:execute (without "
			"-payload)\n");
		return 2;
	}
	if (stdin_path && !(stdin_text = read_stdin_flag(stdin_path)))
		return 2;
	if (ttl_s && (duration_ms(ttl_s, &ttl) != 0 || ttl < 1000)) {
		fprintf(stderr, "error: -ttl \"%s\" is not a lifetime of at least "
			"1s like 90s, 10m or 2h\n", ttl_s);
		return 2;
	}
	if ((net || rootfs || image || ttl_s) &&
	    (!type || strcmp(type, "vm:create") || payload)) {
		fprintf(stderr, "error: -net, -rootfs, -image and -ttl go with "
			"-type vm:create (without -payload)\n");
		return 2;
	}
	if (args && aeth_args_split(&words, NULL, args) != 0) {
		fprintf(stderr, "error: %s\n", aeth_error_last());
		return 2;
	}
	if (aeth_init() != 0 || aeth_config_load(&cfg, config) != 0)
		return fail(config ? config : "configuration");
	/* -vcpus and -memory are checked as the keys vmm.vcpus and
	 * vmm.memory_mb are: one range, in lib/config/keys.c */
	if ((vcpus_s && flag_as_key(cfg, "vcpus", "vmm.vcpus", vcpus_s, &vcpus)) ||
	    (mem_s && flag_as_key(cfg, "memory", "vmm.memory_mb", mem_s, &mem))) {
		rc = 2;
		goto out;
	}
	aeth_config_get_string(&backend, cfg, "vmm.backend");
	aeth_config_get_int(&dv, cfg, "vmm.vcpus");
	aeth_config_get_int(&dm, cfg, "vmm.memory_mb");
	if (aeth_client_open_config(&c, cfg) != 0) {
		rc = fail("connect");
		goto out;
	}
	if (cancel) {
		if (aeth_client_cancel(c, cancel) != 0) {
			rc = fail("cancel");
			goto out;
		}
		printf(as_json ? "{\"task_id\":\"%s\",\"cancelled\":true}\n" :
		       "✓ task %s cancelled\n", cancel);
		goto out;
	}
	if (status && wait) { /* wait for a task submitted earlier */
		if (aeth_client_wait(&json, c, status, timeout, progress,
				     NULL) != 0) {
			rc = fail("wait");
			goto out;
		}
		show(json, "task", as_json);
		rc = aeth_task_exit_status(json);
		goto out;
	}
	if (list || status) {
		rc = list ? aeth_client_list(&json, c, list, 20) :
			    aeth_client_task(&json, c, status);
		rc = rc != 0 ? fail(list ? "list" : "status") :
			       show(json, list ? list : "task", as_json);
		goto out;
	}
	so.queue = queue;
	vm.name = name;
	vm.vcpus = vcpus;
	vm.memory_mb = mem;
	vm.network = net;
	vm.rootfs = rootfs;
	vm.image = image;
	vm.ttl_s = ttl / 1000;
	if (payload)
		rc = aeth_client_submit(id, NULL, c, type, payload, &so);
	else if (!strcmp(type, "vm:create"))
		rc = aeth_client_submit_create_ex(id, c, &vm, &so);
	else if (!strcmp(type, "vm:execute"))
	{
		xo.env = nenv ? env : NULL;
		xo.cwd = cwd;
		xo.stdin_data = stdin_text;
		xo.idempotency_key = key;
		xo.live_output = follow;
		rc = aeth_client_submit_execute_ex(id, c, vm_id, cmd,
						   (const char *const *)words,
						   &xo, &so);
	}
	else if (!strcmp(type, "vm:delete"))
		rc = aeth_client_submit_delete(id, c, vm_id, &so);
	else
		rc = aeth_client_submit(id, NULL, c, type, "{}", &so);
	if (rc != 0) {
		rc = fail("submit");
		goto out;
	}
	if (follow) {
		/* the command's own output, as it comes; then its exit code */
		if (aeth_client_follow(c, id, timeout, on_output, NULL) != 0 ||
		    aeth_client_wait(&json, c, id, timeout, NULL, NULL) != 0) {
			rc = fail("follow");
			goto out;
		}
		rc = aeth_task_exit_status(json);
		if (rc == 1 && !strstr(json, "\"exit_code\""))
			show(json, "task", as_json); /* it did not run: say why */
		goto out;
	}
	if (!(as_json && wait)) /* -json -wait: only the final JSON */
		submitted(type, id, name, vcpus ? vcpus : (unsigned int)dv,
		  mem ? mem : (unsigned int)dm, backend && !strcmp(backend,
		  "firecracker") ? "Firecracker" : "QEMU", as_json);
	if (wait) {
		if (aeth_client_wait(&json, c, id, timeout, progress,
				     NULL) != 0) {
			rc = fail("wait");
			goto out;
		}
		show(json, "task", as_json);
		rc = aeth_task_exit_status(json);
	}
out:
	aeth_free(json);
	aeth_strarray_free(words);
	free(stdin_text);
	aeth_client_free(c);
	aeth_config_free(cfg);
	aeth_shutdown();
	return rc;
}
