/*
 * The two loops that touch every byte of a mailbox: the scan of a message's
 * body at open, and the wire form of a message for RETR. Pure functions on
 * memory, with vector versions where the CPU has them (AVX2, AVX-512),
 * chosen at the first call; fuzz/fuzz-lines.c holds each version to a
 * byte-at-a-time reference.
 */
#ifndef POP3_LINES_H
#define POP3_LINES_H

#include <stddef.h>
#include <sys/types.h>

/* How close to e lines_body and lines_wire may stop short: the caller takes
 * the rest with its own code, or after reading on. */
#define LINES_SLACK	80

/* Room lines_wire needs before oe to take a step: a block of 32 that may
 * double, and the stores that shift it. */
#define LINES_ROOM	100

/*
 * Body lines from q, a line start whose previous line is not empty, towards
 * e. Skips whole lines, none of them an empty line (LF or CRLF alone) that a
 * From_ line follows, and returns the start of the first such empty line; or,
 * short of one, the start of a line that runs into the last LINES_SLACK bytes
 * before e (q itself, when that is the first line). Adds the wire size of the
 * lines skipped, each line end counted as CRLF, to *size.
 */
const char *lines_body(const char *q, const char *e, off_t *size);

/*
 * The wire form of the bytes from p on: CRLF line ends (a CR already before
 * the LF is not doubled) and a '.' before each line that starts with one. *bol
 * says whether p is a line start not yet dot-stuffed, and is updated; any CR
 * before p has been dealt with. Writes at *o, moving it on, while LINES_ROOM
 * bytes are left before oe and more than LINES_SLACK before e. Returns where
 * it stopped, which is never between a CR and the LF after it: what it wrote
 * is final.
 */
const char *lines_wire(const char *p, const char *e, char **o, const char *oe,
    int *bol);

/*
 * From now on lines_body and lines_wire use the versions named: "plain",
 * "avx2" or "avx512" (lines_wire has none of its own for AVX-512, and uses
 * AVX2's). Returns 0, or -1, changing nothing, when this build or CPU has no
 * such version. For tests (tests/lines-check.c): the handler never calls it.
 */
int lines_use(const char *name);

/* The name of the versions lines_body and lines_wire use now, as lines_use
 * takes it. For tests, which check that lines_use switched. */
const char *lines_version(void);

#endif
