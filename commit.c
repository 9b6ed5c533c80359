/*
 * UPDATE (maildrop_commit): under the locks, and only if the file still
 * starts with exactly the bytes that were read, the kept messages from the
 * first deleted one on and any mail appended since are written to the
 * journal (journal.c), which is then carried out. A plan step works out what
 * to write; a write step writes it, with the signals that would stop it
 * half-way held back.
 */
#include <errno.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "commit.h"
#include "journal.h"
#include "mailfile.h"
#include "mbox.h"
#include "params.h"
#include "remap.h"
#include "userstate.h"

/*
 * Whether fd's file system stamps its files with this machine's clock: a
 * local one. On NFS or SMB the server's clock stamps them, which ours cannot
 * be compared with.
 */
static int local_times(int fd)
{
	struct statfs fs;

	if (fstatfs(fd, &fs))
		return 0;
	switch ((unsigned long)fs.f_type) {
	case EXT4_SUPER_MAGIC:		/* ext2, ext3 and ext4 */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case F2FS_SUPER_MAGIC:
	case TMPFS_MAGIC:
		return 1;
	}
	return 0;
}

/*
 * When the file's ctime is older than the clock by the time it has been
 * read, any later change of the file gives it another (the kernel stamps a
 * change with at least that clock), so an unchanged ctime proves the file
 * unchanged without reading it: at QUIT, and before each RETR and TOP
 * (maildrop_fresh). A ctime as new as the clock could hide a change in the
 * same tick, so under the locks, where nobody else changes the file, the
 * clock is let pass it first: a tick at most (4 ms), and only after a change
 * that recent. On a network file system the stamps come from another clock:
 * then QUIT reads and hashes it all, as it does whenever the times have
 * moved.
 */
