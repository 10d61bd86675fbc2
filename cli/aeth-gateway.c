/*
 * aeth-gateway - the HTTP API for tenants (docs/gateway.md), and the
 * admin commands for its API keys and tenant limits. A thin wrapper over
 * the library's unstable gateway API (aetherium/unstable/gateway.h).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AETH_UNSTABLE
#include <aetherium/aetherium.h>
#include <aetherium/unstable/gateway.h>

#include "flags.h"

static const char usage[] =
	"Usage: aeth-gateway [-config FILE] [-listen ADDR]\n"
	"       aeth-gateway keys create -tenant NAME [-name NOTE] [-operator]\n"
	"       aeth-gateway keys list\n"
	"       aeth-gateway keys revoke ID|PREFIX\n"
	"       aeth-gateway tenants set NAME [-max-vms N] [-max-vcpus N]\n"
	"                                     [-max-memory-mb N] [-max-rps N]\n"
	"\n"
	"Serves the Aetherium API over HTTP (JSON, /v1; docs/gateway.md and\n"
	"docs/openapi.yaml) to holders of API keys, so that users never get the\n"
	"Redis and PostgreSQL credentials. Listens on gateway.listen (default\n"
	"127.0.0.1:8080; unix:/path for a socket); plain HTTP only on loopback\n"
	"unless gateway.allow_remote, TLS with gateway.tls_cert and tls_key.\n"
	"Stops on SIGTERM/SIGINT.\n"
	"\n"
	"  -config FILE   YAML config (gateway.*, database.url, redis.url;\n"
	"                 docs/config.md); AETH_* environment variables\n"
	"                 override it (AETH_DATABASE_URL, AETH_REDIS_URL)\n"
	"  -listen ADDR   overrides gateway.listen (host:port, unix:/path)\n"
	"\n"
	"keys create prints a new key once: it is stored only as its SHA-256.\n"
	"-operator keys see every tenant and the workers and queues. A tenant\n"
	"is made by its first key. tenants set sets all four of a tenant's\n"
	"limits (made if new): a flag left out, or -1, is the gateway's\n"
	"gateway.quota_* default; -max-vms 0 blocks creates; -max-rps 0 means\n"
	"no rate limit.\n"
	"\n"
	"Example:\n"
	"  KEY=$(aeth-gateway keys create -tenant acme)\n"
	"  curl -H \"Authorization: Bearer $KEY\" -d '{\"name\":\"demo\"}' \\\n"
	"       http://127.0.0.1:8080/v1/vms\n";

static int fail(const char *what)
{
	fprintf(stderr, "aeth-gateway: %s: %s\n", what, aeth_error_last());
	return 1;
}

static int serve(aeth_config *cfg)
{
	aeth_gateway *gw = NULL;
	const char *listen = NULL;
	sigset_t stop;
	int sig = 0;

	/* SIGTERM and SIGINT are blocked before the server's threads start
	 * (they inherit the mask) and taken here with sigwait(): a handler
	 * could run on any thread and leave this one waiting for good */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (aeth_gateway_start(&gw, cfg) != 0)
		return fail("cannot start");
	aeth_config_get_string(&listen, cfg, "gateway.listen");
	fprintf(stderr, "aeth-gateway: serving on %s (port %d)\n",
		listen ? listen : "?", aeth_gateway_port(gw));
	listen = NULL;
	aeth_config_get_string(&listen, cfg, "metrics.listen");
	if (listen && *listen && strcmp(listen, "off") != 0)
		fprintf(stderr, "aeth-gateway: metrics on %s (port %d): GET "
			"/metrics\n", listen, aeth_gateway_metrics_port(gw));
	while (sigwait(&stop, &sig) != 0)
		;
	fprintf(stderr, "aeth-gateway: stopping (%s)\n",
		sig == SIGINT ? "SIGINT" : "SIGTERM");
	aeth_gateway_free(gw);
	return 0;
}

