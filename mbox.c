/*
 * The mbox scanner (mbox.h): the README's "Mailbox" rules, one pass over the
 * bytes, line by line, with lines longer than the caller's buffer taken in
 * pieces; and the unique-ids made from what it hashed. No file is read here:
 * maildrop.c feeds the chunks it reads, fuzz/fuzz-mbox.c its input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lines.h"
#include "mbox.h"
#include "params.h"
#include "xxh3.h"

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

/*
 * The scanner state. The empty line most recently seen is held back, since
 * it is a separator (not part of the message) if a From_ line follows it or
 * the file ends after it.
 */
struct mbox_scan {
	struct maildrop *md;
	XXH3_state_t *whole;	/* every byte taken: the new segment */
	XXH3_state_t *id;	/* From_ line and kept headers: the unique-id */
	XXH3_state_t *body;	/* the first UID_BODY bytes of the body */
	size_t body_left;	/* of those still to hash */
	uint64_t body_len;	/* octets of the body, as stored */
	struct message cur;
	int in_message, in_from, in_body, header_kept;
	int pending;		/* bytes of a held-back empty line, or 0 */
	int at_separator;	/* file start, or the previous line was empty */
	int subject, ximap;	/* pseudo-message signs */
	int eoh;		/* an empty line was taken into cur */
	off_t next;		/* end of the last line taken into cur */
	off_t pos;		/* file offset of the next byte fed */
	int midline;		/* that byte is inside a line taken in pieces */
	size_t linelen;		/* of that line, so far */
	int lastcr;		/* its last piece ended with a CR */
	char xuidl[MAX_UIDL + 1];
};

static int grow(struct maildrop *md)
{
	struct message *p;
	size_t n = md->alloc ? md->alloc * 2 : 1024;

	if (!(p = realloc(md->msg, n * sizeof(*p))))
		return -1;
	md->msg = p;
	md->alloc = n;
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
static int scan_finish(struct mbox_scan *s)
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
		m->uidl.xuidl = at;
		m->flags |= M_XUIDL;
	}
	if (md->count == 0 && s->subject && s->ximap)
		m->flags |= M_HIDDEN;
	if (!s->eoh)
		m->flags |= M_NOEOH;
	if (md->count == md->alloc && grow(md))
		return -1;
	md->msg[md->count++] = *m;
	return 0;
}

static void scan_begin(struct mbox_scan *s, off_t off)
{
	memset(&s->cur, 0, sizeof(s->cur));
	s->cur.from = s->cur.data = s->next = off;
	s->in_message = 1;
	s->in_body = 0;
	s->header_kept = 1;
	s->subject = s->ximap = s->eoh = 0;
	s->xuidl[0] = '\0';
	XXH3_128bits_reset(s->id);
	XXH3_64bits_reset(s->body);
	s->body_left = UID_BODY;
	s->body_len = 0;
}

/* Counts the body octets in p and hashes what is left of its first UID_BODY. */
static void body_id(struct mbox_scan *s, const char *p, size_t len)
{
	s->body_len += len;
	if (len > s->body_left)
		len = s->body_left;
	if (len) {
		XXH3_64bits_update(s->body, p, len);
		s->body_left -= len;
	}
}

/* Takes the held-back empty line into the message as content: the message
 * has an empty line, which ends its headers (or is in its body). */
static void scan_flush(struct mbox_scan *s)
{
	if (!s->pending)
		return;
	s->cur.size += 2;
	body_id(s, "\r\n" + (s->pending == 1), s->pending);
	s->next += s->pending;
	s->pending = 0;
	s->eoh = 1;
}

static int header_is(const char *line, size_t len, const char *name, size_t n)
{
	return len > n && line[n] == ':' && !strncasecmp(line, name, n);
}

/* header_is for a literal name, whose length the compiler knows. */
#define HEADER_IS(line, len, name) \
	header_is(line, len, name, sizeof(name) - 1)

