/*
 * The update journal, "journal" in the state directory: the new bytes of
 * the mailbox from the update's start on, written whole and synced before
 * the mailbox is touched, so that a kill at any instant loses nothing.
 */
#ifndef POP3_JOURNAL_H
#define POP3_JOURNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "maildrop.h"

/* The journal's header, which its new bytes follow. Here for commit.c,
 * which fills it in, and fuzz/fuzz-journal.c, which forges journals. */
struct journal {
	char magic[8];
	uint64_t dev, ino;		/* the mailbox */
	uint64_t start, old_end, new_end;
	uint64_t prefix;		/* XXH3 of the mailbox's [0, start) */
	uint64_t tail;			/* XXH3 of the old [new_end, old_end) */
	uint64_t data;			/* XXH3 of the new bytes */
	uint64_t check;			/* XXH3 of all the above */
};

/* A stretch of a file that goes into the journal. */
struct range {
	int fd;
	off_t off, len;
};

/* The XXH3 of j's fields before check. */
uint64_t journal_check(const struct journal *j);

/* Writes j (all but magic, data and check filled in) and the nr ranges
 * after it as the journal of md->state, synced and renamed into place.
 * Returns 0, or -1 (errno set) with no journal left behind. buf:
 * MAILBOX_CHUNK bytes of scratch. */
int journal_write(struct maildrop *md, struct journal *j,
    const struct range *r, size_t nr, char *buf);

/* Carries out the journal j just written: its bytes over md->fd from start,
 * the file cut at new_end and synced, the journal set to be removed by
 * maildrop_tidy. Returns 0, or -1 (errno set) with the journal still in
 * place to finish the update at the next open. */
int journal_apply(struct maildrop *md, const struct journal *j, char *buf);

/* At open, under the locks: finishes an update that a crash cut short, or
 * sets a journal that does not fit aside for the admin (logged). Returns 0,
 * or -1 with *err set ("[SYS/TEMP] ...") when the maildrop must not be
 * served. */
int journal_recover(struct maildrop *md, char *buf, const char **err);

#endif
