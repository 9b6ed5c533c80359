/*
 * Holds every version of lines_body and lines_wire this CPU can run (plain,
 * AVX2, AVX-512) to a byte-at-a-time reference, on generated bodies with
 * every kind of line the loops treat apart: empty lines (LF, CR LF) with and
 * without a From_ line after them, lines starting with '.' or 'F', bare CRs,
 * long lines, and a last line without an LF. The handler uses only the best
 * version the CPU has, so the bats suite alone tests only that one.
 *
 * Prints a line for each version: "plain: ok (N bodies)", "avx2: skipped
 * (not on this CPU or build)", or "avx512: FAILED ..." with the body's seed
 * (or the version in use, when lines_use did not switch to it). Exits 1 if any version failed. An argument, if any, is the number of
 * bodies (default 5000).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lines.h"
#include "lines-ref.h"

static uint64_t rng;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng >> 32) % n;
}

static void put(char **o, const char *s)
{
	size_t n = strlen(s);

	memcpy(*o, s, n);
	*o += n;
}

/* A body of about up to max bytes from seed, at o; returns its length. */
static size_t gen(char *buf, size_t max, uint64_t seed)
{
	char *o = buf;

	rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	while ((size_t)(o - buf) + 300 < max) {
		const char *eol = rnd(3) ? "\n" : "\r\n";
		unsigned k, n;

		switch (rnd(10)) {
		case 0:	/* the empty line that ends a message */
			put(&o, eol);
			put(&o, "From a@b Tue Dec  1 21:00:00 2026\n");
			break;
		case 1:	/* an empty line, no From_ after it */
			put(&o, eol);
			break;
		case 2:
			put(&o, rnd(2) ? "From no separator\n" : "Fro\n");
			break;
		case 3:
			put(&o, rnd(2) ? "." : "..");
			/* FALLTHROUGH */
		default:
			n = rnd(8) ? rnd(90) : rnd(250);
			for (k = 0; k < n; k++)
				*o++ = rnd(30) ? (char)('a' + rnd(26)) :
				    "\r.F "[rnd(4)];
			put(&o, eol);
		}
	}
	if (rnd(2))	/* a last line without an LF */
		put(&o, rnd(2) ? "no end" : ".x\r");
	return o - buf;
}

/* Runs the version in use on bodies 1..count; 0, or -1 after saying why. */
static int check(const char *name, unsigned count)
{
	static const size_t rooms[] = { LINES_ROOM, LINES_ROOM + 37, 1000,
	    1 << 16 };
	enum { MAX = 8192 };
	static char buf[MAX], ref[2 * MAX], out[2 * MAX + (1 << 16)];
	unsigned s;

	for (s = 1; s <= count; s++) {
		size_t len = gen(buf, 300 + s * 2654435761u % (MAX - 300), s),
		    n, got, room;
		const char *e = buf + len, *q, *want, *end;
		off_t want_size = 0, size = 0;

		/* the scan from each message's first body line on */
		for (q = buf; q; q = next_line(next_line(end, e), e)) {
			want_size = size = 0;
			want = body_ref(q, e, &want_size);
			end = body_drive(q, e, &size);
			if (end != want || size != want_size) {
				printf("%s: FAILED lines_body, body %u at %zu: "
				    "stop %ld (want %ld), size %lld (want "
				    "%lld)\n", name, s, (size_t)(q - buf),
				    end ? (long)(end - buf) : -1L,
				    (long)(want - buf), (long long)size,
				    (long long)want_size);
				return -1;
			}
			if (!separator(end, e))
				break;
		}
		room = rooms[s % 4];
		n = wire_ref(buf, e, ref);
		got = wire_drive(buf, e, out, room);
		if (got != n || memcmp(out, ref, n)) {
			size_t k = 0;

			if (got != (size_t)-1)
				while (k < n && k < got && out[k] == ref[k])
					k++;
			printf("%s: FAILED lines_wire, body %u, room %zu: "
			    "%zd bytes (want %zu), first difference at %zu\n",
			    name, s, room, (ssize_t)got, n, k);
			return -1;
		}
	}
	printf("%s: ok (%u bodies)\n", name, count);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "plain", "avx2", "avx512" };
	unsigned count = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) :
	    5000;
	int k, failed = 0;

	for (k = 0; k < 3; k++) {
		if (lines_use(names[k]) < 0)
			printf("%s: skipped (not on this CPU or build)\n",
			    names[k]);
		else if (strcmp(lines_version(), names[k])) {
			printf("%s: FAILED lines_use left %s in use\n",
			    names[k], lines_version());
			failed = 1;
		} else if (check(names[k], count) < 0)
			failed = 1;
	}
	return failed;
}
