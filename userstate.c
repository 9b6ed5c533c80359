/*
 * The session lock, the last-login record and the saved UIDVALIDITY, in the user's state
 * directory. Both are files the handler makes itself, as the user, and
 * opens as it opens every state file (userstate_file): without following a
 * link or waiting on a FIFO, and only if regular, the user's, one link.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "params.h"
#include "userstate.h"

int userstate_open(const char *path, uid_t uid, int create)
{
	struct stat st;
	int fd;

	if (!create && access(path, F_OK) && errno == ENOENT)
		return -1;
	if (create && mkdir(path, 0700) && errno != EEXIST) {
		syslog(LOG_ERR, "%s: cannot make the state directory: %m",
		    path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		syslog(LOG_ERR, "%s: state directory: %m", path);
		return -1;
	}
	if (fstat(fd, &st) || st.st_uid != uid || (st.st_mode & 022)) {
		syslog(LOG_ERR, "%s: refused as state directory: not owned by "
		    "uid %lu, or writable by others", path, (unsigned long)uid);
		close(fd);
		return -1;
	}
	return fd;
}

int userstate_file(int dir, const char *name, int flags)
{
	struct stat st, ds;
	int fd = openat(dir, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC, 0600), saved;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || fstat(dir, &ds))
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_uid != ds.st_uid ||
	    st.st_nlink != 1) {
		errno = EINVAL;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
		return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* A state file of ours in dir, made if missing. */
static int state_file(int dir, const char *name, int flags)
{
	int fd = userstate_file(dir, name, flags | O_CREAT);

	if (fd < 0)
		syslog(LOG_ERR, "state file %s: %s", name, errno == EINVAL ?
		    "not a regular file of the user's with one link" :
		    strerror(errno));
	return fd;
}

int userstate_lock(int dir)
{
	struct flock fl;
	int fd = state_file(dir, SESSION_LOCK, O_RDWR);

	if (fd < 0)
		return -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return fd;
	if (errno == EAGAIN || errno == EACCES) {
		close(fd);
		return -2;
	}
	syslog(LOG_ERR, "session lock: %m");
	close(fd);
	return -1;
}

long userstate_login_delay(int dir, unsigned delay, const struct timespec *now)
{
	struct stat st;
	long long ago, left;
	int fd = state_file(dir, LAST_LOGIN, O_WRONLY);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st)) {
		syslog(LOG_ERR, "state file " LAST_LOGIN ": %m");
		close(fd);
		return -1;
	}
	/* A new file (size 0, never stamped) or a stamp in the future (the
	 * clock was set back) does not hold the user off. In nanoseconds, as
	 * futimens stamps it: counted in whole seconds, a login 1.1 s after
	 * one at x.9 s would pass a 2 s delay. */
	ago = (now->tv_sec - st.st_mtim.tv_sec) * 1000000000LL +
	    (now->tv_nsec - st.st_mtim.tv_nsec);
	left = delay * 1000000000LL - ago;
	if (st.st_size > 0 && ago >= 0 && left > 0) {
		close(fd);
		return (long)((left + 999999999) / 1000000000);
	}
	if (ftruncate(fd, 0) || write(fd, "\n", 1) != 1 ||
	    futimens(fd, NULL)) {
		syslog(LOG_ERR, "state file " LAST_LOGIN ": %m");
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

uint32_t userstate_validity(int dir)
{
	char buf[16], *end;
	unsigned long long v;
	ssize_t n;
	int fd = userstate_file(dir, UIDVALIDITY_FILE, O_RDONLY);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || (*end && strcmp(end, "\n")) || v > UINT32_MAX)
		return 0;
	return v;
}

int userstate_set_validity(int dir, uint32_t v)
{
	static const char tmp[] = UIDVALIDITY_FILE ".new";
	char buf[16];
	int fd, len = snprintf(buf, sizeof(buf), "%lu\n", (unsigned long)v);

	unlinkat(dir, tmp, 0);	/* whatever it is: a new file */
	fd = userstate_file(dir, tmp, O_WRONLY | O_CREAT | O_EXCL);
	if (fd < 0 || write(fd, buf, len) != len || fsync(fd) ||
	    renameat(dir, tmp, dir, UIDVALIDITY_FILE)) {
		syslog(LOG_ERR, "state file " UIDVALIDITY_FILE ": %m");
		if (fd >= 0)
			close(fd);
		unlinkat(dir, tmp, 0);
		return -1;
	}
	close(fd);
	return 0;
}

void userstate_set_update_end(int dir, dev_t dev, ino_t ino, off_t end)
{
	static const char tmp[] = UPDATE_END_FILE ".new";
	char buf[80];
	int fd, len = snprintf(buf, sizeof(buf), "%llu %llu %lld\n",
	    (unsigned long long)dev, (unsigned long long)ino, (long long)end);

	unlinkat(dir, tmp, 0);
	fd = userstate_file(dir, tmp, O_WRONLY | O_CREAT | O_EXCL);
	if (fd < 0 || write(fd, buf, len) != len ||
	    renameat(dir, tmp, dir, UPDATE_END_FILE)) {
		syslog(LOG_ERR, "state file " UPDATE_END_FILE ": %m");
		unlinkat(dir, tmp, 0);
	}
	if (fd >= 0)
		close(fd);
}

int userstate_update_end(int dir, dev_t dev, ino_t ino,
    const struct timespec *after, off_t *end)
{
	char buf[80];
	unsigned long long d, i;
	long long e;
	struct stat st;
	ssize_t n;
	int fd = userstate_file(dir, UPDATE_END_FILE, O_RDONLY);

	if (fd < 0)
		return 0;
	n = fstat(fd, &st) ? -1 : read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu %lld", &d, &i, &e) != 3 || d != dev ||
	    i != ino || e < 0 || (st.st_mtim.tv_sec < after->tv_sec ||
	    (st.st_mtim.tv_sec == after->tv_sec &&
	    st.st_mtim.tv_nsec <= after->tv_nsec)))
		return 0;
	*end = e;
	return 1;
}
