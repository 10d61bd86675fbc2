/*
 * aeth-worker - take tasks from the Redis queue and run them in microVMs.
 * A thin shell around aeth_worker_* (include/aetherium/worker.h).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "flags.h"

static const char usage[] =
	"Usage: aeth-worker [flags]\n"
	"\n"
	"Take tasks (vm:create, vm:execute, vm:delete, vm:file_put, vm:file_get)\n"
	"from the Redis queue, run them in microVMs and record them in PostgreSQL. Stops on SIGTERM/SIGINT:\n"
	"running tasks get worker.shutdown_timeout_ms to finish, then go back to\n"
	"the queue.\n"
	"\n"
	"Flags (-flag value, -flag=value or --flag):\n"
	"  -config FILE       YAML configuration (config/example.yaml lists every key);\n"
	"                     AETH_* environment variables override it\n"
	"  -concurrency N     tasks run at once (queue.concurrency)\n"
	"  -queues SPEC       queues and weights, e.g. critical=6,high=5,default=3,low=1\n"
	"  -id ID             worker id (worker.id; default hostname-pid-random); VMs\n"
	"                     it creates belong to it and their tasks go to its queue\n"
	"  -log-level LEVEL   debug, info, warn, error, off (logging.level)\n"
	"  -check             diagnose this host (VMM binaries, accelerator, how VMMs\n"
	"                     are confined, guest image and catalogue, network\n"
	"                     profiles, limits, Redis, PostgreSQL and how they are\n"
	"                     reached) and exit non-zero if something needed is\n"
	"                     missing\n"
	"  -h, --help         this help\n"
	"\n"
	"Guests: each VMM runs jailed (its own uid, namespaces, cgroup, seccomp;\n"
	"vmm.jail). vm:create boots an image of the worker's catalogue (\"image\";\n"
	"default: vmm.kernel/initrd/rootfs, the root disk only with \"rootfs\":\n"
	"true or vmm.use_rootfs), with no network card unless it names one of the\n"
	"worker's network profiles, which list what a guest may reach (\"user\"\n"
	"reaches nothing unless configured). limits.* bound sizes, VMs at once and\n"
	"lifetimes. docs/security.md; docs/cli.md: the git clone workflow.\n"
	"\n"
	"Examples:\n"
	"  eval \"$(scripts/services.sh env)\"   # private Redis + PostgreSQL URLs\n"
	"  aeth-worker -check\n"
	"  aeth-worker -concurrency 2\n"
	"  aeth-worker -config config/example.yaml -id host1-w1 -queues critical=6,default=3\n";

static aeth_worker *g_worker;
static bool g_json; /* logging.format: json */

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/*
 * One line of this program's own (the worker's progress lines come
 * through on_event, already in the format): as it is in text, and with
 * logging.format json an object with the fields of the library's lines
 * (docs/metrics.md), so that every line of a JSON log parses.
 */
static void say(FILE *f, const char *level, const char *worker,
		const char *message)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (!g_json) {
		fprintf(f, "%s\n", message);
		fflush(f);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", stamp,
		(long)(ts.tv_nsec / 1000000L), level);
	if (worker) {
		fputs(",\"worker\":", f);
		json_string(f, worker);
	}
	fputs(",\"message\":", f);
	json_string(f, message);
	fputs("}\n", f);
	fflush(f);
}

static void on_signal(int sig)
{
	(void)sig;
	aeth_worker_stop(g_worker); /* async-signal-safe: writes to a pipe */
}

static void on_event(const char *task_id, const char *line, void *userdata)
{
	(void)task_id;
	(void)userdata;
	printf("%s\n", line);
	fflush(stdout);
}

static void on_check(const char *what, int status, const char *detail,
		     const char *fix, void *userdata)
{
	static const char *const mark[] = {"✓", "!", "✗"};
	int *counts = userdata; /* [ok, warnings, failures] */

	counts[status < 0 || status > 2 ? 2 : status]++;
	printf("%s %s: %s\n", mark[status < 0 || status > 2 ? 2 : status], what,
	       detail);
	if (status != 0 && fix && *fix)
		printf("    fix: %s\n", fix);
}

static int fail(const char *what)
{
	char line[2048];

	snprintf(line, sizeof(line), "aeth-worker: %s: %s", what,
		 aeth_error_last());
	say(stderr, "error", g_worker ? aeth_worker_id(g_worker) : NULL, line);
	return 1;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *conc = NULL, *queues = NULL, *id = NULL;
	const char *level = NULL;
	bool check = false, help = false;
	cli_flag flags[] = {
		CLI_STR("config", &config),
		CLI_STR("concurrency", &conc),
		CLI_STR("queues", &queues),
		CLI_STR("id", &id),
		CLI_STR("log-level", &level),
		CLI_BOOL("check", &check),
		CLI_END,
	};
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	aeth_config *cfg = NULL;
	struct sigaction sa;
	int rc;

	if ((rc = cli_parse(argc, argv, flags, &help)) != 0)
		return rc;
	if (help) {
		fputs(usage, stdout);
		return 0;
	}
	if (conc && cli_uint("concurrency", conc, &o.concurrency) != 0)
		return 2;
	if (level && aeth_log_level_parse(level) < 0) {
		fprintf(stderr, "error: -log-level \"%s\": expected debug, info, "
			"warn, error or off\n", level);
		return 2;
	}
	if (aeth_init() != 0)
		return fail("init");
	if (aeth_config_load(&cfg, config) != 0)
		return fail(config ? config : "configuration");
	cli_log_setup(cfg, level);
	{
		const char *format = NULL;

		g_json = aeth_config_get_string(&format, cfg, "logging.format") == 0
			 && format && !strcmp(format, "json");
	}
	if (check) {
		int counts[3] = {0, 0, 0};

		rc = aeth_worker_check(cfg, on_check, counts);
		if (rc == 0 && counts[1] == 0)
			printf("All %d checks passed.\n", counts[0]);
		else if (rc == 0)
			printf("This host can run a worker: %d checks passed, %d "
			       "warning(s) (optional, or slower) with their fixes above.\n",
			       counts[0], counts[1]);
		else
			printf("This host cannot run a worker yet: %d check(s) failed; "
			       "apply the fixes above and run aeth-worker -check again.\n",
			       counts[2]);
		aeth_config_free(cfg);
		return rc == 0 ? 0 : 1;
	}
	say(stdout, "info", id, "Worker starting...");
	o.id = id;
	o.queues = queues;
	o.on_event = on_event;
	o.migrate = 1;
	if (aeth_worker_new_from_config(&g_worker, cfg, &o) != 0 ||
	    aeth_worker_handle_builtin(g_worker) != 0) {
		aeth_config_free(cfg);
		return fail("worker");
	}
	{
		char line[1024];
		const char *wid = aeth_worker_id(g_worker);

		snprintf(line, sizeof(line), "Worker id: %s", wid);
		say(stdout, "info", wid, line);
		snprintf(line, sizeof(line), "Registered handlers for: %s",
			 aeth_worker_types(g_worker));
		say(stdout, "info", wid, line);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = aeth_worker_run(g_worker);
	if (rc != 0)
		fail("worker stopped");
	else
		say(stdout, "info", aeth_worker_id(g_worker), "Worker stopped.");
	aeth_worker_free(g_worker);
	aeth_config_free(cfg);
	aeth_shutdown();
	return rc == 0 ? 0 : 1;
}
