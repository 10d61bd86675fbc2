/*
 * bench/common/bench_redis.h - a plain hiredis connection to the Redis of
 * an aetherium URL (unix:///path[?...] or redis://host[:port][/...]), for
 * the benchmarks' own reads (INFO, SCAN) beside the library's queue.
 */
#ifndef AETH_BENCH_REDIS_H
#define AETH_BENCH_REDIS_H

#include <hiredis/hiredis.h>

/* NULL when it cannot connect. */
redisContext *bench_redis_connect(const char *url);

#endif
