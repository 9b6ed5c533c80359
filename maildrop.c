/*
 * The maildrop: an mbox file, read once under the mail locks into a table of
 * offsets, wire sizes and unique-ids, then served from the open descriptor and
 * rewritten on QUIT only where messages were deleted.
 */
#include <errno.h>
#include <fcntl.h>
#include <lockfile.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
/* libxxhash's own run-time choice of SSE2, AVX2 or AVX-512: the same hashes,
 * at twice the speed of its portable entry points on a recent CPU. */
#include <xxh_x86dispatch.h>
#endif

#include "dotlock.h"
#include "lines.h"
#include "maildrop.h"
#include "params.h"
#include "userstate.h"

static const char subject_pseudo[] =
    "DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA";

/*
 * Headers that mail programs add or edit on a message they keep: they stay
 * out of the unique-id so that it survives them.
 */
#define NAME(s)	{ s, sizeof(s) - 1 }
static const struct {
	const char *s;
	size_t len;
} volatile_headers[] = {
	NAME("Status"), NAME("X-Status"), NAME("X-UID"), NAME("X-Keywords"),
	NAME("Content-Length"), NAME("X-IMAP"), NAME("X-IMAPbase"), { NULL, 0 }
};

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

static void unlock(struct maildrop *md)
{
	char *name = lock_name(md->path);

	if (!name || dotlock_remove(name))
		syslog(LOG_ERR, "%s.lock: cannot remove: %m", md->path);
	free(name);
	fcntl_lock(md->fd, F_UNLCK);
}

/*
 * Debian Policy 11.6: an fcntl lock on the file, then the dotlock, which
 * liblockfile creates through its setgid helper where the spool directory is
 * not ours to write. Both are retried for LOCK_TIMEOUT seconds.
 * Returns 0, or -1 with errno set (EAGAIN: somebody else holds a lock).
 */
