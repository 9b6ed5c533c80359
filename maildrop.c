/*
 * The maildrop: an mbox file, read once under the mail locks into a table of
 * offsets, wire sizes and unique-ids, then served from the open descriptor and
 * rewritten on QUIT only where messages were deleted. This file opens it,
 * reads the table (from the cache, and the scanner for what the cache lacks)
 * and sends messages; mbox.c, cache.c, commit.c and journal.c do the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "cache.h"
#include "commit.h"
#include "journal.h"
#include "lines.h"
#include "mailfile.h"
#include "maildrop.h"
#include "mbox.h"
#include "params.h"
#include "remap.h"
#include "userstate.h"

/*
 * Opens path for the session and checks what it is before a byte is read:
 * no symlink (O_NOFOLLOW), no FIFO or device, and the user's own file.
 * Returns the descriptor, -2 for a missing file, or -1 with *err set.
 */
static int open_checked(const char *path, uid_t uid, int mode,
    struct stat *st, const char **err)
{
	int fd = open(path, mode | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
	    O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return -2;
		if (errno == ELOOP) {
			syslog(LOG_ERR, "%s: refused: a symbolic link", path);
			*err = "[SYS/PERM] Mailbox is a symbolic link";
		} else if (errno == EISDIR) {
			syslog(LOG_ERR, "%s: refused: a directory", path);
			*err = "[SYS/PERM] Mailbox is not a regular file";
		} else if (errno == EACCES || errno == EPERM) {
			syslog(LOG_ERR, "%s: %m", path);
			*err = "[SYS/PERM] Mailbox is not accessible";
		} else {
			syslog(LOG_ERR, "%s: %m", path);
			*err = "[SYS/TEMP] Cannot open mailbox";
		}
		return -1;
	}
	if (fstat(fd, st)) {
		syslog(LOG_ERR, "%s: fstat: %m", path);
		*err = "[SYS/TEMP] Cannot open mailbox";
	} else if (!S_ISREG(st->st_mode)) {
		syslog(LOG_ERR, "%s: refused: not a regular file", path);
		*err = "[SYS/PERM] Mailbox is not a regular file";
	} else if (st->st_uid != uid) {
		syslog(LOG_ERR, "%s: refused: owned by uid %lu, not %lu", path,
		    (unsigned long)st->st_uid, (unsigned long)uid);
		*err = "[SYS/PERM] Mailbox is owned by someone else";
	} else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
		syslog(LOG_ERR, "%s: fcntl: %m", path);
		*err = "[SYS/TEMP] Cannot open mailbox";
	} else
		return fd;
	close(fd);
	return -1;
}

/*
 * maildrop_scan (remap.h): scans the file from offset from (0, or the end of what the cache holds)
 * to its end, a MAILBOX_CHUNK at a time through md->rbuf: new messages are
 * appended to md->msg, the bytes read make a new segment, and md->length
 * and md->ends_at_boundary are set (mbox_end). A scan that starts past 0
 * must find a From_ line there. Returns 0, or -1 with errno set (EINVAL:
 * not an mbox, or not a From_ line at from).
 */
int maildrop_scan(struct maildrop *md, off_t from)
{
	struct mbox_scan *s;
	size_t have = 0;
	off_t pos = from;	/* file offset of rbuf[0] */
	ssize_t n, took;
	int eof;

	md->win_len = 0;	/* the window's buffer is the scan's */
	if (!md->rbuf && !(md->rbuf = malloc(MAILBOX_CHUNK)))
		return -1;
	if (!(s = mbox_start(md, from)))
		return -1;
	do {
		n = mailfile_read(md->fd, md->rbuf + have, MAILBOX_CHUNK - have,
		    pos + have);
		if (n < 0)
			goto fail;
		eof = (size_t)n < MAILBOX_CHUNK - have;
		have += n;
		took = mbox_feed(s, md->rbuf, have, MAILBOX_CHUNK, eof);
		if (took < 0)
			goto fail;
		memmove(md->rbuf, md->rbuf + took, have - took);
		pos += took;
		have -= took;
	} while (!eof);
	return mbox_end(s);

fail:
	mbox_free(s);
	return -1;
}

/* Numbers the messages once the table is complete, and makes their
 * unique-ids distinct. */
static int finish_table(struct maildrop *md)
{
	mbox_number(md);
	return mbox_unique(md);
}

