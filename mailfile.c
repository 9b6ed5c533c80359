/*
 * The mailbox file's system calls (mailfile.h): the locks that the open and
 * the commit take, the reads and writes that keep a shared dotlock fresh,
 * and the chunked pass that the commit hashes and copies with.
 */
#include <errno.h>
#include <fcntl.h>
#include <lockfile.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "dotlock.h"
#include "mailfile.h"
#include "params.h"

/* Sleeps a tenth of a second between lock attempts. */
static void lock_pause(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static char *lock_name(const char *path)
{
	size_t len = strlen(path);
	char *name = malloc(len + sizeof(".lock"));

	if (name) {
		memcpy(name, path, len);
		memcpy(name + len, ".lock", sizeof(".lock"));
	}
	return name;
}

static int fcntl_lock(int fd, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_SETLK, &fl);
}

/* Takes the fcntl lock, retrying until the deadline. Returns 0, or -1 with
 * errno set (EAGAIN: still held by someone else at the deadline). */
static int fcntl_wait(int fd, short type, time_t deadline)
{
	while (fcntl_lock(fd, type)) {
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			return -1;
		if (time(NULL) >= deadline) {
			errno = EAGAIN;
			return -1;
		}
		lock_pause();
	}
	return 0;
}

void mailfile_unlock(struct maildrop *md)
{
	char *name = lock_name(md->path);

	if (!name || dotlock_remove(name))
		syslog(LOG_ERR, "%s.lock: cannot remove: %m", md->path);
	free(name);
	fcntl_lock(md->fd, F_UNLCK);
}

/*
 * An fcntl lock on the file, then the dotlock, which liblockfile creates
 * through its setgid helper where the spool directory is not ours to write.
 */
int mailfile_read_lock(int fd)
{
	return fcntl_wait(fd, F_RDLCK, time(NULL) + LOCK_TIMEOUT);
}

int mailfile_lock(struct maildrop *md)
{
	time_t deadline = time(NULL) + LOCK_TIMEOUT;
	char *name;
	int status;

	if (fcntl_wait(md->fd, F_WRLCK, deadline))
		return -1;
	if (!(name = lock_name(md->path)))
		goto fail;
	while ((status = dotlock_create(name)) != L_SUCCESS) {
		if (status != L_MAXTRYS) {
			syslog(LOG_ERR, "%s: cannot create the dotlock "
			    "(liblockfile status %d): %m", name, status);
			errno = EPERM;
			goto fail;
		}
		/*
		 * Busy. A program that takes the dotlock first and then
		 * waits for fcntl (procmail) would wait for us while we wait
		 * for it: let go of fcntl while we wait, and take both again.
		 */
		fcntl_lock(md->fd, F_UNLCK);
		if (time(NULL) >= deadline) {
			errno = EAGAIN;
			free(name);
			return -1;
		}
		lock_pause();
		if (fcntl_wait(md->fd, F_WRLCK, deadline)) {
			free(name);
			return -1;
		}
	}
	free(name);
	return 0;

fail:
	status = errno;
	free(name);
	fcntl_lock(md->fd, F_UNLCK);
	errno = status;
	return -1;
}

int mailfile_at_path(const char *path, int fd)
{
	struct stat a, b;

	return !stat(path, &a) && !fstat(fd, &b) &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

ssize_t mailfile_read(int fd, char *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n;

	dotlock_refresh();	/* a long read or rewrite under a shared lock */
	while (done < len) {
		n = pread(fd, buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

int mailfile_write(int fd, const char *buf, size_t len, off_t off)
{
	ssize_t n;

	dotlock_refresh();
	while (len) {
		n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

/*
 * The one loop over a stretch of a file: hashing it (the proof at QUIT, the
 * journal's checks) and copying it (into the journal, and the journal over
 * the mailbox). The writeback of what it writes starts every
 * WRITEBACK_CHUNK bytes, so that the fsync to come finds most of them on
 * their way: writing and syncing 178 MB took 76 ms at once, 48 ms this way.
 */
int mailfile_pass(int fd, off_t from, off_t to, char *buf,
    struct chunk_sink *sink)
{
	off_t started = sink->off;

	while (from < to) {
		size_t want = to - from < MAILBOX_CHUNK ?
		    (size_t)(to - from) : MAILBOX_CHUNK;
		ssize_t n = mailfile_read(fd, buf, want, from);

		if (n < 0 || (size_t)n != want) {
			if (n >= 0)
				errno = EIO;
			return -1;
		}
		if (sink->hash)
			XXH3_64bits_update(sink->hash, buf, n);
		if (sink->hash2)
			XXH3_64bits_update(sink->hash2, buf, n);
		from += n;
		if (sink->fd < 0)
			continue;
		if (mailfile_write(sink->fd, buf, n, sink->off))
			return -1;
		sink->off += n;
		if (sink->off - started >= WRITEBACK_CHUNK || from == to) {
			sync_file_range(sink->fd, started, sink->off - started,
			    SYNC_FILE_RANGE_WRITE);
			started = sink->off;
		}
	}
	return 0;
}

int mailfile_hash(int fd, off_t from, off_t to, char *buf, uint64_t *out)
{
	XXH3_state_t *h = XXH3_createState();
	struct chunk_sink sink = { h, NULL, -1, 0 };
	int ret = -1;

	if (h && XXH3_64bits_reset(h) == XXH_OK &&
	    !mailfile_pass(fd, from, to, buf, &sink)) {
		*out = XXH3_64bits_digest(h);
		ret = 0;
	}
	XXH3_freeState(h);
	return ret;
}