static int lock(struct maildrop *md)
{
	time_t deadline = time(NULL) + LOCK_TIMEOUT;
	char *name;
	int status;

	while (fcntl_lock(md->fd, F_WRLCK)) {
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			return -1;
		if (time(NULL) >= deadline) {
			errno = EAGAIN;
			return -1;
		}
		lock_pause();
	}
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
		while (fcntl_lock(md->fd, F_WRLCK)) {
			if ((errno != EAGAIN && errno != EACCES &&
			    errno != EINTR) || time(NULL) >= deadline) {
				if (errno == EACCES || errno == EINTR)
					errno = EAGAIN;
				free(name);
				return -1;
			}
			lock_pause();
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

/* read(2) that retries after signals; returns bytes read, 0 at EOF, or -1. */
static ssize_t read_full(int fd, char *buf, size_t len, off_t off)
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

static int write_full(int fd, const char *buf, size_t len, off_t off)
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
 * The scanner state: one pass over the file, line by line, with lines longer
 * than the buffer taken in pieces. The empty line most recently seen is held
 * back, since it is a separator (not part of the message) if a From_ line
 * follows it or the file ends after it.
 */
struct scan {
	struct maildrop *md;
	XXH3_state_t *id;	/* From_ line and kept headers: the unique-id */
	XXH3_state_t *body;	/* the first UID_BODY bytes of the body */
	size_t body_left;	/* of those still to hash */
	uint64_t body_len;	/* octets of the body, as stored */
	struct message cur;
	int in_message, in_from, in_body, header_kept;
	int pending;		/* bytes of a held-back empty line, or 0 */
	int at_separator;	/* file start, or the previous line was empty */
	int subject, ximap;	/* pseudo-message signs */
	off_t next;		/* end of the last line taken into cur */
	char xuidl[MAX_UIDL + 1];
};

static int grow(struct maildrop *md, size_t *alloc)
{
	struct message *p;
	size_t n = *alloc ? *alloc * 2 : 1024;

	if (!(p = realloc(md->msg, n * sizeof(*p))))
		return -1;
	md->msg = p;
	*alloc = n;
	return 0;
}

static int pool_add(struct maildrop *md, const char *s, size_t *at)
{
	size_t len = strlen(s) + 1;
	char *p;

	if (md->pool_len + len > md->pool_size) {
		size_t n = md->pool_size ? md->pool_size * 2 : 4096;
		while (n < md->pool_len + len)
			n *= 2;
		if (!(p = realloc(md->pool, n)))
			return -1;
		md->pool = p;
		md->pool_size = n;
	}
	*at = md->pool_len;
	memcpy(md->pool + md->pool_len, s, len);
	md->pool_len += len;
	return 0;
}

static int valid_uidl(const char *s, size_t len)
{
	size_t i;

	if (len < 1 || len > MAX_UIDL)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Closes the message in s->cur and appends it to the table. */
static int scan_finish(struct scan *s, size_t *alloc)
{
	struct maildrop *md = s->md;
	struct message *m = &s->cur;
	XXH64_hash_t body;
	XXH128_canonical_t c;
	unsigned char h[8];
	size_t at;
	int i;

	if (!s->in_message)
		return 0;
	s->in_message = 0;
	body = XXH3_64bits_digest(s->body);
	for (i = 0; i < 8; i++)
		h[i] = body >> (8 * i);
	XXH3_128bits_update(s->id, h, sizeof(h));
	for (i = 0; i < 8; i++)
		h[i] = s->body_len >> (8 * i);
	XXH3_128bits_update(s->id, h, sizeof(h));
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s->id));
	memcpy(m->uid, c.digest, sizeof(m->uid));
	m->end = s->next;
	if (s->xuidl[0]) {
		if (pool_add(md, s->xuidl, &at) || at > UINT32_MAX)
			return -1;
		m->dup = at;
		m->flags |= M_XUIDL;
	}
	if (md->count == 0 && s->subject && s->ximap)
		m->flags |= M_HIDDEN;
	if (md->count == *alloc && grow(md, alloc))
		return -1;
	md->msg[md->count++] = *m;
	return 0;
}

static void scan_start(struct scan *s, off_t off)
{
	memset(&s->cur, 0, sizeof(s->cur));
	s->cur.from = s->cur.data = s->next = off;
	s->in_message = 1;
	s->in_body = 0;
	s->header_kept = 1;
	s->subject = s->ximap = 0;
	s->xuidl[0] = '\0';
	XXH3_128bits_reset(s->id);
	XXH3_64bits_reset(s->body);
	s->body_left = UID_BODY;
	s->body_len = 0;
}

/* Counts the body octets in p and hashes what is left of its first UID_BODY. */
static void body_id(struct scan *s, const char *p, size_t len)
{
	s->body_len += len;
	if (len > s->body_left)
		len = s->body_left;
	if (len) {
		XXH3_64bits_update(s->body, p, len);
		s->body_left -= len;
	}
}

/* Takes the held-back empty line into the message as content. */
static void scan_flush(struct scan *s)
{
	if (!s->pending)
		return;
	s->cur.size += 2;
	body_id(s, "\r\n" + (s->pending == 1), s->pending);
	s->next += s->pending;
	s->pending = 0;
}

static int header_is(const char *line, size_t len, const char *name, size_t n)
{
	return len > n && line[n] == ':' && !strncasecmp(line, name, n);
}

/* header_is for a literal name, whose length the compiler knows. */
#define HEADER_IS(line, len, name) \
	header_is(line, len, name, sizeof(name) - 1)

/* Copies a header's value, trimmed, if it is a valid unique-id. */
static void take_xuidl(struct scan *s, const char *line, size_t len)
{
	const char *v = line + sizeof("X-UIDL:") - 1, *e = line + len;

	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if (!s->xuidl[0] && valid_uidl(v, e - v)) {
		memcpy(s->xuidl, v, e - v);
		s->xuidl[e - v] = '\0';
	}
}

/* Looks at the start of a header line: what it says and whether it counts. */
static void scan_header(struct scan *s, const char *line, size_t len)
{
	size_t h;

	if (line[0] == ' ' || line[0] == '\t')
		return;		/* a continuation keeps the previous verdict */
	s->header_kept = 1;
	/* Every header looked at below starts with C, S or X. */
	switch (line[0] | 0x20) {
	case 'c': case 's': case 'x':
		break;
	default:
		return;
	}
	for (h = 0; volatile_headers[h].s; h++)
		if (header_is(line, len, volatile_headers[h].s,
		    volatile_headers[h].len)) {
			s->header_kept = 0;
			break;
		}
	if (HEADER_IS(line, len, "X-IMAP") || HEADER_IS(line, len, "X-IMAPbase"))
		s->ximap = 1;
	else if (HEADER_IS(line, len, "Subject") &&
	    memmem(line, len, subject_pseudo, sizeof(subject_pseudo) - 1))
		s->subject = 1;
	else if (HEADER_IS(line, len, "X-UIDL"))
		take_xuidl(s, line, len);
}

/*
 * One piece of a line: the whole line, or part of one longer than the
 * buffer. first is set on a line's first piece, and lf on its last one when a
 * newline ends it. total is the length of the whole line without its newline,
 * or (size_t)-1 while the line goes on past this piece; cr tells whether the
 * byte before the newline is a CR. Returns 0, or -1 with errno set (EINVAL:
 * text before the first From_ line; ENOMEM).
 */
static int scan_piece(struct scan *s, size_t *alloc, off_t off,
    const char *p, size_t len, int first, int lf, size_t total, int cr)
{
	int done = lf || total != (size_t)-1;
	size_t text = len - (lf && cr && len);	/* without a final CR */

	if (first && s->at_separator && len >= 5 && !memcmp(p, "From ", 5)) {
		s->pending = 0;		/* it was a separator */
		if (scan_finish(s, alloc))
			return -1;
		scan_start(s, off);
		s->in_from = 1;
		s->at_separator = 0;
	} else if (!s->in_message) {
		errno = EINVAL;
		return -1;
	}
	if (s->in_from) {
		XXH3_128bits_update(s->id, p, text);
		if (done) {
			s->in_from = 0;
			s->cur.data = s->next = off + len + lf;
		}
		return 0;
	}
	if (first && lf && (len == 0 || (len == 1 && cr))) {
		scan_flush(s);
		s->pending = len + 1;
		s->at_separator = 1;
		s->in_body = 1;
		return 0;
	}
	if (first) {
		scan_flush(s);
		s->at_separator = 0;
		if (!s->in_body)
			scan_header(s, p, len);
	}
	if (s->in_body)
		body_id(s, p, len + lf);
	else if (s->header_kept) {
		XXH3_128bits_update(s->id, p, text);
		if (lf)
			XXH3_128bits_update(s->id, "\n", 1);
	}
	s->next = off + len + lf;
	if (done) {
		s->cur.size += total - (lf && cr) + 2;
		if (!lf)
			s->cur.flags |= M_NOEOL;
	}
	return 0;
}

/*
 * Whole header lines from p towards e, up to the empty line that ends them:
 * the fast path for what scan_piece does with a header line. The bytes that
 * go into the unique-id (kept lines, each without a CR before its LF) are
 * contiguous but for the lines left out and those CRs, so they go to the
 * hash in spans: two calls per line cost a fifth of the scan. Returns the
 * bytes taken, all of them whole lines.
 */
static size_t header_lines(struct scan *s, const char *p, const char *e)
{
	const char *line = p, *span = p, *nl;

	while ((nl = memchr(line, '\n', e - line))) {
		size_t len = nl - line;
		int cr = len && nl[-1] == '\r';

		if (len == (size_t)cr)
			break;
		scan_header(s, line, len);
		if (!s->header_kept) {
			XXH3_128bits_update(s->id, span, line - span);
			span = nl + 1;
		} else if (cr) {
			XXH3_128bits_update(s->id, span, nl - 1 - span);
			span = nl;
		}
		s->cur.size += len - cr + 2;
		line = nl + 1;
	}
	if (line > span)
		XXH3_128bits_update(s->id, span, line - span);
	return line - p;
}

/*
 * Reads the file from offset from (0, or the end of what the cache holds)
 * to its end: new messages are appended to md->msg, the bytes read make a new
 * segment (its end and XXH3) in md->seg, and md->length and md->separated
 * are set. The caller leaves room for that segment. A scan
 * that starts past 0 must find a From_ line there. Returns 0, or -1 with
 * errno set (EINVAL: not an mbox, or not a From_ line at from).
 */
static int scan(struct maildrop *md, off_t from)
{
	struct scan s;
	char *buf;
	XXH3_state_t *whole = XXH3_createState();
	size_t have = 0, p = 0, linelen = 0;
	off_t pos = from;	/* file offset of buf[0] */
	int eof = 0, midline = 0, lastcr = 0, ret = -1;
	ssize_t n;

	memset(&s, 0, sizeof(s));
	s.md = md;
	s.at_separator = 1;
	s.body = XXH3_createState();
	s.id = XXH3_createState();
	md->win_len = 0;	/* the window's buffer is the scan's */
	if (!md->rbuf)
		md->rbuf = malloc(MAILBOX_CHUNK);
	buf = md->rbuf;
	if (!buf || !s.body || !s.id || !whole ||
	    XXH3_64bits_reset(whole) != XXH_OK)
		goto out;
	for (;;) {
		char *nl;

		if (s.in_message && !s.in_body && !s.in_from && !midline) {
			size_t took = header_lines(&s, buf + p, buf + have);

			if (took) {
				p += took;
				s.next = pos + p;
				continue;
			}
		}
		if (s.in_body && !s.at_separator && !midline) {
			/*
			 * Most lines are body lines: all they change is the
			 * size, and their bytes go to the body hash as one
			 * span, up to the empty line before the next From_.
			 */
			off_t size = 0;
			char *q = (char *)lines_body(buf + p, buf + have,
			    &size);

			if (q > buf + p) {
				body_id(&s, buf + p, q - (buf + p));
				s.cur.size += size;
				p = q - buf;
				s.next = pos + p;
				continue;
			}
		}
		nl = have > p ? memchr(buf + p, '\n', have - p) : NULL;
		if (nl) {
			size_t len = nl - (buf + p);
			int cr = len ? buf[p + len - 1] == '\r' : lastcr;

			linelen += len;
			if (scan_piece(&s, &md->alloc, pos + p, buf + p, len,
			    !midline, 1, linelen, cr))
				goto out;
			p += len + 1;
			midline = 0;
			linelen = 0;
			lastcr = 0;
			continue;
		}
		if (eof) {
			if (have > p || midline) {
				linelen += have - p;
				if (scan_piece(&s, &md->alloc, pos + p, buf + p,
				    have - p, !midline, 0, linelen, 0))
					goto out;
			}
			break;
		}
		if (p > 0 || have == 0) {
			memmove(buf, buf + p, have - p);
			pos += p;
			have -= p;
			p = 0;
		} else if (have == MAILBOX_CHUNK) {
			/* a line longer than the buffer: take this piece */
			linelen += have;
			if (scan_piece(&s, &md->alloc, pos, buf, have, !midline,
			    0, (size_t)-1, 0))
				goto out;
			lastcr = buf[have - 1] == '\r';
			midline = 1;
			pos += have;
			have = 0;
		}
		n = read_full(md->fd, buf + have, MAILBOX_CHUNK - have,
		    pos + have);
		if (n < 0)
			goto out;
		XXH3_64bits_update(whole, buf + have, n);
		eof = (size_t)n < MAILBOX_CHUNK - have;
		have += n;
	}
	/* Where a From_ line appended later would start a message. */
	md->separated = s.at_separator;
	s.pending = 0;		/* an empty line at the end is a separator */
	if (scan_finish(&s, &md->alloc))
		goto out;
	md->length = pos + have;
	md->seg[md->segs].end = md->length;
	md->seg[md->segs++].digest = XXH3_64bits_digest(whole);
	ret = 0;
out:
	n = errno;
	XXH3_freeState(whole);
	XXH3_freeState(s.body);
	XXH3_freeState(s.id);
	errno = n;
	return ret;
}

size_t maildrop_uidl(const struct maildrop *md, const struct message *m,
    char *buf)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = 32;
	int i;

	/* Bounded here too, whatever the table says: the value in the pool,
	 * and at most MAX_UIDL octets of it. */
	if (m->flags & M_XUIDL) {
		const char *v = m->dup < md->pool_len ? md->pool + m->dup : "";
		size_t room = m->dup < md->pool_len ? md->pool_len - m->dup : 0;

		len = strnlen(v, room < MAX_UIDL ? room : MAX_UIDL);
		memcpy(buf, v, len);
		buf[len] = '\0';
		return len;
	}
	for (i = 0; i < 16; i++) {
		buf[2 * i] = hex[m->uid[i] >> 4];
		buf[2 * i + 1] = hex[m->uid[i] & 15];
	}
	buf[32] = '\0';
	if (m->dup)
		len += snprintf(buf + 32, MAX_UIDL + 1 - 32, ".%u",
		    (unsigned)m->dup);
	return len;
}

