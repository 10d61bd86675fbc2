/*
 * tests/firecracker/fc_files.h - small file helpers shared by the
 * Firecracker tests (fc_files.c).
 */
#ifndef AETH_TEST_FC_FILES_H
#define AETH_TEST_FC_FILES_H

/* The whole file as a malloc'd string ("" if it cannot be read). */
char *fc_slurp(const char *path);

/* Create or replace `path` with `text`; fails the test if it cannot. */
void fc_write_file(const char *path, const char *text);

#endif
