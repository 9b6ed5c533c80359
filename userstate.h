/*
 * The per-user state directory (-D) beyond the update journal: the session
 * lock for one session per maildrop, and the last-login record for
 * LOGIN-DELAY. Used as the user, after privileges are dropped.
 */
#ifndef POP3_USERSTATE_H
#define POP3_USERSTATE_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Opens the state directory path, with create making it (mode 700) if
 * missing. It must be a directory owned by uid and writable by no one else.
 * Returns its descriptor, or -1 with the reason logged (quietly for a
 * missing one that was not to be made). */
int userstate_open(const char *path, uid_t uid, int create);

/* Opens the file name in the state directory dir with flags (O_RDONLY,
 * O_WRONLY, O_RDWR, O_CREAT: mode 600), never following a symlink or waiting
 * on a FIFO or device. It must be a regular file with one link, owned by
 * dir's owner. Returns a blocking descriptor, or -1 with errno set (EINVAL:
 * not such a file), nothing logged and nothing truncated. */
int userstate_file(int dir, const char *name, int flags);

/* Takes the session lock: an open-file-description write lock on
 * SESSION_LOCK in dir, held through the returned descriptor until it is
 * closed or the process ends (so a dead session's lock is gone at once).
 * Returns the descriptor, -2 when another session holds the lock, or -1
 * with the reason logged. */
int userstate_lock(int dir);

/* LOGIN-DELAY: the seconds still to wait, rounded up, when the last login
 * recorded in dir (LAST_LOGIN's mtime, to the nanosecond) was less than delay
 * seconds before now (CLOCK_REALTIME); else 0, after recording now as the
 * last login. Returns -1 with the reason logged when the record can't be
 * read or written. */
long userstate_login_delay(int dir, unsigned delay,
    const struct timespec *now);

/* The UIDVALIDITY recorded in dir (UIDVALIDITY_FILE), or 0 when there is
 * none or it is not a decimal number from 1 to 2^32 - 1. Logs nothing. */
uint32_t userstate_validity(int dir);

/* Records v as the UIDVALIDITY in dir, through a new file renamed into
 * place. Returns 0, or -1 with the reason logged. */
int userstate_set_validity(int dir, uint32_t v);

/* Notes that an UPDATE of the mailbox (dev, ino) just rewrote it from
 * offset start on (UPDATES_FILE, with the time; renamed into place, not
 * synced: it is a hint). A failure is logged and costs only a remap's
 * certainty; where the earlier ones cannot be read, it is noted as from 0. */
void userstate_note_update(int dir, dev_t dev, ino_t ino, off_t start);

/* The lowest offset that an UPDATE of the mailbox (dev, ino) noted after
 * the time after rewrote it from: 1 with *from set (0 when more were made
 * since than are kept, or when the file cannot be read), or 0 when none
 * was noted. Logs nothing. */
int userstate_rewritten_from(int dir, dev_t dev, ino_t ino,
    const struct timespec *after, off_t *from);

#endif
