/*
 * The mailbox file's system calls, for maildrop.c, cache.c, commit.c and
 * journal.c: the mail locks, full reads and writes, and the one loop that
 * reads a stretch of a file in chunks to hash or copy it.
 */
#ifndef POP3_MAILFILE_H
#define POP3_MAILFILE_H

#include <sys/types.h>

#include "maildrop.h"
#include "xxh3.h"

/* Takes the fcntl lock on md->fd and the dotlock md->path.lock (Debian
 * Policy 11.6), retrying both for LOCK_TIMEOUT seconds. Returns 0, or -1
 * with errno set (EAGAIN: somebody else holds a lock) and neither held. */
int mailfile_lock(struct maildrop *md);

/* Takes a read (shared) fcntl lock on fd, retrying for LOCK_TIMEOUT
 * seconds, and no dotlock. Returns 0, or -1 with errno set (EAGAIN). The
 * lock goes with the descriptor's close. */
int mailfile_read_lock(int fd);

/* Lets go of both locks; a dotlock that cannot be removed is logged. */
void mailfile_unlock(struct maildrop *md);

/* Whether path still names the file open on fd (not renamed over): 1 or 0. */
int mailfile_at_path(const char *path, int fd);

/* pread(2) of len bytes at off, retried after signals and short reads.
 * Returns the bytes read (fewer only at EOF), or -1 with errno set. */
ssize_t mailfile_read(int fd, char *buf, size_t len, off_t off);

/* pwrite(2) of all len bytes at off. Returns 0, or -1 with errno set. */
int mailfile_write(int fd, const char *buf, size_t len, off_t off);

/* Where mailfile_pass puts the bytes it reads: into each hash that is not
 * NULL, and to fd from off on unless fd is -1. */
struct chunk_sink {
	XXH3_state_t *hash, *hash2;
	int fd;
	off_t off;
};

/* Reads [from, to) of fd, MAILBOX_CHUNK bytes at a time into buf, and puts
 * each chunk into sink, whose off moves on; a write starts its writeback
 * every WRITEBACK_CHUNK bytes and at the end. Returns 0, or -1 with errno
 * set (EIO: the file ends before to). */
int mailfile_pass(int fd, off_t from, off_t to, char *buf,
    struct chunk_sink *sink);

/* The XXH3 of [from, to) of fd into *out. Returns 0, or -1 (errno set). */
int mailfile_hash(int fd, off_t from, off_t to, char *buf, uint64_t *out);

#endif
