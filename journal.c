/*
 * The update journal (journal.h). It holds the new bytes of the mailbox from
 * start to new_end, behind its header. It is written whole, synced and
 * renamed into place before the mailbox is touched; from then on it alone
 * can finish the update, and it is removed only after the mailbox has been
 * rewritten and synced. DESIGN in README says why this is enough.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "mailfile.h"
#include "userstate.h"

static const char journal_magic[8] = "P3JRNL01";
static const char journal_name[] = "journal";
static const char journal_new[] = "journal.new";
/* A journal carried out, to remove once the client is gone (maildrop_tidy):
 * freeing its blocks took 30 ms for 178 MB. */
static const char journal_old[] = "journal.old";

uint64_t journal_check(const struct journal *j)
{
	return XXH3_64bits(j, offsetof(struct journal, check));
}

int journal_write(struct maildrop *md, struct journal *j,
    const struct range *r, size_t nr, char *buf)
{
	XXH3_state_t *h = XXH3_createState();
	struct chunk_sink sink = { h, NULL, -1, sizeof(*j) };
	off_t total = sizeof(*j);
	size_t i;
	int ret = -1, saved, renamed = 0;

	unlinkat(md->state, journal_new, 0);
	sink.fd = openat(md->state, journal_new, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sink.fd < 0 || !h || XXH3_64bits_reset(h) != XXH_OK)
		goto out;
	/* All the room at once: a full disk fails here, before any copying,
	 * and the blocks are found in one go rather than at writeback. */
	for (i = 0; i < nr; i++)
		total += r[i].len;
	if (fallocate(sink.fd, 0, 0, total) && errno != EOPNOTSUPP &&
	    errno != ENOSYS)
		goto out;
	for (i = 0; i < nr; i++)
		if (mailfile_pass(r[i].fd, r[i].off, r[i].off + r[i].len, buf,
		    &sink))
			goto out;
	memcpy(j->magic, journal_magic, sizeof(j->magic));
	j->data = XXH3_64bits_digest(h);
	j->check = journal_check(j);
	if (mailfile_write(sink.fd, (const char *)j, sizeof(*j), 0) ||
	    fsync(sink.fd) ||
	    renameat(md->state, journal_new, md->state, journal_name))
		goto out;
	renamed = 1;
	if (fsync(md->state))
		goto out;
	ret = 0;
out:
	saved = errno;
	if (sink.fd >= 0)
		close(sink.fd);
	/* Renamed into place but not known to be on the disk: the caller
	 * says nothing was deleted, so the next login must not carry it out. */
	if (ret && renamed && !unlinkat(md->state, journal_name, 0))
		fsync(md->state);
	else if (ret)
		unlinkat(md->state, journal_new, 0);
	XXH3_freeState(h);
	errno = saved;
	return ret;
}

/* The rename out of the way is not synced: a journal that comes back after
 * a power loss finds the mailbox already cut and is only removed again. */
int journal_apply(struct maildrop *md, const struct journal *j, char *buf)
{
	int fd = userstate_file(md->state, journal_name, O_RDONLY), ret = -1,
	    saved;
	struct chunk_sink sink = { NULL, NULL, md->fd, j->start };

	if (fd >= 0 && !mailfile_pass(fd, sizeof(*j), sizeof(*j) +
	    (j->new_end - j->start), buf, &sink) &&
	    !ftruncate(md->fd, j->new_end) && !fsync(md->fd) &&
	    !renameat(md->state, journal_name, md->state, journal_old)) {
		md->tidy = 1;
		ret = 0;
	}
	saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
	return ret;
}

/* Moves a journal that cannot be used out of the way, for the admin. */
static void journal_set_aside(struct maildrop *md, const char *why)
{
	char name[64];

	snprintf(name, sizeof(name), "journal.bad.%lld", (long long)time(NULL));
	renameat(md->state, journal_name, md->state, name);
	fsync(md->state);
	syslog(LOG_CRIT, "%s: update journal not used (%s); set aside as %s "
	    "in the state directory", md->path, why, name);
}

/*
 * The journal, fd, not cut yet (the old bytes past new_end still there): it
 * is carried out again, after taking in any mail appended since (the file
 * is st). Returns 0 or -1 (errno set); fd is closed either way.
 */
