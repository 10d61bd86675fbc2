#include <stdio.h>
#include <string.h>

#include "bench_redis.h"

redisContext *bench_redis_connect(const char *url)
{
	redisContext *c;

	if (!strncmp(url, "unix://", 7)) {
		char path[4096];

		snprintf(path, sizeof(path), "%s", url + 7);
		path[strcspn(path, "?")] = '\0';
		c = redisConnectUnix(path);
	} else {
		char host[256] = "127.0.0.1";
		int port = 6379;

		sscanf(url, "redis://%255[^:/]:%d", host, &port);
		c = redisConnect(host, port);
	}
	if (!c || c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}
