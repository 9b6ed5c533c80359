/*
 * libFuzzer harness for lines.c: each version of lines_body and lines_wire
 * (plain and, where the CPU has them, AVX2 and AVX-512) against a
 * byte-at-a-time reference, and against its contract in lines.h.
 *
 * The input is a body: the bytes after a header block (the line before it
 * is not empty). The first input byte sets the output room for lines_wire,
 * so that it stops for room as well as for input.
 *
 *   - lines_body, driven the way scan() drives it (after a stop that is no
 *     separator, the caller takes a line itself, and the lines after an empty
 *     one), ends at the reference's separator with the reference's wire size;
 *     every stop is at a line start, and short of a separator within the
 *     last LINES_SLACK bytes' line;
 *   - lines_wire, driven the way maildrop_send drives it (after each stop the
 *     caller takes one byte, a CR LF pair, or a line's dot), writes exactly
 *     the reference wire form, never more than the room it was given, and
 *     never stops between a CR and an LF.
 */
#include "quiet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lines.h"
#include "../tests/lines-ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-lines: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const versions[] = { "plain", "avx2", "avx512" };
	const char *p, *e, *end;
	char *ref, *out;
	size_t room, n, k;
	off_t want = 0;

	if (size < 1)
		return 0;
	room = LINES_ROOM + data[0];
	p = (const char *)data + 1;
	e = (const char *)data + size;
	end = body_ref(p, e, &want);
	/* room for the worst case, a dot and a CR per byte, and a step */
	ref = malloc(2 * size + 1);
	out = malloc(2 * size + 1 + room);
	CHECK(ref && out);
	n = wire_ref(p, e, ref);
	/* Each version this CPU and build run, through lines.h as the
	 * handler calls them; lines_use refuses the others. */
	for (k = 0; k < sizeof(versions) / sizeof(versions[0]); k++) {
		off_t got = 0;

		if (lines_use(versions[k]) < 0)
			continue;
		CHECK(!strcmp(lines_version(), versions[k]));
		CHECK(body_drive(p, e, &got) == end);
		CHECK(got == want);
		CHECK(wire_drive(p, e, out, room) == n);
		CHECK(!memcmp(out, ref, n));
	}
	free(ref);
	free(out);
	return 0;
}
