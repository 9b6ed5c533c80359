/*
 * The session lock, the last-login record, the saved UIDVALIDITY and the
 * updates noted, in the user's state directory. All are files the handler
 * makes itself, as the user, and opens as it opens every state file
 * (userstate_file): without following a link or waiting on a FIFO, and
 * only if regular, the user's, one link.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
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

/* One line of UPDATES_FILE: "dev ino start sec.nsec". */
struct noted {
	unsigned long long dev, ino;
	long long start, sec;
	long nsec;
};

#define NOTED_MAX	96	/* a line's length at most, with its LF */

/* The updates noted in dir, oldest first: how many (up to UPDATES_KEPT), or
 * -1 with errno set when the file is there but cannot be read. */
static int updates_read(int dir, struct noted *u)
{
	char buf[UPDATES_KEPT * NOTED_MAX + 1], *p, *nl;
	ssize_t len;
	int n = 0, fd = userstate_file(dir, UPDATES_FILE, O_RDONLY);

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return len;
	buf[len] = '\0';
	for (p = buf; n < UPDATES_KEPT && (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		if (sscanf(p, "%llu %llu %lld %lld.%ld", &u[n].dev, &u[n].ino,
		    &u[n].start, &u[n].sec, &u[n].nsec) == 5 &&
		    u[n].start >= 0 && u[n].nsec >= 0 && u[n].nsec < 1000000000)
			n++;
	}
	return n;
}

static int noted_after(const struct noted *u, const struct timespec *t)
{
	return u->sec > t->tv_sec || (u->sec == t->tv_sec &&
	    u->nsec > t->tv_nsec);
}

void userstate_note_update(int dir, dev_t dev, ino_t ino, off_t start)
{
	static const char tmp[] = UPDATES_FILE ".new";
	struct noted u[UPDATES_KEPT];
	struct timespec now;
	char buf[UPDATES_KEPT * NOTED_MAX];
	int fd, i, len = 0, n = updates_read(dir, u);

	if (n < 0) {
		/* The ones before are lost: this one stands for them, as
		 * rewriting it all (a remap then takes all for new). */
		syslog(LOG_ERR, "state file " UPDATES_FILE ": %m");
		n = 0;
		start = 0;
	}
	if (n == UPDATES_KEPT)	/* the oldest gives way */
		memmove(u, u + 1, --n * sizeof(*u));
	/* The clock, not a file's time: those are a tick coarse, and a
	 * session that read in the same tick must see this as later. */
	clock_gettime(CLOCK_REALTIME, &now);
	u[n++] = (struct noted){ dev, ino, start, now.tv_sec, now.tv_nsec };
	for (i = 0; i < n; i++)
		len += snprintf(buf + len, sizeof(buf) - len,
		    "%llu %llu %lld %lld.%09ld\n", u[i].dev, u[i].ino,
		    u[i].start, u[i].sec, u[i].nsec);
	unlinkat(dir, tmp, 0);
	fd = userstate_file(dir, tmp, O_WRONLY | O_CREAT | O_EXCL);
	if (fd < 0 || write(fd, buf, len) != len ||
	    renameat(dir, tmp, dir, UPDATES_FILE)) {
		syslog(LOG_ERR, "state file " UPDATES_FILE ": %m");
		unlinkat(dir, tmp, 0);
	}
	if (fd >= 0)
		close(fd);
}

int userstate_rewritten_from(int dir, dev_t dev, ino_t ino,
    const struct timespec *after, off_t *from)
{
	struct noted u[UPDATES_KEPT];
	int i, found = 0, n = updates_read(dir, u);

	if (n < 0) {	/* unreadable: as if all was rewritten */
		*from = 0;
		return 1;
	}
	for (i = 0; i < n; i++)
		if (u[i].dev == (unsigned long long)dev &&
		    u[i].ino == (unsigned long long)ino &&
		    noted_after(&u[i], after) &&
		    (!found++ || u[i].start < *from))
			*from = u[i].start;
	if (n == UPDATES_KEPT && noted_after(&u[0], after)) {
		*from = 0;	/* more since than are kept */
		return 1;
	}
	return found > 0;
}
