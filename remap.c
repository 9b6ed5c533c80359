/*
 * Two clients at once (remap.h): when another session's QUIT, or another
 * program, rewrote the mailbox during this session, the file is read again
 * under the locks and each message of the session's table found in it by
 * what it is, not where it was. The session's numbers and unique-ids stay
 * as they were (RFC 1939); a message no longer there is marked M_GONE; mail
 * that came meanwhile stays in the file for the next session. Only a change
 * that keeps the messages found in their order, and adds mail only after
 * them, can be followed: anything else (a message edited in place) is
 * refused, as before.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "commit.h"
#include "journal.h"
#include "mailfile.h"
#include "maildrop.h"
#include "remap.h"
#include "userstate.h"
#include "xxh3.h"

/* The scanner's flags, which a message keeps wherever it is in the file. */
#define M_SCANNED	(M_XUIDL | M_NOEOL | M_HIDDEN | M_NOEOH | M_STAMPED)

/* No message: an old one not found, a new one not matched. */
#define NONE		SIZE_MAX

/* The messages of the old table, by what they are. */
struct index {
	const struct maildrop *md;
	size_t *slot;		/* old index + 1, or 0 for an empty slot */
	size_t mask;
};

static uint64_t key(const struct message *m)
{
	return XXH3_64bits(m->uid, sizeof(m->uid)) ^ (uint64_t)m->size;
}

/* Whether a (of old, the session's table) and b (of new, the file now) are
 * the same message: the unique-id as the scheme made it (in the native one
 * the XXH3 of the From_ line, the headers and the body's start and length),
 * the X-UIDL value, the wire size and the lengths of the From_ line, the
 * headers and the body. */
static int same(const struct maildrop *old, const struct message *a,
    const struct maildrop *new, const struct message *b)
{
	if (a->size != b->size || a->data - a->from != b->data - b->from ||
	    a->end - a->data != b->end - b->data ||
	    (a->flags & M_SCANNED) != (b->flags & M_SCANNED) ||
	    memcmp(a->uid, b->uid, sizeof(a->uid)))
		return 0;
	return !(a->flags & M_XUIDL) ||
	    !strcmp(old->pool + a->uidl.xuidl, new->pool + b->uidl.xuidl);
}

/* Indexes the old messages that are not gone already. 0 or -1 (ENOMEM). */
static int index_make(struct index *x, const struct maildrop *md)
{
	size_t i, n = 16;

	while (n < 2 * md->count)
		n *= 2;
	x->md = md;
	x->mask = n - 1;
	if (!(x->slot = calloc(n, sizeof(*x->slot))))
		return -1;
	for (i = 0; i < md->count; i++) {
		size_t k;

		if (md->msg[i].flags & M_GONE)
			continue;
		for (k = key(&md->msg[i]) & x->mask; x->slot[k];
		    k = (k + 1) & x->mask)
			;
		x->slot[k] = i + 1;
	}
	return 0;
}

/* The first old message at or after index from that is b of new, or NONE. */
static size_t index_find(const struct index *x, size_t from,
    const struct maildrop *new, const struct message *b)
{
	size_t k, best = NONE;

	for (k = key(b) & x->mask; x->slot[k]; k = (k + 1) & x->mask) {
		size_t i = x->slot[k] - 1;

		if (i >= from && i < best &&
		    same(x->md, &x->md->msg[i], new, b))
			best = i;
	}
	return best;
}

/* The old message, not gone before, that started at offset off, or NONE.
 * The table is in file order: a message gone before sits, empty, where the
 * next one starts (take). */
static size_t old_at(const struct maildrop *md, off_t off)
{
	size_t lo = 0, hi = md->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (md->msg[mid].from < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < md->count && md->msg[lo].from == off; lo++)
		if (!(md->msg[lo].flags & M_GONE))
			return lo;
	return NONE;
}

/*
 * Whether the mail after the messages found is a message of ours edited in
 * place (or cut short) rather than mail that came: it starts where one that
 * is gone now started, with the same From_ line. From where another
 * session's UPDATE since our read began to rewrite the file (fence, or -1),
 * offsets are no longer ours: what lies there is taken for mail that came.
 * Logged.
 */
static int edited(const struct maildrop *md, const struct maildrop *new,
    const size_t *to, size_t tail, off_t fence)
{
	size_t i, j;

	for (j = tail; j < new->count; j++) {
		const struct message *b = &new->msg[j];

		if (fence >= 0 && b->from >= fence)
			break;

		i = old_at(md, b->from);
		if (i != NONE && to[i] == NONE &&
		    !(md->msg[i].flags & M_GONE) &&
		    md->msg[i].from_id == b->from_id) {
			syslog(LOG_ERR, "%s: changed by another program: the "
			    "message at offset %lld was edited in place",
			    md->path, (long long)b->from);
			return 1;
		}
	}
	return 0;
}

/*
 * Finds each old message in new: to[i] gets its index there, or NONE. The
 * new messages must be the old ones still there, in their order, and after
 * them only messages that are none of those (mail that came) and not one
 * of ours edited. *cut gets where that mail starts (new->length when none
 * came). Returns 0, or -1 (logged) when new cannot be mapped so.
 */
