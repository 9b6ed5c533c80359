/*
 * UPDATE (commit.c): the proof that the mailbox is still the file that was
 * read, and its rewrite through the journal. maildrop_commit is declared
 * in maildrop.h.
 */
#ifndef POP3_COMMIT_H
#define POP3_COMMIT_H

#include "maildrop.h"

/* Notes the file's times once the table has been read, under the locks:
 * what lets maildrop_commit prove it unchanged without reading it. */
void commit_note_read(struct maildrop *md);

#endif