static int keys(aeth_config *cfg, int argc, char **argv)
{
	const char *tenant = NULL, *name = NULL;
	bool op = false, help = false;
	cli_flag flags[] = {
		CLI_STR("tenant", &tenant),
		CLI_STR("name", &name),
		CLI_BOOL("operator", &op),
		CLI_END,
	};
	char *out = NULL, id[37];

	if (argc < 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (!strcmp(argv[0], "create")) {
		if (cli_parse(argc, argv, flags, &help) != 0 || help || !tenant) {
			fputs(help ? usage : "aeth-gateway keys create: give -tenant "
			      "NAME\n", help ? stdout : stderr);
			return help ? 0 : 2;
		}
		if (aeth_gateway_key_create(&out, id, cfg, tenant, name, op) != 0)
			return fail("keys create");
		printf("%s\n", out);
		fprintf(stderr, "aeth-gateway: key %s for tenant %s%s (shown once: "
			"keep it now)\n", id, tenant, op ? ", operator" : "");
	} else if (!strcmp(argv[0], "list")) {
		if (aeth_gateway_key_list(&out, cfg) != 0)
			return fail("keys list");
		printf("%s\n", out);
	} else if (!strcmp(argv[0], "revoke") && argc == 2) {
		if (aeth_gateway_key_revoke(cfg, argv[1]) != 0)
			return fail("keys revoke");
		fprintf(stderr, "aeth-gateway: key %s revoked\n", argv[1]);
	} else {
		fputs(usage, stderr);
		return 2;
	}
	aeth_free(out);
	return 0;
}

/* A limit flag: a whole number from -1 (the default) up; atoi() would
 * read "ten" as 0, which blocks a tenant's creates. */
static int limit_value(const char *flag, const char *text, int *out)
{
	long v = -1;

	if (text && !cli_number(text, -1, 1073741824L, &v)) {
		fprintf(stderr, "aeth-gateway tenants set: -%s \"%s\": expected a "
			"whole number from 0, or -1 for the gateway's default\n",
			flag, text);
		return 2;
	}
	*out = (int)v;
	return 0;
}

static void limit_text(char *buf, size_t n, int v, const char *key)
{
	if (v < 0)
		snprintf(buf, n, "default (gateway.%s)", key);
	else
		snprintf(buf, n, "%d", v);
}

static int tenants(aeth_config *cfg, int argc, char **argv)
{
	static const char *const names[4] = {"max-vms", "max-vcpus",
					     "max-memory-mb", "max-rps"};
	static const char *const keys[4] = {"quota_vms", "quota_vcpus",
					    "quota_memory_mb", "quota_rps"};
	const char *v[4] = {NULL, NULL, NULL, NULL};
	bool help = false;
	cli_flag flags[] = {
		CLI_STR("max-vms", &v[0]),
		CLI_STR("max-vcpus", &v[1]),
		CLI_STR("max-memory-mb", &v[2]),
		CLI_STR("max-rps", &v[3]),
		CLI_END,
	};
	char text[4][48];
	int n[4];

	if (argc >= 2 && argv[1][0] == '-' && strcmp(argv[0], "set") == 0) {
		/* tenants set -h, or a flag where the name belongs */
		if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "-help") ||
		    !strcmp(argv[1], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		fprintf(stderr, "aeth-gateway tenants set: give the tenant's name "
			"before the flags: tenants set NAME %s ...\n", argv[1]);
		return 2;
	}
	if (argc < 2 || strcmp(argv[0], "set") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (cli_parse(argc - 1, argv + 1, flags, &help) != 0 || help) {
		fputs(usage, help ? stdout : stderr);
		return help ? 0 : 2;
	}
	for (int i = 0; i < 4; i++)
		if (limit_value(names[i], v[i], &n[i]) != 0)
			return 2;
	if (aeth_gateway_tenant_limits(cfg, argv[1], n[0], n[1], n[2], n[3]) != 0)
		return fail("tenants set");
	for (int i = 0; i < 4; i++)
		limit_text(text[i], sizeof(text[i]), n[i], keys[i]);
	fprintf(stderr, "aeth-gateway: tenant %s: max_vms %s, max_vcpus %s, "
		"max_memory_mb %s, max_rps %s\n", argv[1], text[0], text[1],
		text[2], text[3]);
	return 0;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *listen = NULL;
	bool help = false;
	aeth_config *cfg = NULL;
	int rc, cmd = 1;
	cli_flag flags[] = {
		CLI_STR("config", &config),
		CLI_STR("listen", &listen),
		CLI_END,
	};

	/* global flags come first: aeth-gateway -config F keys list */
	if ((rc = cli_parse_head(argc, argv, flags, &help, &cmd)) != 0)
		return rc;
	if (help) {
		fputs(usage, stdout);
		return 0;
	}
	if (cmd < argc && argv[cmd][0] == '-') {
		fprintf(stderr, "aeth-gateway: unknown flag %s\n\n%s", argv[cmd], usage);
		return 2;
	}
	if (aeth_init() != 0 || aeth_config_load(&cfg, config) != 0)
		return fail("config");
	/* the library's lines (migrations, warnings) on stderr */
	cli_log_setup(cfg, NULL);
	if (listen && aeth_config_set(cfg, "gateway.listen", listen) != 0)
		return fail("-listen");
	if (cmd == argc)
		rc = serve(cfg);
	else if (!strcmp(argv[cmd], "keys"))
		rc = keys(cfg, argc - cmd - 1, argv + cmd + 1);
	else if (!strcmp(argv[cmd], "tenants"))
		rc = tenants(cfg, argc - cmd - 1, argv + cmd + 1);
	else {
		fprintf(stderr, "aeth-gateway: unknown command %s\n\n%s", argv[cmd],
			usage);
		rc = 2;
	}
	aeth_config_free(cfg);
	aeth_shutdown();
	return rc;
}