/*
 * -i dovecot, uw: the UIDVALIDITY comes from the first message's X-IMAPbase
 * (or X-IMAP), which goes with that message when a session deletes it:
 * Dovecot would have moved the header to the next one. So it is kept in
 * the state directory too, and a mailbox whose first message has none
 * takes the one kept there. 0 when there is none, or for other schemes.
 */
static uint32_t saved_validity(const struct maildrop *md)
{
	if (mbox_table(md->scheme.kind) != UIDL_DOVECOT || md->state < 0)
		return 0;
	return userstate_validity(md->state);
}

/* Keeps md's UIDVALIDITY in the state directory (made if need be) when it
 * is not there yet; a failure (logged) shows only once that first message
 * is gone. */
static void keep_validity(struct maildrop *md)
{
	if (mbox_table(md->scheme.kind) != UIDL_DOVECOT || !md->validity)
		return;
	if (md->state < 0 && md->state_path)
		md->state = userstate_open(md->state_path, md->uid, 1);
	if (md->state >= 0 && userstate_validity(md->state) != md->validity)
		userstate_set_validity(md->state, md->validity);
}

/*
 * The message table: from the cache where it can be trusted, scanning only
 * the mail appended since; else from a full scan. Returns 0 when the table
 * is the cache's as it was, 1 when something was scanned (and the cache is
 * worth writing), or -1 with errno set (EINVAL: not an mbox).
 */
static int read_table(struct maildrop *md, char *buf)
{
	struct stat st;
	int r;

	if (fstat(md->fd, &st))
		return -1;
	r = cache_load(md, &st, buf);
	if (r == 1) {
		mbox_number(md);
		syslog(LOG_DEBUG, "%s: %zu messages from the cache, 0 bytes "
		    "read", md->path, md->count);
		return 0;
	}
	if (r == 0) {
		off_t from = md->length;
		size_t cached = md->count;

		if (!maildrop_scan(md, from)) {
			syslog(LOG_DEBUG, "%s: %zu messages from the cache, "
			    "%lld bytes read", md->path, cached,
			    (long long)(md->length - from));
			return finish_table(md) ? -1 : 1;
		}
		if (errno != EINVAL)
			return -1;
		syslog(LOG_INFO, "%s: mail after the cached part does not "
		    "start with a From_ line; reading it all", md->path);
		md->count = md->pool_len = 0;
	}
	md->segs = 0;
	md->validity = saved_validity(md);
	if (maildrop_scan(md, 0) || finish_table(md))
		return -1;
	return 1;
}

/*
 * Opens and locks path, taking the new file when it was renamed over while
 * we waited for the locks. Returns 0 with md->fd open and locked, 1 for a
 * missing file (an empty maildrop), or -1 with *err set (logged).
 */
static int open_locked(struct maildrop *md, const char *path, uid_t uid,
    const char **err)
{
	struct stat st;
	int tries, fd;

	for (tries = 0; tries < 3; tries++) {
		fd = open_checked(path, uid, O_RDWR, &st, err);
		if (fd == -2)
			return 1;
		if (fd < 0)
			return -1;
		md->fd = fd;
		if (mailfile_lock(md)) {
			if (errno == EAGAIN) {
				syslog(LOG_NOTICE, "%s: locked by another "
				    "program for %d s", path, LOCK_TIMEOUT);
				*err = "[IN-USE] Maildrop is locked by "
				    "another program";
			} else {
				syslog(LOG_ERR, "%s: cannot lock: %m", path);
				*err = "[SYS/TEMP] Cannot lock the maildrop";
			}
			return -1;
		}
		if (mailfile_at_path(path, fd)) {
			md->dev = st.st_dev;
			md->ino = st.st_ino;
			return 0;
		}
		mailfile_unlock(md);
		close(fd);
		md->fd = -1;
	}
	syslog(LOG_ERR, "%s: keeps being replaced", path);
	*err = "[SYS/TEMP] Mailbox keeps changing";
	return -1;
}

/* Why a scan failed, for *err and the log. */
static const char *read_failed(const char *path)
{
	if (errno == EINVAL) {
		syslog(LOG_ERR, "%s: refused: not an mbox (no From_ line at the "
		    "start)", path);
		return "[SYS/PERM] Mailbox is not in mbox format";
	}
	syslog(LOG_ERR, "%s: cannot read: %m", path);
	return "[SYS/TEMP] Cannot read the mailbox";
}

