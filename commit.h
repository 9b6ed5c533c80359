/*
 * UPDATE (commit.c): the proof that the mailbox is still the file that was
 * read, and its rewrite through the journal. maildrop_commit is declared
 * in maildrop.h.
 */
#ifndef POP3_COMMIT_H
#define POP3_COMMIT_H

#include <sys/stat.h>

#include "maildrop.h"

/* Notes the file's size and times once the table has been read, under the
 * locks: what lets maildrop_commit and maildrop_fresh prove it unchanged
 * without reading it. */
void commit_note_read(struct maildrop *md);

/* Whether st (of md->fd) shows the file as commit_note_read noted it: the
 * same file, size and times. 1 or 0. A proof only where md->quick. */
int commit_times_same(const struct maildrop *md, const struct stat *st);

#endif
