/*
 * The mailbox's dotlock (Debian Policy 11.6), through liblockfile. Where the
 * spool directory is writable only by its group (Debian's /var/mail: root:mail
 * 2775), liblockfile runs its setgid helper for every lock and unlock; started
 * as root, we instead keep a small process with just that group to do it
 * (its own program: keeper.c).
 */
#ifndef POP3_DOTLOCK_H
#define POP3_DOTLOCK_H

#include <sys/types.h>

/* How a stale dotlock is told (-F): by the spool's file system (statfs), as
 * on a local one (by the pid in it), or as on a shared one (by its age). */
enum dotlock_share { DOTLOCK_DETECT, DOTLOCK_LOCAL, DOTLOCK_SHARED };

/* Sets how, for every lock made from then on, before dotlock_keeper. */
void dotlock_set_share(enum dotlock_share how);

/* As root, before PAM and the pre-auth child: opens the keeper's own
 * program, KEEPER_NAME beside us, for dotlock_keeper to run; where that is
 * not there or not root's alone, forks the keeper, a copy of the process
 * while it is still small, to wait for dotlock_keeper. Returns 0 (also when
 * not root: no keeper), or -1 (logged). */
int dotlock_standby(void);

/* The keeper's own program, which dotlock_standby runs from beside ours,
 * and the descriptor of its socket there. */
#define KEEPER_NAME "pop3-handler-keeper"
#define KEEPER_FD 3

/* The keeper, in the forked copy or in its own program: waits on fd for
 * dotlock_keeper's order, then makes and removes the one lock on request;
 * EOF ends it. Does not return. */
void dotlock_serve(int fd) __attribute__((noreturn));

/* In a child that is not to reach the keeper (the pre-auth one): closes our
 * end of its socket, or its program. */
void dotlock_forget(void);

/* As root, before the drop to uid: if only the group that liblockfile's
 * helper runs as may make locks next to the mailbox at path, starts the
 * keeper's program (or takes the copy waiting) and tells it to become uid
 * with that group, for path's dotlock; else lets it go. Returns 1 when it
 * runs, 0 when it is not needed (or there is none), -1 when it could not
 * start (logged): liblockfile's own helper serves then. */
int dotlock_keeper(const char *path, uid_t uid);

/* Creates the dotlock name (retrying only as lockfile_create does for 0
 * retries), through the keeper when it runs. Returns liblockfile's status
 * (L_SUCCESS, L_MAXTRYS when another holds it, ...) with errno set on a
 * failure. */
int dotlock_create(const char *name);

/* While a lock without a pid (shared spool) is held by this process, touches
 * it if DOTLOCK_TOUCH seconds have passed since it was made or touched, so
 * that nobody takes it as stale; otherwise returns at once. Cheap enough for
 * every read and write of the mailbox. */
void dotlock_refresh(void);

/* Removes the dotlock name. Returns 0, or -1 with errno set. */
int dotlock_remove(const char *name);

/* Ends the keeper, if one runs, and waits for one that was given a lock
 * to keep: it removes the lock if it still holds it. */
void dotlock_done(void);

#endif
