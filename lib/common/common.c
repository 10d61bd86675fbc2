/*
 * lib/common/common.c - library init, version, shared frees.
 */
#include <pthread.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "aetherium/common.h"
#include "aetherium/version.h"
#include "internal.h"

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;

int aeth_init(void)
{
	int rc = 0;

	pthread_mutex_lock(&init_lock);
	if (init_count == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		rc = aeth__error_set(AETH_ERROR, "libcurl global init failed");
	if (rc == 0)
		init_count++;
	pthread_mutex_unlock(&init_lock);
	return rc;
}

void aeth_shutdown(void)
{
	pthread_mutex_lock(&init_lock);
	if (init_count > 0 && --init_count == 0)
		curl_global_cleanup();
	pthread_mutex_unlock(&init_lock);
}

void aeth_strarray_free(char **array)
{
	if (!array)
		return;
	for (char **p = array; *p; p++)
		free(*p);
	free(array);
}

void aeth_free(void *ptr)
{
	free(ptr);
}

const char *aeth_version(void)
{
	return AETH_VERSION_STRING;
}

void aeth_version_numbers(int *major, int *minor, int *patch)
{
	if (major)
		*major = AETH_VERSION_MAJOR;
	if (minor)
		*minor = AETH_VERSION_MINOR;
	if (patch)
		*patch = AETH_VERSION_PATCH;
}