/* A table of the kind ids asks for, NULL the native one. */
static void set_scheme(struct maildrop *md, const struct uidl_scheme *ids)
{
	if (ids)
		md->scheme = *ids;
	else
		md->scheme.kind = UIDL_NATIVE;
}

int maildrop_open(struct maildrop *md, const char *path, const char *state,
    uid_t uid, const struct uidl_scheme *ids, const char **err)
{
	int r, fresh;

	memset(md, 0, sizeof(*md));
	md->fd = -1;
	md->uid = uid;
	set_scheme(md, ids);
	md->state = state ? userstate_open(state, uid, 0) : -1;
	if (!(md->path = strdup(path)) ||
	    (state && !(md->state_path = strdup(state)))) {
		*err = "[SYS/TEMP] Out of memory";
		goto fail;
	}
	if ((r = open_locked(md, path, uid, err)) > 0)
		return 0;	/* no file: an empty maildrop */
	if (r < 0)
		goto fail;
	/* Scratch for the journal and the cache, the scan's buffer, and
	 * then RETR's window (see window()). */
	if (!(md->rbuf = malloc(MAILBOX_CHUNK))) {
		*err = "[SYS/TEMP] Out of memory";
		goto fail_locked;
	}
	if (journal_recover(md, md->rbuf, err))
		goto fail_locked;
	if ((fresh = read_table(md, md->rbuf)) < 0) {
		*err = read_failed(path);
		goto fail_locked;
	}
	commit_note_read(md);
	mailfile_unlock(md);
	if (fresh)
		cache_write(md, md->rbuf);
	keep_validity(md);
	/* An idle session keeps none of it: RETR's window, a scan and a
	 * remap take it again when they need it. */
	md->win_len = 0;
	free(md->rbuf);
	md->rbuf = NULL;
	return 0;

fail_locked:
	mailfile_unlock(md);
fail:
	maildrop_close(md);
	return -1;
}

/*
 * The lister's read (-M): the session's checks on the file, and its table
 * made by a full scan, but nothing that writes. A read lock keeps out
 * delivery, which takes fcntl write locks, while we read; the dotlock would
 * be a file made in the spool directory, and the cache and the journal are
 * files in the state directory, so none of them is touched. The saved
 * UIDVALIDITY is read, so that the ids are the session's.
 */
int maildrop_read(struct maildrop *md, const char *path, const char *state,
    uid_t uid, const struct uidl_scheme *ids, const char **err)
{
	struct stat st;
	int fd;

	memset(md, 0, sizeof(*md));
	md->fd = md->state = -1;
	md->uid = uid;
	set_scheme(md, ids);
	if (state && mbox_table(md->scheme.kind) == UIDL_DOVECOT)
		md->state = userstate_open(state, uid, 0);
	if (!(md->path = strdup(path))) {
		*err = "[SYS/TEMP] Out of memory";
		goto fail;
	}
	if ((fd = open_checked(path, uid, O_RDONLY, &st, err)) == -2)
		return 0;
	if (fd < 0)
		goto fail;
	md->fd = fd;
	if (mailfile_read_lock(fd)) {
		syslog(LOG_NOTICE, "%s: locked by another program for %d s",
		    path, LOCK_TIMEOUT);
		*err = "[IN-USE] Maildrop is locked by another program";
		goto fail;
	}
	md->segs = 0;
	md->validity = saved_validity(md);
	if (maildrop_scan(md, 0) || finish_table(md)) {
		*err = read_failed(path);
		goto fail;
	}
	return 0;

fail:
	maildrop_close(md);
	return -1;
}

/*
 * The bytes of the file at off, up to end: a pointer into the window, and in
 * *n how many of them it holds (at least one). Outside the window, a new one
 * is read from off. Returns NULL with errno set (EIO: the file ends first).
 * RETR of every message reads 128 KiB at a time this way, not two reads a
 * message.
 */
static const char *window(struct maildrop *md, off_t off, off_t end, size_t *n)
{
	if (off < md->win_off || off >= md->win_off + (off_t)md->win_len) {
		ssize_t got;

		md->win_len = 0;
		if (!md->rbuf && !(md->rbuf = malloc(MAILBOX_CHUNK)))
			return NULL;
		got = mailfile_read(md->fd, md->rbuf, MAILBOX_CHUNK, off);
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			return NULL;
		}
		md->win_off = off;
		md->win_len = got;
	}
	*n = md->win_off + md->win_len - off;
	if ((off_t)*n > end - off)
		*n = end - off;
	return md->rbuf + (off - md->win_off);
}

