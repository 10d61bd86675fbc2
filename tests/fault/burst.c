/*
 * tests/fault/burst.c - submit a burst of tasks through the submit client
 * (aeth_client_submit(), what aeth-submit calls), one after the other
 * over one client, and say at once what became of each: the fault tests
 * break Redis or PostgreSQL in the middle of it.
 *
 *   burst N TYPE QUEUE PAYLOAD [GAP_US]
 *
 * One line per task, flushed: "ok ID" when the submit was accepted,
 * "refused ID reason" when it was not (the client may have recorded the
 * task as failed). GAP_US pauses between submits. Services from
 * $AETH_DATABASE_URL / $AETH_REDIS_URL. Exit status 0 unless the client
 * could not be opened at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aetherium/aetherium.h"

int main(int argc, char **argv)
{
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	aeth_client *c = NULL;
	long n, gap_us;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: burst N TYPE QUEUE PAYLOAD [GAP_US]\n");
		return 2;
	}
	n = atol(argv[1]);
	gap_us = argc == 6 ? atol(argv[5]) : 0;
	so.queue = argv[3];
	if (aeth_init() != 0 || aeth_client_open(&c, NULL) != 0) {
		fprintf(stderr, "burst: %s\n", aeth_error_last());
		return 1;
	}
	for (long i = 0; i < n; i++) {
		struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
		char id[37] = "-";

		if (aeth_client_submit(id, NULL, c, argv[2], argv[4], &so) == 0)
			printf("ok %s\n", id);
		else
			printf("refused %s %s\n", id, aeth_error_last());
		fflush(stdout);
		if (gap_us > 0)
			nanosleep(&gap, NULL);
	}
	aeth_client_free(c);
	aeth_shutdown();
	return 0;
}