/* Where the id a, of len octets, is in ids (a message's index + 1), or the
 * empty slot where it goes; b is scratch. */
static size_t *id_slot(const struct maildrop *md, size_t *ids, size_t mask,
    const char *a, size_t len, char *b)
{
	size_t j;

	for (j = XXH3_64bits(a, len) & mask; ids[j]; j = (j + 1) & mask)
		if (maildrop_uidl(md, &md->msg[ids[j] - 1], b) == len &&
		    !memcmp(a, b, len))
			break;
	return &ids[j];
}

/* Where the last message with hash uid is in bases, or the empty slot. */
static size_t *base_slot(const struct maildrop *md, size_t *bases,
    size_t mask, const unsigned char *uid)
{
	size_t k;

	for (k = XXH3_64bits(uid, 16) & mask; bases[k] &&
	    memcmp(md->msg[bases[k] - 1].uid, uid, 16); k = (k + 1) & mask)
		;
	return &bases[k];
}

/*
 * Makes every listed unique-id distinct, in file order: an X-UIDL value seen
 * before gives way to the message's hash, and a hash seen before gets the
 * first suffix (.2, .3, ...) that no earlier message has. Two open-addressing
 * tables keep it O(messages): ids, of the ids given out, and bases, of the
 * last message given each hash. A later copy of that hash starts at the
 * suffix after that message's, since the ones below were all taken then and
 * still are; trying each from .2 on made 16,000 copies of a message take
 * 23 s. The ids are the ones that made, so no client sees its UIDLs change.
 */
