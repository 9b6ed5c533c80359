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

/* The next line start after the line at p, or NULL when it has no LF. */
static const char *next_line(const char *p, const char *e)
{
	const char *nl = memchr(p, '\n', e - p);

	return nl ? nl + 1 : NULL;
}

static int empty_line(const char *p, const char *e)
{
	return (e - p >= 1 && p[0] == '\n') ||
	    (e - p >= 2 && p[0] == '\r' && p[1] == '\n');
}

static off_t wire_size(const char *p, const char *nl)
{
	size_t len = nl - p;

	return len - (len && nl[-1] == '\r') + 2;
}

static int separator(const char *p, const char *e)
{
	const char *n;

	return empty_line(p, e) && (n = next_line(p, e)) && e - n >= 5 &&
	    !memcmp(n, "From ", 5);
}

/* The reference: the end of the body (a separator, or the start of the
 * first line without an LF) and the wire size of the lines before it. */
static const char *body_ref(const char *q, const char *e, off_t *size)
{
	const char *n;

	while (!separator(q, e) && (n = next_line(q, e))) {
		*size += wire_size(q, n - 1);
		q = n;
	}
	return q;
}

/* lines_body driven the way maildrop.c's scan drives it: after a stop that
 * is no separator, the caller takes a line itself, and any after an empty
 * one. Returns NULL if a stop breaks the contract in lines.h. */
static const char *body_drive(const char *q, const char *e, off_t *size)
{
	for (;;) {
		const char *r = lines_body(q, e, size), *n, *nl;

		if (r < q || r > e || (r > q && r[-1] != '\n'))
			return NULL;
		if (separator(r, e))
			return r;
		nl = memchr(r, '\n', e - r);
		if (nl && e - nl > LINES_SLACK)
			return NULL;
		do {
			if (!(n = next_line(r, e)))
				return r;
			*size += wire_size(r, n - 1);
			q = r;
			r = n;
		} while (empty_line(q, e) && !separator(r, e));
		if (separator(r, e))
			return r;
		q = r;
	}
}

/* The reference wire form of [p, e): each line dot-stuffed, LF and CR LF
 * as CR LF, a last line without an LF as it is. */
static size_t wire_ref(const char *p, const char *e, char *o)
{
	char *start = o;
	int bol = 1;

	for (; p < e; p++) {
		if (bol && *p == '.')
			*o++ = '.';
		bol = 0;
		if (*p == '\r' && e - p >= 2 && p[1] == '\n')
			continue;
		if (*p == '\n') {
			*o++ = '\r';
			bol = 1;
		}
		*o++ = *p;
	}
	return o - start;
}

/* lines_wire driven the way maildrop_send drives it, with room bytes of
 * output a call; after each stop the caller takes one step itself. Returns
 * the length written, or (size_t)-1 if a call broke its contract. */
static size_t wire_drive(const char *p, const char *e, char *out, size_t room)
{
	char *o = out;
	int bol = 1;

	while (p < e) {
		const char *start = p;
		char *before = o;

		p = lines_wire(p, e, &o, before + room, &bol);
		if (p < start || p > e || (size_t)(o - before) > room ||
		    (p > start && p < e && p[-1] == '\r' && *p == '\n'))
			return (size_t)-1;
		if (p == e)
			break;
		if (bol) {
			if (*p == '.')
				*o++ = '.';
			bol = 0;
		} else if (*p == '\r' && e - p >= 2 && p[1] == '\n') {
			memcpy(o, "\r\n", 2);
			o += 2;
			p += 2;
			bol = 1;
		} else if (*p == '\n') {
			memcpy(o, "\r\n", 2);
			o += 2;
			p++;
			bol = 1;
		} else
			*o++ = *p++;
	}
	return o - out;
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
