/*
 * bench/common/bench_uuid.h - random (v4) UUIDs in text form for the
 * benchmarks' own task ids (the library's generator is internal).
 */
#ifndef AETH_BENCH_UUID_H
#define AETH_BENCH_UUID_H

/* 0, or -1 when /dev/urandom cannot be read. */
int bench_uuid4(char out[37]);

#endif