void commit_note_read(struct maildrop *md)
{
	struct timespec now, tick = { 0, 1000000 };
	struct stat st;
	int waits = 0;

	md->quick = 0;
	if (fstat(md->fd, &st) || st.st_size < md->length)
		return;
	md->mtime = st.st_mtim;
	md->ctime = st.st_ctim;
	md->noted_size = st.st_size;
	if (!local_times(md->fd))
		return;
	while (!clock_gettime(CLOCK_REALTIME_COARSE, &now)) {
		md->quick = now.tv_sec > st.st_ctim.tv_sec ||
		    (now.tv_sec == st.st_ctim.tv_sec &&
		    now.tv_nsec > st.st_ctim.tv_nsec);
		if (md->quick || ++waits > CTIME_WAITS)
			break;
		nanosleep(&tick, NULL);
	}
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

int commit_times_same(const struct maildrop *md, const struct stat *st)
{
	return st->st_dev == md->dev && st->st_ino == md->ino &&
	    st->st_size == md->noted_size && same_time(&st->st_mtim,
	    &md->mtime) && same_time(&st->st_ctim, &md->ctime);
}

/* Whether st shows the file exactly as commit_note_read saw it, and that
 * proves its bytes the ones read. */
static int times_prove_same(const struct maildrop *md, const struct stat *st)
{
	return md->quick && commit_times_same(md, st);
}

/*
 * Whether the first md->length bytes are still the ones that were read (each
 * segment hashes as it did), the file the one that was opened; *prefix gets
 * the XXH3 of [0, start), from the same single pass over the file.
 */
static int hashes_prove_same(struct maildrop *md, char *buf, off_t start,
    uint64_t *prefix)
{
	XXH3_state_t *h = XXH3_createState(), *p = XXH3_createState();
	struct chunk_sink both = { h, p, -1, 0 }, seg = { h, NULL, -1, 0 };
	struct stat st;
	off_t off = 0;
	int i, same = 0;

	if (!h || !p || fstat(md->fd, &st) || st.st_size < md->length ||
	    !mailfile_at_path(md->path, md->fd) ||
	    XXH3_64bits_reset(p) != XXH_OK || md->segs < 1)
		goto out;
	for (i = 0; i < md->segs; i++) {
		off_t to = md->seg[i].end, mid = to < start ? to : start;

		if (to < off || to > md->length ||
		    XXH3_64bits_reset(h) != XXH_OK)
			goto out;
		if (off < mid && mailfile_pass(md->fd, off, mid, buf, &both))
			goto out;
		if (mailfile_pass(md->fd, off > mid ? off : mid, to, buf,
		    &seg) ||
		    XXH3_64bits_digest(h) != md->seg[i].digest)
			goto out;
		off = to;
	}
	*prefix = XXH3_64bits_digest(p);
	same = off == md->length;
out:
	XXH3_freeState(h);
	XXH3_freeState(p);
	return same;
}

/*
 * Whether the file still starts with the bytes that were read: by its times
 * where they prove it, else by its hashes. *prefix gets the XXH3 of
 * [0, start).
 */
static int starts_as_read(struct maildrop *md, char *buf, off_t start,
    uint64_t *prefix)
{
	struct stat st;

	if (!fstat(md->fd, &st) && times_prove_same(md, &st) &&
	    mailfile_at_path(md->path, md->fd))
		return !mailfile_hash(md->fd, 0, start, buf, prefix);
	return hashes_prove_same(md, buf, start, prefix);
}

/* What an UPDATE writes: the journal's header and the ranges of the file
 * that follow its start, with the buffers to write them with. */
struct update {
	struct journal j;
	struct range *r;
	size_t nr, first;	/* ranges; the first message deleted */
	char *buf;		/* MAILBOX_CHUNK bytes */
};

/* Counts the messages marked M_DELETED and makes room for the update of
 * the first one on. Returns the count (0: no update), or -1 with *err set. */
static long update_init(struct maildrop *md, struct update *u,
    const char **err)
{
	size_t i;
	long deleted = 0;

	memset(u, 0, sizeof(*u));
	u->first = md->count;
	for (i = 0; i < md->count; i++)
		if ((md->msg[i].flags & (M_DELETED | M_GONE)) == M_DELETED) {
			if (u->first == md->count)
				u->first = i;
			deleted++;
		}
	if (!deleted)
		return 0;
	u->buf = malloc(MAILBOX_CHUNK);
	u->r = calloc(md->count - u->first + 1, sizeof(*u->r));
	if (!u->buf || !u->r) {
		free(u->buf);
		free(u->r);
		*err = "[SYS/TEMP] Out of memory";
		return -1;
	}
	return deleted;
}

/* Where the kept bytes after message i end: at the next message still in
 * the file, or at md->length. */
static off_t next_from(const struct maildrop *md, size_t i)
{
	while (++i < md->count)
		if (!(md->msg[i].flags & M_GONE))
			return md->msg[i].from;
	return md->length;
}

/*
 * The plan, under the locks: the proof that the file starts as it was read,
 * and the ranges to keep from the first deleted message on, with the mail
 * appended since. Returns 0, 1 when the file is not as it was read (to
 * remap, and plan again), or -1 with *err set (logged).
 */
static int plan(struct maildrop *md, struct update *u, const char **err)
{
	struct journal *j = &u->j;
	struct stat st;
	size_t i;

	j->start = md->msg[u->first].from;
	if (!starts_as_read(md, u->buf, j->start, &j->prefix))
		return 1;
	if (fstat(md->fd, &st)) {
		syslog(LOG_ERR, "%s: UPDATE: fstat: %m", md->path);
		*err = "[SYS/TEMP] Update failed";
		return -1;
	}
	j->dev = st.st_dev;
	j->ino = st.st_ino;
	j->old_end = st.st_size;
	j->new_end = j->start;
	for (i = u->first; i <= md->count; i++) {
		off_t from = i < md->count ? md->msg[i].from : md->length;
		off_t to = i < md->count ? next_from(md, i) : st.st_size;
		struct range *last = u->nr ? &u->r[u->nr - 1] : NULL;

		if (to == from || (i < md->count &&
		    (md->msg[i].flags & (M_DELETED | M_GONE))))
			continue;
		if (last && last->off + last->len == from)
			last->len += to - from;
		else
			u->r[u->nr++] = (struct range){ md->fd, from, to - from };
		j->new_end += to - from;
	}
	return 0;
}

/*
 * After an UPDATE, under the locks: the cache of the file as it now is, so
 * that the next session does not scan it again (178 MB took 48 ms). Its
 * table is the old one without the messages removed, each later one moved
 * up by the bytes removed before it; its segments are the two hashes the
 * update made, of the bytes kept before the first deleted message and of
 * the journal's. Only where that is the table a full scan would make: no
 * mail appended since the read (its bytes are in the journal's hash), and
 * no X-UIDL value kept that gave way to one deleted (a scan would give it
 * back). The unique-ids are then made distinct again, as a scan makes them.
 */
static void cache_update(struct maildrop *md, const struct update *u)
{
	const struct journal *j = &u->j;
	struct maildrop next = *md;
	struct stat st;
	off_t moved = 0;
	size_t i, last = md->count;

	/* The old cache is of the old file: whatever follows, not to be
	 * trusted on cheap checks any more. */
	if (md->state >= 0)
		unlinkat(md->state, CACHE_FILE, 0);
	if ((off_t)j->old_end != md->length || fstat(md->fd, &st) ||
	    st.st_size != (off_t)j->new_end || j->new_end == 0)
		return;
	for (i = 0; i < md->count; i++)
		if (!(md->msg[i].flags & M_GONE)) {
			last = i;
			if (!(md->msg[i].flags & M_DELETED) &&
			    (md->msg[i].flags & M_DEMOTED))
				return;
		}
	if (!(next.msg = malloc((md->count ? md->count : 1) *
	    sizeof(*next.msg))))
		return;
	next.count = 0;
	for (i = 0; i < md->count; i++) {
		struct message *m = &next.msg[next.count];

		if (md->msg[i].flags & (M_DELETED | M_GONE)) {
			moved += next_from(md, i) - md->msg[i].from;
			continue;
		}
		*m = md->msg[i];
		m->from -= moved;
		m->data -= moved;
		m->end -= moved;
		m->flags &= ~(M_DELETED | M_RETRIEVED);
		next.count++;
	}
	next.alloc = md->count;
	next.length = md->length - moved;
	next.segs = 0;
	if (j->start > 0)
		next.seg[next.segs++] = (struct segment){ j->start, j->prefix };
	if (j->new_end > j->start)
		next.seg[next.segs++] = (struct segment){ j->new_end, j->data };
	if (!(md->msg[last].flags & M_DELETED))
		next.ends_at_boundary = md->ends_at_boundary;
	else
		next.ends_at_boundary = 1;	/* where a From_ line was */
	next.mtime = st.st_mtim;
	next.ctime = st.st_ctim;
	next.noted_size = st.st_size;
	mbox_number(&next);
	if (next.length == (off_t)j->new_end && !mbox_unique(&next))
		cache_write(&next, u->buf);
	md->state = next.state;	/* cache_write may have made it */
	free(next.msg);
}

/* Whether a signal held back during the rewrite will end the process as
 * soon as it is let through (SIGTERM, SIGHUP, SIGINT). */
static int ending_signal(void)
{
	sigset_t set;

	return !sigpending(&set) && (sigismember(&set, SIGTERM) == 1 ||
	    sigismember(&set, SIGHUP) == 1 || sigismember(&set, SIGINT) == 1);
}

/*
 * The write, with every signal held back: deleting only from the end needs
 * no journal, since cutting the file is one step; anything else goes
 * through the journal. Returns 0, or -1 with *err set (logged).
 */
static int write_update(struct maildrop *md, struct update *u,
    const char **err)
{
	struct journal *j = &u->j;
	sigset_t block, saved;
	int ret = 0;

	sigfillset(&block);
	sigprocmask(SIG_BLOCK, &block, &saved);
	if (j->new_end == j->start) {
		if (ftruncate(md->fd, j->start) || fsync(md->fd)) {
			syslog(LOG_ERR, "%s: UPDATE: cannot cut the file: %m",
			    md->path);
			*err = "[SYS/TEMP] Update failed";
			ret = -1;
		}
	} else if ((md->state < 0 && (!md->state_path ||
	    (md->state = userstate_open(md->state_path, md->uid, 1)) < 0)) ||
	    mailfile_hash(md->fd, j->new_end, j->old_end, u->buf, &j->tail) ||
	    journal_write(md, j, u->r, u->nr, u->buf)) {
		syslog(LOG_ERR, "%s: UPDATE: cannot write the journal: %s; "
		    "nothing deleted", md->path, md->state < 0 ?
		    "no state directory" : strerror(errno));
		*err = "[SYS/TEMP] Cannot write the update journal, "
		    "nothing deleted";
		ret = -1;
	} else if (journal_apply(md, j, u->buf)) {
		syslog(LOG_CRIT, "%s: UPDATE failed half-way: %m; the journal "
		    "will finish it at the next login", md->path);
		*err = "[SYS/TEMP] Update failed, it will be finished at the "
		    "next login";
		sigprocmask(SIG_SETMASK, &saved, NULL);
		return -1;
	}
	if (!ret && md->state >= 0)
		userstate_note_update(md->state, md->dev, md->ino,
		    j->start);
	if (!ret)
		cache_update(md, u);
	if (md->tidy && ending_signal())
		maildrop_tidy(md);	/* what the reply was to wait for */
	sigprocmask(SIG_SETMASK, &saved, NULL);
	return ret;
}

/*
 * Under the locks: the plan, and when the file is not as it was read (a
 * second session's QUIT, say), the table remapped onto it and the plan
 * made again, for whatever of ours is still there. Returns the messages to
 * delete (0: none left), or -1 with *err set.
 */
static long plan_remapped(struct maildrop *md, struct update *u,
    long deleted, const char **err)
{
	int r = plan(md, u, err);

	if (r == 1) {
		if (remap_locked(md, u->buf) < 0) {
			*err = "[SYS/TEMP] Mailbox changed by another "
			    "program, nothing deleted";
			return -1;
		}
		free(u->buf);
		free(u->r);
		if ((deleted = update_init(md, u, err)) <= 0)
			return deleted;
		if ((r = plan(md, u, err)) == 1) {
			syslog(LOG_ERR, "%s: UPDATE: changed again while it "
			    "was read; nothing deleted", md->path);
			*err = "[SYS/TEMP] Mailbox changed by another "
			    "program, nothing deleted";
			return -1;
		}
	}
	return r < 0 ? -1 : deleted;
}

long maildrop_commit(struct maildrop *md, const char **err)
{
	struct update u;
	long deleted = update_init(md, &u, err);

	if (deleted <= 0)
		return deleted;
	if (mailfile_lock(md)) {
		syslog(LOG_ERR, "%s: UPDATE: cannot lock: %m", md->path);
		*err = "[SYS/TEMP] Cannot lock the maildrop, nothing deleted";
		deleted = -1;
	} else {
		deleted = plan_remapped(md, &u, deleted, err);
		if (deleted > 0 && write_update(md, &u, err))
			deleted = -1;
		mailfile_unlock(md);
	}
	free(u.buf);
	free(u.r);
	return deleted;
}