static int journal_redo(struct maildrop *md, struct journal *j, int fd,
    const struct stat *st, char *buf)
{
	int saved;

	if ((uint64_t)st->st_size > j->old_end) {
		struct range r[2] = {
			{ fd, sizeof(*j), j->new_end - j->start },
			{ md->fd, j->old_end, st->st_size - j->old_end }
		};

		j->new_end += st->st_size - j->old_end;
		j->old_end = st->st_size;
		if (mailfile_hash(md->fd, j->new_end, j->old_end, buf,
		    &j->tail) || journal_write(md, j, r, 2, buf)) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
	}
	close(fd);
	return journal_apply(md, j, buf);
}

/*
 * The journal tells where the update stopped: if the old bytes past new_end
 * are still there the file was not cut yet (journal_redo); otherwise only
 * the journal's removal was missing.
 */
int journal_recover(struct maildrop *md, char *buf, const char **err)
{
	struct journal j;
	struct stat st, js;
	uint64_t h;
	int fd;

	if (md->state < 0)
		return 0;
	unlinkat(md->state, journal_new, 0);	/* never renamed: never used */
	unlinkat(md->state, journal_old, 0);	/* done, and left by a crash */
	fd = userstate_file(md->state, journal_name, O_RDONLY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == EINVAL) {	/* a FIFO, a link: not one we wrote */
			journal_set_aside(md, "not a regular file of the "
			    "user's with one link");
			return 0;
		}
		syslog(LOG_ERR, "%s: update journal: %m", md->path);
		*err = "[SYS/TEMP] Cannot read the update journal";
		return -1;
	}
	if (mailfile_read(fd, (char *)&j, sizeof(j), 0) != sizeof(j) ||
	    memcmp(j.magic, journal_magic, sizeof(j.magic)) ||
	    j.check != journal_check(&j) || j.start > j.new_end ||
	    j.new_end > j.old_end || fstat(md->fd, &st))
		goto damaged;
	if (j.dev != (uint64_t)st.st_dev || j.ino != (uint64_t)st.st_ino)
		goto other;
	/* Its length bounded by the mailbox's before a byte is hashed:
	 * whichever side the update stopped at, the mailbox is at least
	 * new_end long. */
	if (j.new_end > (uint64_t)st.st_size)
		goto neither;
	if (fstat(fd, &js) ||
	    (uint64_t)js.st_size != sizeof(j) + j.new_end - j.start ||
	    mailfile_hash(fd, sizeof(j), js.st_size, buf, &h) || h != j.data)
		goto damaged;
	if (mailfile_hash(md->fd, 0, j.start, buf, &h) || h != j.prefix)
		goto other;
	if ((uint64_t)st.st_size >= j.old_end &&
	    !mailfile_hash(md->fd, j.new_end, j.old_end, buf, &h) &&
	    h == j.tail) {
		if (journal_redo(md, &j, fd, &st, buf))
			goto failed;
	} else if ((uint64_t)st.st_size >= j.new_end &&
	    !mailfile_hash(md->fd, j.start, j.new_end, buf, &h) && h == j.data) {
		close(fd);	/* cut and synced: only the removal was left */
		if (unlinkat(md->state, journal_name, 0) || fsync(md->state))
			goto failed;
	} else
		goto neither;
	syslog(LOG_NOTICE, "%s: finished an interrupted update", md->path);
	userstate_note_update(md->state, st.st_dev, st.st_ino, j.start);
	return 0;

damaged:
	close(fd);
	journal_set_aside(md, "damaged");
	*err = "[SYS/TEMP] An interrupted update needs the admin";
	return -1;
other:
	close(fd);
	journal_set_aside(md, "written for another or a changed file");
	return 0;
neither:
	close(fd);
	journal_set_aside(md, "the mailbox matches neither side of it");
	*err = "[SYS/TEMP] An interrupted update needs the admin";
	return -1;
failed:
	syslog(LOG_ERR, "%s: cannot finish an interrupted update: %m",
	    md->path);
	*err = "[SYS/TEMP] Cannot finish an interrupted update";
	return -1;
}

void maildrop_tidy(struct maildrop *md)
{
	if (md->tidy && md->state >= 0)
		unlinkat(md->state, journal_old, 0);
	md->tidy = 0;
}