static int make_unique(struct maildrop *md)
{
	size_t size = 16, mask, i, len, *ids, *bases, *id, *base;
	char a[MAX_UIDL + 1], b[MAX_UIDL + 1];

	while (size < 2 * md->count)
		size *= 2;
	mask = size - 1;
	ids = calloc(size, sizeof(*ids));
	bases = calloc(size, sizeof(*bases));
	if (!ids || !bases) {
		free(ids);
		free(bases);
		return -1;
	}
	for (i = md->first; i < md->count; i++) {
		struct message *m = &md->msg[i];

		if (m->flags & M_XUIDL) {
			len = maildrop_uidl(md, m, a);
			if (!*(id = id_slot(md, ids, mask, a, len, b))) {
				*id = i + 1;
				continue;
			}
			m->flags &= ~M_XUIDL;
		}
		base = base_slot(md, bases, mask, m->uid);
		m->dup = !*base ? 0 : md->msg[*base - 1].dup ?
		    md->msg[*base - 1].dup + 1 : 2;
		for (;;) {
			len = maildrop_uidl(md, m, a);
			if (!*(id = id_slot(md, ids, mask, a, len, b)))
				break;
			m->dup = m->dup ? m->dup + 1 : 2;
		}
		*id = *base = i + 1;
	}
	free(ids);
	free(bases);
	return 0;
}

/*
 * Opens path for the session and checks what it is before a byte is read:
 * no symlink (O_NOFOLLOW), no FIFO or device, and the user's own file.
 * Returns the descriptor, -2 for a missing file, or -1 with *err set.
 */
static int open_checked(const char *path, uid_t uid, struct stat *st,
    const char **err)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
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

