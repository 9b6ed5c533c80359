/*
 * The mbox scanner and the unique-ids: pure functions on memory, as lines.c
 * is. The caller reads the file and feeds the scanner its bytes; the
 * scanner appends message table entries to a struct maildrop and touches
 * no file.
 */
#ifndef POP3_MBOX_H
#define POP3_MBOX_H

#include <sys/types.h>

#include "maildrop.h"

struct mbox_scan;

/* Starts a scan of the bytes from file offset from on: 0 for the whole file
 * (md's table empty), or the end of what md's table already holds (a
 * message boundary, md->length). Returns the scanner, or NULL (ENOMEM). */
struct mbox_scan *mbox_start(struct maildrop *md, off_t from);

/*
 * Takes the bytes buf[0, have), which follow what the scanner took so far:
 * every whole line, and with eof (nothing follows them) the rest; a buffer
 * that is full (have == room) without a newline is taken as a piece of a
 * longer line. Returns the bytes taken, which the caller drops from the
 * front of buf before it reads on, or -1 with errno set (EINVAL: not an mbox,
 * or no From_ line at from; ENOMEM); md's table holds what was taken so far.
 */
ssize_t mbox_feed(struct mbox_scan *s, const char *buf, size_t have,
    size_t room, int eof);

/* After the feed with eof: closes the last message, adds the bytes taken as
 * a segment to md->seg (the caller leaves room for it), and sets md->length
 * and md->ends_at_boundary. Frees s. Returns 0, or -1 (ENOMEM). */
int mbox_end(struct mbox_scan *s);

/* Frees a scan given up (NULL is fine); errno is kept. */
void mbox_free(struct mbox_scan *s);

/* Numbers the messages of a complete table: md->first and md->visible. */
void mbox_number(struct maildrop *md);

/* Makes every listed unique-id distinct, in file order (uidl.c says how).
 * Returns 0, or -1 (ENOMEM) with the ids as they were. */
int mbox_unique(struct maildrop *md);

/* Which table the scanner makes for kind: kinds that make the same one
 * (dovecot, uw) give the same number, which the cache records. */
int mbox_table(enum uidl_kind kind);

/* Whether md's table (read from a cache) is one the scanner could have made
 * of md->length bytes: 1 or 0. */
int mbox_sane(const struct maildrop *md);

#endif
