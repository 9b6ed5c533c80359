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

#include "../lines.c"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-lines: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

typedef const char *(*body_fn)(const char *, const char *, off_t *);
typedef const char *(*wire_fn)(const char *, const char *, char **,
    const char *, int *);

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

/* Whether the line at p is empty and a From_ line follows it, in [p, e). */
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

static const char *body_drive(body_fn f, const char *q, const char *e,
    off_t *size)
{
	for (;;) {
		const char *r = f(q, e, size), *n, *nl;

		CHECK(r >= q && r <= e);
		CHECK(r == q || r[-1] == '\n');
		if (separator(r, e))
			return r;
		nl = memchr(r, '\n', e - r);
		CHECK(!nl || e - nl <= LINES_SLACK);
		/* the caller's own loop: this line, and any after an empty one */
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
			continue;	/* the LF writes the pair */
		if (*p == '\n') {
			*o++ = '\r';
			bol = 1;
		}
		*o++ = *p;
	}
	return o - start;
}

static size_t wire_drive(wire_fn f, const char *p, const char *e, char *out,
    size_t room)
{
	char *o = out;
	int bol = 1;

	while (p < e) {
		const char *start = p;
		char *before = o;

		p = f(p, e, &o, before + room, &bol);
		CHECK(p >= start && p <= e);
		CHECK((size_t)(o - before) <= room);
		CHECK(p == start || p == e || p[-1] != '\r' || *p != '\n');
		if (p == e)
			break;
		/* the caller's own step */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		body_fn f;
		int level;	/* vector_level() it needs */
	} bodies[] = {
		{ body_plain, 0 },
#ifdef LINES_AVX2
		{ body_avx2, 1 },
		{ body_avx512, 2 },
#endif
	};
	static const struct {
		wire_fn f;
		int level;
	} wires[] = {
		{ wire_plain, 0 },
#ifdef LINES_AVX2
		{ wire_avx2, 1 },
#endif
	};
	const char *p, *e, *end;
	char *ref, *out;
	size_t room, n, k;
	off_t want = 0;
#ifdef LINES_AVX2
	int level = vector_level();
#else
	int level = 0;
#endif

	if (size < 1)
		return 0;
	room = LINES_ROOM + data[0];
	p = (const char *)data + 1;
	e = (const char *)data + size;
	end = body_ref(p, e, &want);
	for (k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
		off_t got = 0;

		if (bodies[k].level > level)
			continue;
		CHECK(body_drive(bodies[k].f, p, e, &got) == end);
		CHECK(got == want);
	}
	/* room for the worst case, a dot and a CR per byte, and a step */
	ref = malloc(2 * size + 1);
	out = malloc(2 * size + 1 + room);
	CHECK(ref && out);
	n = wire_ref(p, e, ref);
	for (k = 0; k < sizeof(wires) / sizeof(wires[0]); k++) {
		if (wires[k].level > level)
			continue;
		CHECK(wire_drive(wires[k].f, p, e, out, room) == n);
		CHECK(!memcmp(out, ref, n));
	}
	free(ref);
	free(out);
	return 0;
}