static int match(const struct maildrop *md, const struct maildrop *new,
    size_t *to, off_t *cut)
{
	off_t fence;
	struct index x;
	size_t i, j, next = 0, tail = NONE;

	if (index_make(&x, md))
		return -1;
	for (i = 0; i < md->count; i++)
		to[i] = NONE;
	for (j = 0; j < new->count; j++) {
		i = index_find(&x, next, new, &new->msg[j]);
		if (i != NONE && tail != NONE) {
			syslog(LOG_ERR, "%s: changed by another program in a "
			    "way that cannot be followed: a message read at "
			    "the start of the session is at offset %lld, after "
			    "one that is new or changed", md->path,
			    (long long)new->msg[j].from);
			free(x.slot);
			return -1;
		}
		if (i == NONE) {
			if (tail == NONE)
				tail = j;
			continue;
		}
		to[i] = j;
		next = i + 1;
	}
	free(x.slot);
	if (md->state < 0 || !userstate_rewritten_from(md->state, md->dev,
	    md->ino, &md->ctime, &fence))
		fence = -1;
	if (tail != NONE && edited(md, new, to, tail, fence))
		return -1;
	*cut = tail == NONE ? new->length : new->msg[tail].from;
	return 0;
}

/* The new table's offsets on the old entries that were found, M_GONE on
 * the rest (empty, where the next one starts, so that the table stays in
 * file order), and what the table was made from: the file up to cut.
 * Returns the messages found gone. */
static size_t take(struct maildrop *md, const struct maildrop *new,
    const size_t *to, off_t cut, uint64_t cut_digest)
{
	size_t i, gone = 0;
	off_t next = cut;

	for (i = md->count; i-- > 0;) {
		struct message *m = &md->msg[i];

		if (to[i] != NONE) {
			m->from = new->msg[to[i]].from;
			m->data = new->msg[to[i]].data;
			m->end = new->msg[to[i]].end;
			next = m->from;
			continue;
		}
		if (!(m->flags & M_GONE)) {
			m->flags |= M_GONE;
			gone++;
		}
		m->from = m->data = m->end = next;
	}
	md->length = cut;
	if (cut == new->length) {
		memcpy(md->seg, new->seg, sizeof(md->seg));
		md->segs = new->segs;
		md->ends_at_boundary = new->ends_at_boundary;
	} else {
		md->seg[0].end = cut;
		md->seg[0].digest = cut_digest;
		md->segs = 1;
		md->ends_at_boundary = 1;	/* a From_ line follows */
	}
	md->win_len = 0;
	md->remaps++;
	return gone;
}

int remap_locked(struct maildrop *md, char *buf)
{
	struct maildrop new;
	const char *err;
	size_t *to = NULL, gone;
	off_t cut;
	uint64_t digest = 0;
	int ret = -1;

	if (md->state < 0 && md->state_path)
		md->state = userstate_open(md->state_path, md->uid, 0);
	if (journal_recover(md, buf, &err))
		return -1;
	if (!mailfile_at_path(md->path, md->fd)) {
		syslog(LOG_ERR, "%s: replaced by another file during the "
		    "session", md->path);
		return -1;
	}
	memset(&new, 0, sizeof(new));
	new.fd = md->fd;
	new.state = -1;
	new.path = md->path;
	new.scheme = md->scheme;
	new.validity = md->validity;
	new.rbuf = buf;
	if (maildrop_scan(&new, 0)) {
		syslog(LOG_ERR, "%s: cannot read it again: %s", md->path,
		    errno == EINVAL ? "no longer an mbox" : strerror(errno));
		goto out;
	}
	if (!(to = calloc(md->count + 1, sizeof(*to))) ||
	    match(md, &new, to, &cut) ||
	    (cut < new.length && mailfile_hash(md->fd, 0, cut, buf, &digest)))
		goto out;
	gone = take(md, &new, to, cut, digest);
	commit_note_read(md);
	syslog(LOG_INFO, "%s: rewritten by another session or program: "
	    "read again, %zu message%s gone, %lld bytes of new mail kept for "
	    "the next session", md->path, gone, gone == 1 ? "" : "s",
	    (long long)(new.length - cut));
	ret = 1;
out:
	free(to);
	free(new.msg);
	free(new.pool);
	return ret;
}

int maildrop_fresh(struct maildrop *md, const char **err)
{
	struct stat st;
	int r;

	if (md->fd < 0)
		return 0;	/* no file at login: mail since waits */
	if (!fstat(md->fd, &st) && commit_times_same(md, &st))
		return 0;
	if (!md->rbuf && !(md->rbuf = malloc(MAILBOX_CHUNK))) {
		*err = "[SYS/TEMP] Out of memory, try again";
		return -2;
	}
	if (mailfile_lock(md)) {
		if (errno == EAGAIN) {
			syslog(LOG_NOTICE, "%s: changed, and locked by another "
			    "program for %d s", md->path, LOCK_TIMEOUT);
			*err = "[IN-USE] Maildrop is locked by another "
			    "program, try again";
			return -2;
		}
		syslog(LOG_ERR, "%s: cannot lock: %m", md->path);
		*err = "[SYS/TEMP] Cannot lock the maildrop";
		return -2;
	}
	r = remap_locked(md, md->rbuf);
	mailfile_unlock(md);
	if (r < 0) {
		*err = "[SYS/TEMP] Maildrop changed by another program; log "
		    "in again";
		return -1;
	}
	return 1;
}
