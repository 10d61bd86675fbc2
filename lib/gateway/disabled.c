/*
 * lib/gateway/disabled.c - the gateway API of a library built without
 * the meson option `http`: every call says so.
 */
#include <stddef.h>


#include "aetherium/unstable/gateway.h"
#include "internal.h"

static int off(void)
{
	return aeth__error_set(AETH_EUNAVAILABLE, "this libaetherium was built "
			       "without HTTP support: install libmicrohttpd-dev "
			       "and nettle-dev and configure with -Dhttp=enabled");
}

int aeth_gateway_start(aeth_gateway **out, const aeth_config *cfg)
{
	(void)cfg;
	if (out)
		*out = NULL;
	return off();
}

int aeth_gateway_port(const aeth_gateway *gw)
{
	(void)gw;
	return 0;
}

int aeth_gateway_metrics_port(const aeth_gateway *gw)
{
	(void)gw;
	return 0;
}

void aeth_gateway_free(aeth_gateway *gw)
{
	(void)gw;
}

int aeth_gateway_key_create(char **key_out, char id_out[37],
			    const aeth_config *cfg, const char *tenant,
			    const char *name, int operator_key)
{
	(void)id_out, (void)cfg, (void)tenant, (void)name, (void)operator_key;
	if (key_out)
		*key_out = NULL;
	return off();
}

int aeth_gateway_key_list(char **json_out, const aeth_config *cfg)
{
	(void)cfg;
	if (json_out)
		*json_out = NULL;
	return off();
}

int aeth_gateway_key_revoke(const aeth_config *cfg, const char *id_or_prefix)
{
	(void)cfg, (void)id_or_prefix;
	return off();
}

int aeth_gateway_tenant_limits(const aeth_config *cfg, const char *tenant,
			       int max_vms, int max_vcpus, int max_memory_mb,
			       int max_rps)
{
	(void)cfg, (void)tenant, (void)max_vms, (void)max_vcpus;
	(void)max_memory_mb, (void)max_rps;
	return off();
}
