/*
 * A byte-at-a-time reference for lines.c's two loops, and drivers that call
 * them the way mbox.c and maildrop.c do, for tests/lines-check and
 * fuzz/fuzz-lines.
 */
#ifndef POP3_LINES_REF_H
#define POP3_LINES_REF_H

#include <sys/types.h>

/* The next line start after the line at p, or NULL when it has no LF. */
const char *next_line(const char *p, const char *e);

/* Whether the line at p is empty (LF or CR LF). */
int empty_line(const char *p, const char *e);

/* The wire size of the line from p to its LF at nl: CR LF for the end. */
off_t wire_size(const char *p, const char *nl);

/* Whether the line at p is empty and a From_ line follows it, in [p, e). */
int separator(const char *p, const char *e);

/* The reference: the end of the body at q (a separator, or the start of the
 * first line without an LF); adds the wire size of the lines before it. */
const char *body_ref(const char *q, const char *e, off_t *size);

/* lines_body driven the way mbox.c's scanner drives it; the same end and
 * size as body_ref, or NULL if a stop broke the contract in lines.h. */
const char *body_drive(const char *q, const char *e, off_t *size);

/* The reference wire form of [p, e) written at o; returns its length. */
size_t wire_ref(const char *p, const char *e, char *o);

/* lines_wire driven the way maildrop_send drives it, room bytes of output a
 * call; the length written, or (size_t)-1 if a call broke its contract. */
size_t wire_drive(const char *p, const char *e, char *out, size_t room);

#endif
