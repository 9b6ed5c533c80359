/*
 * Remapping the message table onto a mailbox that another session or
 * program rewrote during the session (remap.c); maildrop_fresh is declared
 * in maildrop.h.
 */
#ifndef POP3_REMAP_H
#define POP3_REMAP_H

#include <sys/types.h>

#include "maildrop.h"

/* With the locks held: finishes an update a crash cut short, reads the file
 * again and remaps md's table onto it (maildrop_fresh says how), its size
 * and times noted anew. buf: MAILBOX_CHUNK bytes of scratch. Returns 1, or
 * -1 (logged) with the table as it was. */
int remap_locked(struct maildrop *md, char *buf);

/* Scans md->fd from offset from (0, or md->length) to its end into md's
 * table, through md->rbuf (maildrop.c). Returns 0, or -1 with errno set
 * (EINVAL: not an mbox). */
int maildrop_scan(struct maildrop *md, off_t from);

#endif
