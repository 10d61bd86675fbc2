/*
 * bench/metrics - what the metrics endpoint costs a worker: no-op task
 * throughput of a real worker draining a backlog of N tasks with
 * metrics.listen off, and with it on and GET /metrics scraped every
 * second (as Prometheus would, queue depths read from Redis each time
 * the 2 s cache runs out), in the same run. Rounds alternate off/on so
 * that the machine's noise (other processes on 2 cores) falls on both;
 * the ratio is median(on) / median(off), beside the median of the
 * per-round ratios and the worker process's CPU time per task in each
 * mode. The scraper is a separate process (a curl loop), as Prometheus
 * would be. Each drain starts from the same tasks table (its rows
 * deleted and vacuumed after each). Prints a table and, with -json, one
 * JSON object.
 *
 * Needs AETH_DATABASE_URL and AETH_REDIS_URL
 * (eval "$(scripts/services.sh env)"); uses its own queue namespace.
 * Usage: bench_metrics [-n N] [-r ROUNDS] [-c CONCURRENCY] [-json]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <libpq-fe.h>

#include "aetherium/aetherium.h"
#include "bench_uuid.h"

#define QUEUE "benchm"
#define TYPE "bench:noop"

static atomic_int done_count;
static int scrapes, scrape_failures;
static double scrape_ms_total;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_metrics: %s: %s\n", what, aeth_error_last());
	exit(1);
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int noop(aeth_task *t, void *userdata)
{
	(void)t;
	(void)userdata;
	atomic_fetch_add(&done_count, 1);
	return 0;
}

static void *run_worker(void *w)
{
	if (aeth_worker_run(w) != 0)
		die("aeth_worker_run");
	return NULL;
}

/*
 * The scraper is a process of its own (as Prometheus would be), so that
 * its CPU is not counted as the worker's: a shell loop of curl GETs, one
 * a second, each logging its status and time to `log`.
 */
static pid_t start_scraper(const char *url, const char *log)
{
	char script[512];
	pid_t pid;

	snprintf(script, sizeof(script),
		 "while :; do curl -s -o /dev/null -m 10 -w '%%{http_code} "
		 "%%{time_total}\\n' '%s' >> '%s'; sleep 1; done", url, log);
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		die("fork");
	setpgid(pid, pid);
	return pid;
}