/* Copies a header's value, trimmed, if it is a valid unique-id. */
static void take_xuidl(struct mbox_scan *s, const char *line, size_t len)
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
static void scan_header(struct mbox_scan *s, const char *line, size_t len)
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
static int scan_piece(struct mbox_scan *s, off_t off, const char *p, size_t len,
    int first, int lf, size_t total, int cr)
{
	int done = lf || total != (size_t)-1;
	size_t text = len - (lf && cr && len);	/* without a final CR */

	if (first && s->at_separator && len >= 5 && !memcmp(p, "From ", 5)) {
		s->pending = 0;		/* it was a separator */
		if (scan_finish(s))
			return -1;
		scan_begin(s, off);
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
static size_t header_lines(struct mbox_scan *s, const char *p, const char *e)
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
 * Body lines from p towards e: all they change is the size, and their
 * bytes go to the body hash as one span, up to the empty line before the
 * next From_ (lines_body). Returns the bytes taken, all of them whole lines.
 */
static size_t body_lines(struct mbox_scan *s, const char *p, const char *e)
{
	off_t size = 0;
	const char *q = lines_body(p, e, &size);

	if (q > p) {
		body_id(s, p, q - p);
		s->cur.size += size;
	}
	return q - p;
}

struct mbox_scan *mbox_start(struct maildrop *md, off_t from)
{
	struct mbox_scan *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->md = md;
	s->at_separator = 1;
	s->pos = from;
	s->whole = XXH3_createState();
	s->body = XXH3_createState();
	s->id = XXH3_createState();
	if (!s->whole || !s->body || !s->id ||
	    XXH3_64bits_reset(s->whole) != XXH_OK) {
		mbox_free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

/* What mbox_feed takes of buf[0, have): p advances over the lines taken. */
static int feed_lines(struct mbox_scan *s, const char *buf, size_t have,
    size_t room, int eof, size_t *taken)
{
	size_t p = 0, took;

	for (;;) {
		const char *nl;

		if (s->in_message && !s->in_body && !s->in_from &&
		    !s->midline &&
		    (took = header_lines(s, buf + p, buf + have))) {
			p += took;
			s->next = s->pos + p;
			continue;
		}
		if (s->in_body && !s->at_separator && !s->midline &&
		    (took = body_lines(s, buf + p, buf + have))) {
			p += took;
			s->next = s->pos + p;
			continue;
		}
		nl = have > p ? memchr(buf + p, '\n', have - p) : NULL;
		if (nl) {
			size_t len = nl - (buf + p);
			int cr = len ? buf[p + len - 1] == '\r' : s->lastcr;

			s->linelen += len;
			if (scan_piece(s, s->pos + p, buf + p, len,
			    !s->midline, 1, s->linelen, cr))
				return -1;
			p += len + 1;
			s->midline = 0;
			s->linelen = 0;
			s->lastcr = 0;
			continue;
		}
		break;
	}
	if (eof) {
		if (have > p || s->midline) {
			s->linelen += have - p;
			if (scan_piece(s, s->pos + p, buf + p, have - p,
			    !s->midline, 0, s->linelen, 0))
				return -1;
		}
		p = have;
	} else if (p == 0 && have == room) {
		/* a line longer than the buffer: take this piece */
		s->linelen += have;
		if (scan_piece(s, s->pos, buf, have, !s->midline, 0,
		    (size_t)-1, 0))
			return -1;
		s->lastcr = buf[have - 1] == '\r';
		s->midline = 1;
		p = have;
	}
	*taken = p;
	return 0;
}

ssize_t mbox_feed(struct mbox_scan *s, const char *buf, size_t have,
    size_t room, int eof)
{
	size_t taken;

	if (feed_lines(s, buf, have, room, eof, &taken))
		return -1;
	XXH3_64bits_update(s->whole, buf, taken);
	s->pos += taken;
	return taken;
}

int mbox_end(struct mbox_scan *s)
{
	struct maildrop *md = s->md;
	int ret = -1;

	/* Where a From_ line appended later would start a message. */
	md->ends_at_boundary = s->at_separator;
	s->pending = 0;		/* an empty line at the end is a separator */
	if (!scan_finish(s)) {
		md->length = s->pos;
		md->seg[md->segs].end = md->length;
		md->seg[md->segs++].digest = XXH3_64bits_digest(s->whole);
		ret = 0;
	}
	mbox_free(s);
	return ret;
}

void mbox_free(struct mbox_scan *s)
{
	int saved = errno;

	if (s) {
		XXH3_freeState(s->whole);
		XXH3_freeState(s->body);
		XXH3_freeState(s->id);
		free(s);
	}
	errno = saved;
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
		uint32_t at = m->uidl.xuidl;
		const char *v = at < md->pool_len ? md->pool + at : "";
		size_t room = at < md->pool_len ? md->pool_len - at : 0;

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
	if (m->uidl.suffix)
		len += snprintf(buf + 32, MAX_UIDL + 1 - 32, ".%u",
		    (unsigned)m->uidl.suffix);
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
 * An X-UIDL value seen before gives way to the message's hash, and a hash
 * seen before gets the first suffix (.2, .3, ...) that no earlier message
 * has. Two open-addressing tables keep it O(messages): ids, of the ids given
 * out, and bases, of the last message given each hash. A later copy of that
 * hash starts at the suffix after that message's, since the ones below were
 * all taken then and still are; trying each from .2 on made 16,000 copies of
 * a message take 23 s. The ids are the ones that made, so no client sees
 * its UIDLs change.
 */
int mbox_unique(struct maildrop *md)
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
		m->uidl.suffix = !*base ? 0 : md->msg[*base - 1].uidl.suffix ?
		    md->msg[*base - 1].uidl.suffix + 1 : 2;
		for (;;) {
			len = maildrop_uidl(md, m, a);
			if (!*(id = id_slot(md, ids, mask, a, len, b)))
				break;
			m->uidl.suffix = m->uidl.suffix ? m->uidl.suffix + 1 : 2;
		}
		*id = *base = i + 1;
	}
	free(ids);
	free(bases);
	return 0;
}

void mbox_number(struct maildrop *md)
{
	md->first = md->count && (md->msg[0].flags & M_HIDDEN);
	md->visible = md->count - md->first;
}

int mbox_sane(const struct maildrop *md)
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
		    (m->flags & ~(M_XUIDL | M_NOEOL | M_HIDDEN | M_NOEOH)) ||
		    ((m->flags & M_HIDDEN) && i != 0))
			return 0;
		if (m->flags & M_XUIDL) {
			if (m->uidl.xuidl >= md->pool_len)
				return 0;
			len = strnlen(md->pool + m->uidl.xuidl,
			    md->pool_len - m->uidl.xuidl);
			if (!valid_uidl(md->pool + m->uidl.xuidl, len))
				return 0;
		}
		prev = m->end;
	}
	return 1;
}
