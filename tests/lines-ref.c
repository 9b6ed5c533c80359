/*
 * The reference and the drivers of lines-ref.h (see there).
 */
#include <string.h>

#include "../lines.h"
#include "lines-ref.h"

/* The next line start after the line at p, or NULL when it has no LF. */
const char *next_line(const char *p, const char *e)
{
	const char *nl = memchr(p, '\n', e - p);

	return nl ? nl + 1 : NULL;
}

int empty_line(const char *p, const char *e)
{
	return (e - p >= 1 && p[0] == '\n') ||
	    (e - p >= 2 && p[0] == '\r' && p[1] == '\n');
}

off_t wire_size(const char *p, const char *nl)
{
	size_t len = nl - p;

	return len - (len && nl[-1] == '\r') + 2;
}

int separator(const char *p, const char *e)
{
	const char *n;

	return empty_line(p, e) && (n = next_line(p, e)) && e - n >= 5 &&
	    !memcmp(n, "From ", 5);
}

/* The reference: the end of the body (a separator, or the start of the
 * first line without an LF) and the wire size of the lines before it. */
const char *body_ref(const char *q, const char *e, off_t *size)
{
	const char *n;

	while (!separator(q, e) && (n = next_line(q, e))) {
		*size += wire_size(q, n - 1);
		q = n;
	}
	return q;
}

/* lines_body driven the way mbox.c's scanner drives it: after a stop that
 * is no separator, the caller takes a line itself, and any after an empty
 * one. Returns NULL if a stop breaks the contract in lines.h. */
const char *body_drive(const char *q, const char *e, off_t *size)
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
size_t wire_ref(const char *p, const char *e, char *o)
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
size_t wire_drive(const char *p, const char *e, char *out, size_t room)
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