static void stop_scraper(pid_t pid, const char *log)
{
	char line[128];
	FILE *f;

	kill(-pid, SIGTERM);
	waitpid(pid, NULL, 0);
	if (!(f = fopen(log, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		double t = 0;
		int code = 0;
		if (sscanf(line, "%d %lf", &code, &t) != 2)
			continue;
		scrapes++;
		scrape_ms_total += t * 1000.0;
		if (code != 200)
			scrape_failures++;
	}
	fclose(f);
	unlink(log);
}

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static PGconn *pg;

static void uuid4(char out[37])
{
	if (bench_uuid4(out) != 0)
		die("reading /dev/urandom");
}

static void pg_exec(const char *sql, const char *param)
{
	PGresult *r = PQexecParams(pg, sql, param ? 1 : 0, NULL, &param, NULL,
				   NULL, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench_metrics: %s: %s", sql, PQerrorMessage(pg));
		exit(1);
	}
	PQclear(r);
}

/* Tasks with their pending rows, as aeth_client_submit makes them (so
 * that the worker takes its normal path, bench/worker's way). */
static void enqueue_all(aeth_queue *q, int n)
{
	aeth_queue_enqueue_options *eo = calloc((size_t)n, sizeof(*eo));
	aeth_queue_batch_task *b = calloc((size_t)n, sizeof(*b));
	char (*ids)[37] = calloc((size_t)n, 37);
	char *arr = malloc((size_t)n * 38 + 3), *p = arr;

	*p++ = '{';
	for (int i = 0; i < n; i++) {
		uuid4(ids[i]);
		p += sprintf(p, "%s%s", i ? "," : "", ids[i]);
		aeth_queue_enqueue_options_init(&eo[i], AETH_QUEUE_ENQUEUE_OPTIONS_VERSION);
		eo[i].queue = QUEUE;
		eo[i].id = ids[i];
		aeth_queue_batch_task_init(&b[i], AETH_QUEUE_BATCH_TASK_VERSION);
		b[i].type = TYPE;
		b[i].opts = &eo[i];
	}
	strcpy(p, "}");
	pg_exec("INSERT INTO tasks (id, type, status, payload, queue, "
		"max_retries, retry_count, created_at, updated_at) SELECT x::uuid, "
		"'" TYPE "', 'pending', '{}', '" QUEUE "', 3, 0, now() AT TIME ZONE "
		"'UTC', now() AT TIME ZONE 'UTC' FROM unnest($1::text[]) x", arr);
	for (int i = 0; i < n; i += 1000)
		if (aeth_queue_enqueue_batch(q, b + i, (size_t)(n - i < 1000 ? n - i : 1000)) != 0)
			die("enqueue_batch");
	free(arr);
	free(ids);
	free(b);
	free(eo);
}

/* One drain of n tasks; tasks/s, and this process's CPU per task (us)
 * in *cpu_us. */
static double drain(const char *ns, int n, unsigned int conc, bool metrics,
		    double *cpu_us)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	aeth_config *cfg = NULL;
	aeth_queue *q = NULL;
	aeth_worker *w = NULL;
	pthread_t th;
	pid_t scraper = 0;
	char listen[64], url[128], log[64];
	double t0, t1, c0;

	qo.url = getenv("AETH_REDIS_URL");
	qo.ns = ns;
	if (aeth_queue_open(&q, &qo) != 0)
		die("opening the queue");
	enqueue_all(q, n);
	aeth_queue_free(q);
	if (aeth_config_load(&cfg, NULL) != 0)
		die("config");
	if (metrics) {
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", free_port());
		snprintf(url, sizeof(url), "http://%s/metrics", listen);
		if (aeth_config_set(cfg, "metrics.listen", listen) != 0)
			die("metrics.listen");
	}
	o.redis_ns = ns;
	o.queues = QUEUE;
	o.concurrency = conc;
	atomic_store(&done_count, 0);
	if (aeth_worker_new_from_config(&w, cfg, &o) != 0 ||
	    aeth_worker_handle(w, TYPE, noop, NULL) != 0)
		die("making the worker");
	t0 = now_ms();
	c0 = cpu_ms();
	pthread_create(&th, NULL, run_worker, w);
	if (metrics) { /* from when the endpoint is up */
		if (aeth_worker_wait_ready(w, 60000) != 0)
			die("starting the worker");
		snprintf(log, sizeof(log), "/tmp/bench_metrics.%d.log", (int)getpid());
		scraper = start_scraper(url, log);
	}
	while (atomic_load(&done_count) < n)
		usleep(500);
	t1 = now_ms();
	*cpu_us = (cpu_ms() - c0) * 1000.0 / n;
	if (metrics)
		stop_scraper(scraper, log);
	aeth_worker_stop(w);
	pthread_join(th, NULL);
	aeth_worker_free(w);
	aeth_config_free(cfg);
	/* the next drain starts from the same table: a growing one would
	 * slow whichever mode runs second */
	pg_exec("DELETE FROM tasks WHERE queue = '" QUEUE "'", NULL);
	pg_exec("VACUUM tasks", NULL);
	return n / ((t1 - t0) / 1000.0);
}

/*
 * The worker process's CPU per scrape: an idle worker (empty queue) with
 * the endpoint answers `k` GETs in a row from a curl loop; its CPU time
 * over them / k (its idle threads' own CPU included: an upper bound).
 */
static double scrape_cpu_ms(const char *ns, unsigned int conc, int k)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	aeth_config *cfg = NULL;
	aeth_worker *w = NULL;
	pthread_t th;
	char listen[64], script[512];
	double c0, c1;
	pid_t pid;

	if (aeth_config_load(&cfg, NULL) != 0)
		die("config");
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", free_port());
	if (aeth_config_set(cfg, "metrics.listen", listen) != 0)
		die("metrics.listen");
	o.redis_ns = ns;
	o.queues = QUEUE;
	o.concurrency = conc;
	if (aeth_worker_new_from_config(&w, cfg, &o) != 0 ||
	    aeth_worker_handle(w, TYPE, noop, NULL) != 0)
		die("making the worker");
	pthread_create(&th, NULL, run_worker, w);
	if (aeth_worker_wait_ready(w, 60000) != 0)
		die("starting the worker");
	snprintf(script, sizeof(script), "i=0; while [ $i -lt %d ]; do curl -s "
		 "-o /dev/null -m 10 http://%s/metrics; i=$((i+1)); done", k, listen);
	c0 = cpu_ms();
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	c1 = cpu_ms();
	aeth_worker_stop(w);
	pthread_join(th, NULL);
	aeth_worker_free(w);
	aeth_config_free(cfg);
	return (c1 - c0) / k;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int n = 50000, rounds = 4;
	unsigned int conc = 4;
	bool json = false;
	double off[32], on[32], pair[32], cpu_off[32], cpu_on[32];
	double m_off, m_on, m_pair, m_cpu_off, m_cpu_on, per_scrape, bound;
	char ns[64];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			conc = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-json"))
			json = true;
		else {
			fprintf(stderr, "usage: bench_metrics [-n N] [-r ROUNDS] "
				"[-c CONCURRENCY] [-json]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 32 || n < 1000)
		return 2;
	if (!getenv("AETH_REDIS_URL") || !getenv("AETH_DATABASE_URL")) {
		fprintf(stderr, "bench_metrics: set AETH_REDIS_URL and "
			"AETH_DATABASE_URL (eval \"$(scripts/services.sh env)\")\n");
		return 1;
	}
	if (aeth_init() != 0)
		die("init");
	pg = PQconnectdb(getenv("AETH_DATABASE_URL"));
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "bench_metrics: %s", PQerrorMessage(pg));
		return 1;
	}
	/* one warm-up drain: migrations, connections, page cache */
	snprintf(ns, sizeof(ns), "benchm%dw", (int)getpid());
	{
		double warm;
		drain(ns, 2000, conc, false, &warm);
	}
	for (int r = 0; r < rounds; r++) {
		snprintf(ns, sizeof(ns), "benchm%dr%d", (int)getpid(), r);
		/* alternate which goes first */
		if (r % 2) {
			on[r] = drain(ns, n, conc, true, &cpu_on[r]);
			off[r] = drain(ns, n, conc, false, &cpu_off[r]);
		} else {
			off[r] = drain(ns, n, conc, false, &cpu_off[r]);
			on[r] = drain(ns, n, conc, true, &cpu_on[r]);
		}
		pair[r] = on[r] / off[r];
		fprintf(stderr, "round %d: off %.0f tasks/s (%.1f us CPU/task), "
			"scraped %.0f tasks/s (%.1f us CPU/task)\n", r + 1, off[r],
			cpu_off[r], on[r], cpu_on[r]);
	}
	m_off = median(off, rounds);
	m_on = median(on, rounds);
	m_pair = median(pair, rounds);
	m_cpu_off = median(cpu_off, rounds);
	m_cpu_on = median(cpu_on, rounds);
	snprintf(ns, sizeof(ns), "benchm%ds", (int)getpid());
	per_scrape = scrape_cpu_ms(ns, conc, 200);
	/* a scrape a second takes per_scrape ms of the worker's CPU each
	 * second; with the worker CPU-bound at off tasks/s, the throughput
	 * it leaves is 1 - that / (the worker's CPU per second) */
	bound = 1.0 - (per_scrape / 1000.0) /
		(m_cpu_off * m_off / 1e6);
	printf("| worker drain, %d no-op tasks, concurrency %u, %d rounds | median |\n"
	       "|---|---|\n"
	       "| tasks/s, metrics off | %.0f |\n"
	       "| tasks/s, metrics on, GET /metrics every 1 s | %.0f |\n"
	       "| ratio of medians (scraped / off) | %.3f |\n"
	       "| median of per-round ratios | %.3f |\n"
	       "| worker process CPU per task, off / scraped (us) | %.1f / %.1f |\n"
	       "| CPU ratio (off / scraped; 1 = no cost) | %.3f |\n"
	       "| scrapes | %d (%d failed), %.1f ms each |\n"
	       "| worker CPU per scrape (idle worker, 200 GETs) | %.3f ms |\n"
	       "| throughput left by 1 scrape/s, from CPU (bound) | %.4f |\n",
	       n, conc, rounds, m_off, m_on, m_on / m_off, m_pair, m_cpu_off,
	       m_cpu_on, m_cpu_off / m_cpu_on, scrapes, scrape_failures,
	       scrapes ? scrape_ms_total / scrapes : 0.0, per_scrape, bound);
	if (json)
		printf("{\"bench\":\"metrics\",\"tasks\":%d,\"concurrency\":%u,"
		       "\"rounds\":%d,\"off_tasks_per_s\":%.0f,"
		       "\"scraped_tasks_per_s\":%.0f,\"ratio\":%.4f,"
		       "\"pair_ratio_median\":%.4f,\"cpu_us_per_task_off\":%.2f,"
		       "\"cpu_us_per_task_scraped\":%.2f,\"cpu_ratio\":%.4f,"
		       "\"scrapes\":%d,\"scrape_failures\":%d,\"scrape_ms_mean\":%.2f,"
		       "\"scrape_cpu_ms\":%.4f,\"cpu_bound_ratio\":%.5f,"
		       "\"goal\":0.98,\"met\":%s,\"cpu_bound_met\":%s}\n",
		       n, conc, rounds, m_off, m_on, m_on / m_off, m_pair, m_cpu_off,
		       m_cpu_on, m_cpu_off / m_cpu_on, scrapes, scrape_failures,
		       scrapes ? scrape_ms_total / scrapes : 0.0, per_scrape, bound,
		       m_on / m_off >= 0.98 ? "true" : "false",
		       bound >= 0.98 ? "true" : "false");
	PQfinish(pg);
	aeth_shutdown();
	return 0;
}
