/*
 * libFuzzer target for the frame decoder (lib/proto): the input is a byte
 * stream from a hostile peer, fed in pieces to the reassembler, and every
 * frame that comes out is parsed the way the agent and client do.
 * Built with -Dfuzz=true (clang); fuzz_replay.c runs the committed
 * corpus and random garbage through the same function in every build.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_frame(const aeth__proto_header *h, const uint8_t *pl)
{
	aeth__proto_fields f;

	if (aeth__proto_parse(&f, pl, h->len, NULL) == 0) {
		/* Touch what the receivers use, so ASan sees bad pointers. */
		for (size_t i = 0; i < f.nargs; i++)
			(void)strlen(f.args[i]);
		for (size_t i = 0; i < f.nenvs; i++)
			(void)strlen(f.envs[i]);
		if (f.cwd)
			(void)strlen(f.cwd);
		if (f.path)
			(void)strlen(f.path);
		if (f.message)
			(void)strlen(f.message);
		if (f.info)
			(void)strlen(f.info);
		if (f.data_len)
			(void)(volatile uint8_t)f.data[f.data_len - 1];
	}
	aeth__proto_fields_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aeth__proto_rx rx = AETH__PROTO_RX_INIT;
	aeth__proto_fields f;
	size_t step = size ? (size_t)data[0] % 17 + 1 : 1;

	/* The whole input as one payload. */
	aeth__proto_parse(&f, data, size, NULL);
	aeth__proto_fields_free(&f);
	/* As a stream, arriving `step` bytes at a time. */
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		aeth__proto_header h;
		const uint8_t *pl;
		int rc;

		if (aeth__proto_rx_feed(&rx, data + off, n))
			break;
		while ((rc = aeth__proto_rx_next(&rx, &h, &pl)) == 1)
			parse_frame(&h, pl);
		if (rc < 0)
			break; /* the receivers drop the stream here */
	}
	aeth__proto_rx_free(&rx);
	return 0;
}