int maildrop_still(struct maildrop *md, const struct message *m)
{
	int skip = m->from > 0;
	off_t at = m->from - skip, end = m->from + 5;
	const char *p = NULL;
	char head[6];
	size_t n, got = 0;

	/* what the window has, then what follows it */
	while (got < (size_t)(end - at) &&
	    (p = window(md, at + got, end, &n))) {
		memcpy(head + got, p, n);
		got += n;
	}
	if (!p || (skip && head[0] != '\n') || memcmp(head + skip, "From ", 5)) {
		syslog(LOG_ERR, "%s: no longer has a From_ line at offset %lld: "
		    "changed by another program during the session", md->path,
		    (long long)m->from);
		return 0;
	}
	return 1;
}

struct message *maildrop_get(struct maildrop *md, unsigned long n)
{
	if (n < 1 || n > md->visible)
		return NULL;
	return &md->msg[md->first + n - 1];
}

/* Room for n more bytes in out, flushing it if need be. 0 or -1. */
static int room(struct output *out, size_t n)
{
	return out->size - out->len >= n ? 0 : out->flush(out);
}

/*
 * The wire form: every line end becomes CRLF (a CR already before the LF is
 * not doubled), a line that starts with "." gets another, and a last line
 * with no newline gets a CRLF. A CR at the end of a chunk is held back until
 * the next byte shows whether a LF follows it. RETR goes through lines_wire
 * wherever it can, straight into the client's buffer; TOP, which counts body
 * lines, and the ends of chunks go a line at a time here.
 */
int maildrop_send(struct maildrop *md, const struct message *m, long long lines,
    struct output *out)
{
	off_t off = m->data;
	int bol = 1, held_cr = 0, in_body = 0;
	size_t linelen = 0;	/* bytes of the current line, CR excluded */
	long long sent = 0;	/* body lines */

	while (off < m->end) {
		size_t n;
		const char *p = window(md, off, m->end, &n), *e;

		if (!p) {
			syslog(LOG_ERR, "%s: %s at offset %lld", md->path,
			    errno == EIO ? "file shrank" : strerror(errno),
			    (long long)off);
			return -1;
		}
		off += n;
		e = p + n;
		while (p < e) {
			const char *nl, *stop;

			if (lines < 0 && !held_cr) {
				char *o;

				if (out->size - out->len < LINES_ROOM &&
				    out->flush(out))
					return -1;
				o = out->buf + out->len;
				p = lines_wire(p, e, &o, out->buf + out->size,
				    &bol);
				out->len = o - out->buf;
				if (p == e)
					break;
			}
			/* Room for the stuffed dot, a held CR and the CRLF. */
			if (room(out, 4))
				return -1;
			if (bol) {
				if (in_body && lines >= 0 && sent >= lines)
					return 0;
				if (*p == '.')
					out->buf[out->len++] = '.';
				bol = 0;
			}
			nl = memchr(p, '\n', e - p);
			stop = nl ? nl : e;
			if (stop > p) {
				if (held_cr) {
					out->buf[out->len++] = '\r';
					linelen++;	/* content after all */
				}
				held_cr = stop[-1] == '\r';
				stop -= held_cr;
			}
			if (stop > p) {
				if (output_put(out, p, stop - p))
					return -1;
				linelen += stop - p;
			}
			if (!nl)
				break;
			if (room(out, 2))
				return -1;
			out->buf[out->len++] = '\r';
			out->buf[out->len++] = '\n';
			if (in_body)
				sent++;
			else if (linelen == 0)
				in_body = 1;
			held_cr = 0;
			linelen = 0;
			bol = 1;
			p = nl + 1;
		}
	}
	if (held_cr && output_put(out, "\r", 1))
		return -1;
	if ((m->flags & M_NOEOL) && !bol && output_put(out, "\r\n", 2))
		return -1;
	return 0;
}

void maildrop_close(struct maildrop *md)
{
	if (md->fd >= 0)
		close(md->fd);
	if (md->state >= 0)
		close(md->state);
	free(md->msg);
	free(md->pool);
	free(md->path);
	free(md->state_path);
	free(md->rbuf);
	memset(md, 0, sizeof(*md));
	md->fd = md->state = -1;
}