/* Whether path still names the file open on fd. */
static int same_file(const char *path, int fd)
{
	struct stat a, b;

	return !stat(path, &a) && !fstat(fd, &b) &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int journal_recover(struct maildrop *md, char *buf, const char **err);

/*
 * The cache, "cache" in the state directory: the message table of the last
 * scan, so that opening a mailbox that is unchanged, or has only had mail
 * appended, reads the table and at most the new mail instead of the whole
 * file. It is trusted only after cheap checks say the file still starts with
 * what was scanned: same inode, not shorter, the same mtime if not longer,
 * and the bytes at a sample of From_ lines and at the old end as they were.
 * Any doubt means a full scan. Its checksum catches a damaged cache; one
 * that the user forged could make this user's sessions list wrong sizes, but
 * every offset in it is checked, so it cannot make us read outside the file.
 */
struct cache_header {
	char magic[8];
	uint32_t msg_size, segs, separated, unused;
	uint64_t dev, ino;
	int64_t length, mtime_sec, mtime_nsec;
	struct segment seg[MAX_SEGMENTS];
	uint64_t count, pool_len;
	uint64_t tail;			/* XXH3 of the CACHE_TAIL bytes before length */
	uint64_t samples[CACHE_SAMPLES];	/* XXH3 at sampled From_ lines */
	uint64_t check;			/* XXH3 of what follows, seeded with the above */
};

static const char cache_magic[8] = "P3CACHE2";

/* The table follows the header in the file, and is read with it (cache_load). */
_Static_assert(sizeof(struct cache_header) % _Alignof(struct message) == 0,
    "the cache's table is aligned");

/* The message sampled as the kth of CACHE_SAMPLES. */
static size_t sample_index(size_t count, int k)
{
	return count < 2 ? 0 : (size_t)k * (count - 1) / (CACHE_SAMPLES - 1);
}

/* XXH3 of up to len bytes of fd at off, but not past end. */
static int probe(int fd, off_t off, size_t len, off_t end, char *buf,
    uint64_t *h)
{
	ssize_t n;

	if (off + (off_t)len > end)
		len = end - off;
	n = read_full(fd, buf, len, off);
	if (n < 0 || (size_t)n != len)
		return -1;
	*h = XXH3_64bits(buf, len);
	return 0;
}

/* The checks that tie a cache to the file: its tail and From_ samples. */
static int cache_probes(struct maildrop *md, struct cache_header *c, char *buf)
{
	off_t tail = md->length > CACHE_TAIL ? md->length - CACHE_TAIL : 0;
	int k;

	if (probe(md->fd, tail, CACHE_TAIL, md->length, buf, &c->tail))
		return -1;
	for (k = 0; k < CACHE_SAMPLES; k++)
		if (md->count && probe(md->fd, md->msg[sample_index(md->count,
		    k)].from, CACHE_PROBE, md->length, buf, &c->samples[k]))
			return -1;
	return 0;
}

/* The XXH3 of a cache's header fields, its message table and its pool: the
 * table and the pool come apart, so that neither is read twice. */
static uint64_t cache_check(const struct cache_header *c, const void *msg,
    size_t msgs, const void *pool, size_t pool_len)
{
	XXH3_state_t *h = XXH3_createState();
	uint64_t sum = 0;

	if (h && XXH3_64bits_reset_withSeed(h, XXH3_64bits(c,
	    offsetof(struct cache_header, check))) == XXH_OK &&
	    XXH3_64bits_update(h, msg, msgs) == XXH_OK &&
	    XXH3_64bits_update(h, pool, pool_len) == XXH_OK)
		sum = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	return sum;
}

/* Whether a table read from a cache is one our scan could have made. */
static int table_sane(const struct maildrop *md)
{
	size_t i, len;
	off_t prev = 0;

	if (md->pool_len && md->pool[md->pool_len - 1] != '\0')
		return 0;
	for (i = 0; i < md->count; i++) {
		const struct message *m = &md->msg[i];

		if (m->from < prev || m->data < m->from || m->end < m->data ||
		    m->end > md->length || m->size < 0 ||
		    m->size > 2 * (m->end - m->data) + 2 ||
		    (m->flags & ~(M_XUIDL | M_NOEOL | M_HIDDEN)) ||
		    ((m->flags & M_HIDDEN) && i != 0))
			return 0;
		if (m->flags & M_XUIDL) {
			if (m->dup >= md->pool_len)
				return 0;
			len = strnlen(md->pool + m->dup, md->pool_len - m->dup);
			if (!valid_uidl(md->pool + m->dup, len))
				return 0;
		}
		prev = m->end;
	}
	return 1;
}

/*
 * Loads the cache for the open file. Returns 1 when it covers the whole file,
 * 0 when mail was appended after what it covers (md->length), -1 when it is
 * missing or not to be trusted (md's table left empty).
 */
static int cache_load(struct maildrop *md, const struct stat *st, char *buf)
{
	struct cache_header c, now;
	struct stat cs;
	struct iovec iov[3];
	size_t msgs;
	int fd;

	if (md->state < 0)
		return -1;
	if ((fd = userstate_file(md->state, "cache", O_RDONLY)) < 0) {
		if (errno != ENOENT)
			syslog(LOG_NOTICE, "%s: cache not used: %s", md->path,
			    errno == EINVAL ? "not a regular file of the user's "
			    "with one link" : strerror(errno));
		return -1;
	}
	/*
	 * Every count bounded by the mailbox before a byte is hashed or
	 * allocated: a message takes at least a From_ line ("From ", 5
	 * octets), an X-UIDL value at least its own octets and a newline.
	 */
	if (fstat(fd, &cs) || read_full(fd, (char *)&c, sizeof(c), 0) !=
	    sizeof(c) || memcmp(c.magic, cache_magic, sizeof(c.magic)) ||
	    c.msg_size != sizeof(struct message) ||
	    c.segs < 1 || c.segs > MAX_SEGMENTS ||
	    (c.length < st->st_size && c.segs == MAX_SEGMENTS) ||
	    c.dev != (uint64_t)st->st_dev || c.ino != (uint64_t)st->st_ino ||
	    c.length < 0 || c.length > st->st_size ||
	    (c.length == st->st_size && (c.mtime_sec != st->st_mtim.tv_sec ||
	    c.mtime_nsec != st->st_mtim.tv_nsec)) ||
	    (c.length < st->st_size && !c.separated) ||
	    c.count > (uint64_t)c.length / 5 || c.pool_len > (uint64_t)c.length)
		goto fail;
	msgs = c.count * sizeof(struct message);
	if ((uint64_t)cs.st_size != sizeof(c) + msgs + c.pool_len)
		goto fail;
	/*
	 * The table and the pool are read into memory of the session's own, in
	 * one read, and checked there: a mapping of the file would show it
	 * rewritten after the checks. 100,000 entries take 3 ms to read this
	 * way, 0.4 ms to map.
	 */
	md->msg = malloc(msgs ? msgs : 1);
	md->pool = malloc(c.pool_len ? c.pool_len : 1);
	if (!md->msg || !md->pool)
		goto fail;
	iov[0] = (struct iovec){ &now, sizeof(now) };
	iov[1] = (struct iovec){ md->msg, msgs };
	iov[2] = (struct iovec){ md->pool, c.pool_len };
	if (preadv(fd, iov, 3, 0) != cs.st_size || memcmp(&now, &c, sizeof(c)))
		goto fail;
	md->alloc = c.count;
	md->pool_size = c.pool_len;
	if (cache_check(&c, md->msg, msgs, md->pool, c.pool_len) != c.check)
		goto fail;
	md->count = c.count;
	md->pool_len = c.pool_len;
	md->length = c.length;
	md->segs = c.segs;
	memcpy(md->seg, c.seg, sizeof(c.seg));
	md->separated = c.separated;
	if (!table_sane(md) || cache_probes(md, &now, buf) ||
	    now.tail != c.tail || memcmp(now.samples, c.samples,
	    sizeof(c.samples)))
		goto fail;
	close(fd);
	return md->length == st->st_size ? 1 : 0;

fail:
	close(fd);
	free(md->msg);
	free(md->pool);
	md->msg = NULL;
	md->pool = NULL;
	md->count = md->alloc = md->pool_len = md->pool_size = 0;
	md->length = 0;
	md->segs = 0;
	return -1;
}

/* Writes the cache for the table just scanned; a failure costs only speed. */
static void cache_write(struct maildrop *md, char *buf)
{
	struct cache_header c;
	struct stat st;
	char tmp[32];
	size_t msgs = md->count * sizeof(struct message);
	int fd = -1;

	if (md->state < 0 && md->state_path)
		md->state = userstate_open(md->state_path, md->uid, 1);
	if (md->state < 0 || fstat(md->fd, &st))
		goto out;
	memset(&c, 0, sizeof(c));
	memcpy(c.magic, cache_magic, sizeof(c.magic));
	c.msg_size = sizeof(struct message);
	c.segs = md->segs;
	memcpy(c.seg, md->seg, sizeof(c.seg));
	c.separated = md->separated;
	c.dev = st.st_dev;
	c.ino = st.st_ino;
	c.length = md->length;
	c.mtime_sec = st.st_mtim.tv_sec;
	c.mtime_nsec = st.st_mtim.tv_nsec;
	c.count = md->count;
	c.pool_len = md->pool_len;
	if (st.st_size != md->length || cache_probes(md, &c, buf))
		goto out;	/* it grew after we read it: next time */
	if (!(c.check = cache_check(&c, md->msg, msgs, md->pool, md->pool_len)))
		goto out;
	/* Two sessions writing at once make a cache that fails its check. */
	snprintf(tmp, sizeof(tmp), "cache.new");
	unlinkat(md->state, tmp, 0);	/* whatever it is: a new file */
	fd = userstate_file(md->state, tmp, O_WRONLY | O_CREAT | O_EXCL);
	if (fd < 0 || write_full(fd, (char *)&c, sizeof(c), 0) ||
	    write_full(fd, (char *)md->msg, msgs, sizeof(c)) ||
	    write_full(fd, md->pool, md->pool_len, sizeof(c) + msgs) ||
	    renameat(md->state, tmp, md->state, "cache")) {
		syslog(LOG_INFO, "%s: cannot write the cache: %m", md->path);
		unlinkat(md->state, tmp, 0);
	}
out:
	if (fd >= 0)
		close(fd);
}

/* Numbers the messages once the table is complete. */
static int finish_table(struct maildrop *md)
{
	md->first = md->count && (md->msg[0].flags & M_HIDDEN);
	md->visible = md->count - md->first;
	return make_unique(md);
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
		md->first = md->count && (md->msg[0].flags & M_HIDDEN);
		md->visible = md->count - md->first;
		syslog(LOG_DEBUG, "%s: %zu messages from the cache, 0 bytes "
		    "read", md->path, md->count);
		return 0;
	}
	if (r == 0) {
		off_t from = md->length;
		size_t cached = md->count;

		if (!scan(md, from)) {
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
	if (scan(md, 0) || finish_table(md))
		return -1;
	return 1;
}


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
 * Notes the file's times once it has been read, under the locks. When its
 * ctime is older than the clock by then, any later change of the file gives
 * it another (the kernel stamps a change with at least that clock), so an
 * unchanged ctime at QUIT proves the file unchanged without reading it. A
 * ctime as new as the clock could hide a change in the same tick, and on a
 * network file system the stamps come from another clock: then QUIT reads
 * and hashes it all, as it does whenever the times have moved.
 */
static void note_read(struct maildrop *md)
{
	struct timespec now;
	struct stat st;

	md->quick = 0;
	if (fstat(md->fd, &st) || st.st_size != md->length ||
	    !local_times(md->fd) || clock_gettime(CLOCK_REALTIME_COARSE, &now))
		return;
	md->mtime = st.st_mtim;
	md->ctime = st.st_ctim;
	md->quick = now.tv_sec > st.st_ctim.tv_sec ||
	    (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec > st.st_ctim.tv_nsec);
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Whether st shows the file exactly as note_read saw it, and that proves
 * its bytes the ones read. */
static int read_unchanged(const struct maildrop *md, const struct stat *st)
{
	return md->quick && st->st_dev == md->dev && st->st_ino == md->ino &&
	    st->st_size == md->length && same_time(&st->st_mtim, &md->mtime) &&
	    same_time(&st->st_ctim, &md->ctime);
}

int maildrop_open(struct maildrop *md, const char *path, const char *state,
    uid_t uid, const char **err)
{
	struct stat st;
	int tries, fd, fresh;
	char *buf;

	memset(md, 0, sizeof(*md));
	md->fd = -1;
	md->uid = uid;
	md->state = state ? userstate_open(state, uid, 0) : -1;
	if (!(md->path = strdup(path)) ||
	    (state && !(md->state_path = strdup(state)))) {
		*err = "[SYS/TEMP] Out of memory";
		goto fail;
	}
	for (tries = 0; tries < 3; tries++) {
		fd = open_checked(path, uid, &st, err);
		if (fd == -2)
			return 0;	/* no file: an empty maildrop */
		if (fd < 0)
			goto fail;
		md->fd = fd;
		if (lock(md)) {
			if (errno == EAGAIN) {
				syslog(LOG_NOTICE, "%s: locked by another "
				    "program for %d s", path, LOCK_TIMEOUT);
				*err = "[IN-USE] Maildrop is locked by "
				    "another program";
			} else {
				syslog(LOG_ERR, "%s: cannot lock: %m", path);
				*err = "[SYS/TEMP] Cannot lock the maildrop";
			}
			goto fail;
		}
		/* Renamed over while we waited for the lock? Take the new one. */
		if (same_file(path, fd))
			break;
		unlock(md);
		close(fd);
		md->fd = -1;
	}
	if (md->fd < 0) {
		syslog(LOG_ERR, "%s: keeps being replaced", path);
		*err = "[SYS/TEMP] Mailbox keeps changing";
		goto fail;
	}
	md->dev = st.st_dev;
	md->ino = st.st_ino;
	/* Scratch for the journal and the cache, the scan's buffer, and
	 * then RETR's window (see window()). */
	if (!(buf = md->rbuf = malloc(MAILBOX_CHUNK))) {
		*err = "[SYS/TEMP] Out of memory";
		unlock(md);
		goto fail;
	}
	if (journal_recover(md, buf, err)) {
		unlock(md);
		goto fail;
	}
	fresh = read_table(md, buf);
	if (fresh >= 0) {
		note_read(md);
		unlock(md);
		if (fresh)
			cache_write(md, buf);
		md->win_len = 0;
		return 0;
	}
	{
		if (errno == EINVAL) {
			syslog(LOG_ERR, "%s: refused: not an mbox (no From_ "
			    "line at the start)", path);
			*err = "[SYS/PERM] Mailbox is not in mbox format";
		} else {
			syslog(LOG_ERR, "%s: cannot read: %m", path);
			*err = "[SYS/TEMP] Cannot read the mailbox";
		}
		unlock(md);
		goto fail;
	}

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
		got = read_full(md->fd, md->rbuf, MAILBOX_CHUNK, off);
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
static int room(struct maildrop_out *out, size_t n)
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
    struct maildrop_out *out)
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
				if (maildrop_put(out, p, stop - p))
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
	if (held_cr && maildrop_put(out, "\r", 1))
		return -1;
	if ((m->flags & M_NOEOL) && !bol && maildrop_put(out, "\r\n", 2))
		return -1;
	return 0;
}

/*
 * Feeds [from, to) of fd into h. Returns 0, or -1 with errno set (EIO when
 * the file is shorter than that).
 */
static int hash_range(int fd, off_t from, off_t to, char *buf, XXH3_state_t *h)
{
	while (from < to) {
		size_t want = to - from < MAILBOX_CHUNK ?
		    (size_t)(to - from) : MAILBOX_CHUNK;
		ssize_t n = read_full(fd, buf, want, from);

		if (n < 0 || (size_t)n != want) {
			if (n >= 0)
				errno = EIO;
			return -1;
		}
		XXH3_64bits_update(h, buf, n);
		from += n;
	}
	return 0;
}

/* The XXH3 of [from, to) of fd into *out. Returns 0 or -1 (errno set). */
static int hash_of(int fd, off_t from, off_t to, char *buf, uint64_t *out)
{
	XXH3_state_t *h = XXH3_createState();
	int ret = -1;

	if (h && XXH3_64bits_reset(h) == XXH_OK &&
	    !hash_range(fd, from, to, buf, h)) {
		*out = XXH3_64bits_digest(h);
		ret = 0;
	}
	XXH3_freeState(h);
	return ret;
}

/* Copies len bytes from sfd at soff to dfd at doff, hashing them into h
 * unless h is NULL. Every WRITEBACK_CHUNK bytes, their writeback starts, so
 * that the fsync to come finds most of them on their way: writing and
 * syncing 178 MB took 76 ms at once, 48 ms this way. Returns 0 or -1 with
 * errno set. */
static int copy_range(int sfd, off_t soff, int dfd, off_t doff, off_t len,
    char *buf, XXH3_state_t *h)
{
	off_t started = doff;

	while (len > 0) {
		size_t want = len < MAILBOX_CHUNK ? (size_t)len : MAILBOX_CHUNK;
		ssize_t n = read_full(sfd, buf, want, soff);

		if (n < 0 || (size_t)n != want) {
			if (n >= 0)
				errno = EIO;
			return -1;
		}
		if (h)
			XXH3_64bits_update(h, buf, n);
		if (write_full(dfd, buf, n, doff))
			return -1;
		soff += n;
		doff += n;
		len -= n;
		if (doff - started >= WRITEBACK_CHUNK || len == 0) {
			sync_file_range(dfd, started, doff - started,
			    SYNC_FILE_RANGE_WRITE);
			started = doff;
		}
	}
	return 0;
}

/*
 * Whether the first md->length bytes are still the ones that were read (each
 * segment hashes as it did), the file the one that was opened; *prefix gets
 * the XXH3 of [0, start), from the same single pass over the file.
 */
static int unchanged(struct maildrop *md, char *buf, off_t start,
    uint64_t *prefix)
{
	XXH3_state_t *h = XXH3_createState(), *p = XXH3_createState();
	struct stat st;
	off_t off = 0;
	int i = 0, same = 0;

	if (!h || !p || fstat(md->fd, &st) || st.st_size < md->length ||
	    !same_file(md->path, md->fd) || XXH3_64bits_reset(h) != XXH_OK ||
	    XXH3_64bits_reset(p) != XXH_OK || md->segs < 1)
		goto out;
	while (i < md->segs) {
		off_t to = md->seg[i].end;
		size_t want = to - off < MAILBOX_CHUNK ?
		    (size_t)(to - off) : MAILBOX_CHUNK;
		ssize_t n;

		if (to < off || to > md->length)
			goto out;
		if (off == to) {	/* the end of a segment */
			if (XXH3_64bits_digest(h) != md->seg[i].digest ||
			    XXH3_64bits_reset(h) != XXH_OK)
				goto out;
			i++;
			continue;
		}
		n = read_full(md->fd, buf, want, off);
		if (n < 0 || (size_t)n != want)
			goto out;
		XXH3_64bits_update(h, buf, n);
		if (off < start)
			XXH3_64bits_update(p, buf, start - off < n ?
			    (size_t)(start - off) : (size_t)n);
		off += n;
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
 * (note_read) where they prove it, else by its hashes (unchanged). *prefix
 * gets the XXH3 of [0, start).
 */
static int still_as_read(struct maildrop *md, char *buf, off_t start,
    uint64_t *prefix)
{
	struct stat st;

	if (!fstat(md->fd, &st) && read_unchanged(md, &st) &&
	    same_file(md->path, md->fd))
		return !hash_of(md->fd, 0, start, buf, prefix);
	return unchanged(md, buf, start, prefix);
}

/*
 * The update journal, in the state directory. It holds the new bytes of the
 * mailbox from start to new_end, behind this header. It is written whole,
 * synced and renamed into place before the mailbox is touched; from then on
 * it alone can finish the update, and it is removed only after the mailbox
 * has been rewritten and synced. DESIGN in README says why this is enough.
 */
struct journal {
	char magic[8];
	uint64_t dev, ino;		/* the mailbox */
	uint64_t start, old_end, new_end;
	uint64_t prefix;		/* XXH3 of the mailbox's [0, start) */
	uint64_t tail;			/* XXH3 of the old [new_end, old_end) */
	uint64_t data;			/* XXH3 of the new bytes */
	uint64_t check;			/* XXH3 of all the above */
};

static const char journal_magic[8] = "P3JRNL01";
static const char journal_name[] = "journal";
static const char journal_new[] = "journal.new";
/* A journal carried out, to remove once the client is gone (maildrop_tidy):
 * freeing its blocks took 30 ms for 178 MB. */
static const char journal_old[] = "journal.old";

struct range {
	int fd;
	off_t off, len;
};

static uint64_t journal_check(const struct journal *j)
{
	return XXH3_64bits(j, offsetof(struct journal, check));
}

/* Writes the journal from the ranges given. Returns 0, or -1 (errno set)
 * with no journal left behind. */
static int journal_write(struct maildrop *md, struct journal *j,
    const struct range *r, size_t nr, char *buf)
{
	XXH3_state_t *h = XXH3_createState();
	off_t off = sizeof(*j), total = sizeof(*j);
	size_t i;
	int fd, ret = -1, saved, renamed = 0;

	unlinkat(md->state, journal_new, 0);
	fd = openat(md->state, journal_new, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || !h || XXH3_64bits_reset(h) != XXH_OK)
		goto out;
	/* All the room at once: a full disk fails here, before any copying,
	 * and the blocks are found in one go rather than at writeback. */
	for (i = 0; i < nr; i++)
		total += r[i].len;
	if (fallocate(fd, 0, 0, total) && errno != EOPNOTSUPP &&
	    errno != ENOSYS)
		goto out;
	for (i = 0; i < nr; i++) {
		if (copy_range(r[i].fd, r[i].off, fd, off, r[i].len, buf, h))
			goto out;
		off += r[i].len;
	}
	memcpy(j->magic, journal_magic, sizeof(j->magic));
	j->data = XXH3_64bits_digest(h);
	j->check = journal_check(j);
	if (write_full(fd, (const char *)j, sizeof(*j), 0) || fsync(fd) ||
	    renameat(md->state, journal_new, md->state, journal_name))
		goto out;
	renamed = 1;
	if (fsync(md->state))
		goto out;
	ret = 0;
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
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

/* Carries the journal out: its bytes over the mailbox from start, the file
 * cut at new_end and synced, then the journal renamed out of the way, to be
 * removed later. The rename is not synced: a journal that comes back after
 * a power loss finds the mailbox already cut and is only removed again.
 * Returns 0 or -1. */
static int journal_apply(struct maildrop *md, const struct journal *j,
    char *buf)
{
	int fd = userstate_file(md->state, journal_name, O_RDONLY), ret = -1,
	    saved;

	if (fd >= 0 && !copy_range(fd, sizeof(*j), md->fd, j->start,
	    j->new_end - j->start, buf, NULL) &&
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
 * At open, under the locks: finishes an update that was cut short (a kill,
 * a crash, a power loss). The journal tells where it stopped: if the old
 * bytes past new_end are still there the file was not cut yet, and the
 * journal is carried out again, after taking in any mail appended since;
 * otherwise only the journal's removal was missing. Returns 0, or -1 with
 * *err set when the maildrop must not be served.
 */
static int journal_recover(struct maildrop *md, char *buf, const char **err)
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
	if (read_full(fd, (char *)&j, sizeof(j), 0) != sizeof(j) ||
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
	    hash_of(fd, sizeof(j), js.st_size, buf, &h) || h != j.data)
		goto damaged;
	if (hash_of(md->fd, 0, j.start, buf, &h) || h != j.prefix)
		goto other;
	if ((uint64_t)st.st_size >= j.old_end &&
	    !hash_of(md->fd, j.new_end, j.old_end, buf, &h) && h == j.tail) {
		/* Not cut yet: do it all again, with any mail appended. */
		if ((uint64_t)st.st_size > j.old_end) {
			struct range r[2] = {
				{ fd, sizeof(j), j.new_end - j.start },
				{ md->fd, j.old_end, st.st_size - j.old_end }
			};

			j.new_end += st.st_size - j.old_end;
			j.old_end = st.st_size;
			if (hash_of(md->fd, j.new_end, j.old_end, buf, &j.tail) ||
			    journal_write(md, &j, r, 2, buf))
				goto fail;
		}
		close(fd);
		if (journal_apply(md, &j, buf))
			goto fail_closed;
	} else if ((uint64_t)st.st_size >= j.new_end &&
	    !hash_of(md->fd, j.start, j.new_end, buf, &h) && h == j.data) {
		close(fd);	/* cut and synced: only the removal was left */
		if (unlinkat(md->state, journal_name, 0) || fsync(md->state))
			goto fail_closed;
	} else
		goto neither;
	syslog(LOG_NOTICE, "%s: finished an interrupted update", md->path);
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

fail:
	close(fd);
fail_closed:
	syslog(LOG_ERR, "%s: cannot finish an interrupted update: %m",
	    md->path);
	*err = "[SYS/TEMP] Cannot finish an interrupted update";
	return -1;
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
 * UPDATE. Under the locks, and only if the file still starts with exactly the
 * bytes that were read, the kept messages from the first deleted one on and
 * any mail appended since are written to the journal, which is then carried
 * out. Deleting only from the end needs no journal: cutting the file is one
 * step. Signals that would stop us half-way wait until it is done.
 */
long maildrop_commit(struct maildrop *md, const char **err)
{
	sigset_t block, saved;
	struct journal j;
	struct range *r;
	struct stat st;
	size_t i, nr = 0, first = md->count;
	long deleted = 0;
	char *buf;

	for (i = 0; i < md->count; i++)
		if (md->msg[i].flags & M_DELETED) {
			if (first == md->count)
				first = i;
			deleted++;
		}
	if (!deleted)
		return 0;
	buf = malloc(MAILBOX_CHUNK);
	r = calloc(md->count - first + 1, sizeof(*r));
	if (!buf || !r) {
		free(buf);
		free(r);
		*err = "[SYS/TEMP] Out of memory";
		return -1;
	}
	if (lock(md)) {
		syslog(LOG_ERR, "%s: UPDATE: cannot lock: %m", md->path);
		*err = "[SYS/TEMP] Cannot lock the maildrop, nothing deleted";
		deleted = -1;
		goto out_unlocked;
	}
	memset(&j, 0, sizeof(j));
	j.start = md->msg[first].from;
	if (!still_as_read(md, buf, j.start, &j.prefix) || fstat(md->fd, &st)) {
		syslog(LOG_ERR, "%s: UPDATE: changed by another program since "
		    "it was read; nothing deleted", md->path);
		*err = "[SYS/TEMP] Mailbox changed by another program, "
		    "nothing deleted";
		deleted = -1;
		goto out;
	}
	j.dev = st.st_dev;
	j.ino = st.st_ino;
	j.old_end = st.st_size;
	j.new_end = j.start;
	for (i = first; i <= md->count; i++) {
		off_t from = i < md->count ? md->msg[i].from : md->length;
		off_t to = i + 1 < md->count ? md->msg[i + 1].from :
		    i < md->count ? md->length : st.st_size;

		if (to == from || (i < md->count &&
		    (md->msg[i].flags & M_DELETED)))
			continue;
		if (nr && r[nr - 1].off + r[nr - 1].len == from)
			r[nr - 1].len += to - from;
		else
			r[nr++] = (struct range){ md->fd, from, to - from };
		j.new_end += to - from;
	}
	sigfillset(&block);
	sigprocmask(SIG_BLOCK, &block, &saved);
	if (j.new_end == j.start) {
		/* only the end goes: one cut, nothing to journal */
		if (ftruncate(md->fd, j.start) || fsync(md->fd)) {
			syslog(LOG_ERR, "%s: UPDATE: cannot cut the file: %m",
			    md->path);
			*err = "[SYS/TEMP] Update failed";
			deleted = -1;
		}
	} else if ((md->state < 0 && (!md->state_path ||
	    (md->state = userstate_open(md->state_path, md->uid, 1)) < 0)) ||
	    hash_of(md->fd, j.new_end, j.old_end, buf, &j.tail) ||
	    journal_write(md, &j, r, nr, buf)) {
		syslog(LOG_ERR, "%s: UPDATE: cannot write the journal: %s; "
		    "nothing deleted", md->path, md->state < 0 ?
		    "no state directory" : strerror(errno));
		*err = "[SYS/TEMP] Cannot write the update journal, "
		    "nothing deleted";
		deleted = -1;
	} else if (journal_apply(md, &j, buf))
		goto broken;
	if (md->tidy && ending_signal())
		maildrop_tidy(md);	/* what the reply was to wait for */
	sigprocmask(SIG_SETMASK, &saved, NULL);
	goto out;

broken:
	syslog(LOG_CRIT, "%s: UPDATE failed half-way: %m; the journal will "
	    "finish it at the next login", md->path);
	*err = "[SYS/TEMP] Update failed, it will be finished at the next login";
	deleted = -1;
	sigprocmask(SIG_SETMASK, &saved, NULL);
out:
	unlock(md);
out_unlocked:
	free(buf);
	free(r);
	return deleted;
}

void maildrop_tidy(struct maildrop *md)
{
	if (md->tidy && md->state >= 0)
		unlinkat(md->state, journal_old, 0);
	md->tidy = 0;
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
