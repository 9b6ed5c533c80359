/*
 * The mbox scanner (mbox.h): the README's "Mailbox" rules, one pass over the
 * bytes, line by line, with lines longer than the caller's buffer taken in
 * pieces, keeping in each entry what its unique-id is made of under the -i
 * scheme (uidl.c prints them and makes them distinct). No file is read here:
 * maildrop.c feeds the chunks it reads, fuzz/fuzz-mbox.c its input.
 */
#include <errno.h>
#include <md5.h>
#include <stdint.h>
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
	enum uidl_kind kind;	/* md->scheme.kind */
	/* -i popa3d: the message as popa3d 1.0.3 reads its headers */
	MD5_CTX md5;		/* of its "fixed" lines */
	int p3_header;		/* popa3d's headers go on: only a line of a
				 * bare LF ends them, not CR LF */
	int p3_fixed;		/* the line being taken is hashed */
	int p3_received;	/* a Received: line was seen */
	/* -i dovecot, uw */
	uint32_t xuid;		/* the message's X-UID, or 0 */
	int base_seen;		/* the first message's X-IMAPbase (or X-IMAP)
				 * was looked at: the first such header counts,
				 * over a UIDVALIDITY saved before */
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

/*
 * -i dovecot, uw: whether the message in s->cur has the id its X-UID gives
 * it, and if so, the X-UID and the UIDVALIDITY in its uid. It needs an
 * X-UID and a UIDVALIDITY. The order of the X-UIDs is not checked: Dovecot
 * and c-client leave them rising in file order, and a rule that looked at
 * the message before would change an id when that one is deleted. A message
 * without keeps the XXH3 id (README "Unique-ids"); two with one X-UID are
 * told apart by a suffix, as copies are.
 */
static int stamped(struct mbox_scan *s, const struct maildrop *md)
{
	if (!s->xuid || !md->validity)
		return 0;
	memset(s->cur.uid, 0, sizeof(s->cur.uid));
	memcpy(s->cur.uid, &s->xuid, 4);
	memcpy(s->cur.uid + 4, &md->validity, 4);
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
	if (s->kind == UIDL_POPA3D)
		MD5Final(m->uid, &s->md5);
	else if ((s->kind == UIDL_DOVECOT || s->kind == UIDL_UW) &&
	    stamped(s, md))
		m->flags |= M_STAMPED;
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
	MD5Init(&s->md5);
	s->p3_header = 1;
	s->p3_fixed = s->p3_received = 0;
	s->xuid = 0;
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
/* Whether the line starts with name, its colon included, in any case. */
#define PREFIX_IS(line, len, name) \
	((len) >= sizeof(name) - 1 && !strncasecmp(line, name, sizeof(name) - 1))

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

/*
 * A header's value as a number from 1 to 2^32 - 1 (X-UID, the UIDVALIDITY
 * that starts X-IMAPbase and X-IMAP): digits after blanks, ending at a blank
 * or the line's end. 0 when it is no such number.
 */
static uint32_t header_number(const char *line, size_t len, size_t name)
{
	const char *v = line + name + 1, *e = line + len;
	uint64_t n = 0;

	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	if (v == e || *v < '0' || *v > '9')
		return 0;
	for (; v < e && *v >= '0' && *v <= '9'; v++)
		if ((n = n * 10 + (*v - '0')) > UINT32_MAX)
			return 0;
	if (v < e && *v != ' ' && *v != '\t' && *v != '\r')
		return 0;
	return n;
}

/*
 * -i popa3d: popa3d 1.0.3's verdict on a line that starts with line[0,
 * len), its first piece: whether its bytes go into the MD5. Its "fixed"
 * lines are the first Received:, every Delivered-To:, Date: and
 * Message-ID: before the first Received:, and every X-Delivery-ID: with a
 * capital X; names in any case otherwise, a continuation line as the line
 * before it. A first piece is the whole line, or at least MAILBOX_CHUNK
 * bytes of it, more than any of those names.
 */
static void p3_line(struct mbox_scan *s, const char *line, size_t len)
{
	switch (len ? line[0] : '\0') {
	case ' ': case '\t':
		break;
	case 'R': case 'r':
		s->p3_fixed = !s->p3_received &&
		    (s->p3_received = PREFIX_IS(line, len, "Received:"));
		break;
	case 'D': case 'd':
		s->p3_fixed = PREFIX_IS(line, len, "Delivered-To:") ||
		    (!s->p3_received && PREFIX_IS(line, len, "Date:"));
		break;
	case 'M': case 'm':
		s->p3_fixed = !s->p3_received &&
		    PREFIX_IS(line, len, "Message-ID:");
		break;
	case 'X':
		s->p3_fixed = PREFIX_IS(line, len, "X-Delivery-ID:");
		break;
	default:
		s->p3_fixed = 0;
	}
}

/* -i popa3d: a piece of a line in popa3d's headers, first set on the
 * line's first; n counts its LF, which is hashed with it. */
static void p3_take(struct mbox_scan *s, const char *p, size_t n, int first)
{
	if (first)
		p3_line(s, p, n);
	if (s->p3_fixed)
		MD5Update(&s->md5, (const uint8_t *)p, n);
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
	if (HEADER_IS(line, len, "X-IMAP") || HEADER_IS(line, len, "X-IMAPbase")) {
		s->ximap = 1;
		if (s->md->count == 0 && !s->base_seen) {
			uint32_t v = header_number(line, len,
			    line[6] == ':' ? 6 : 10);

			s->base_seen = 1;
			if (v)
				s->md->validity = v;
		}
	} else if (HEADER_IS(line, len, "X-UID")) {
		if (!s->xuid)
			s->xuid = header_number(line, len, 5);
	} else if (HEADER_IS(line, len, "Subject") &&
	    memmem(line, len, subject_pseudo, sizeof(subject_pseudo) - 1))
		s->subject = 1;
	else if (HEADER_IS(line, len, "X-UIDL") && s->kind == UIDL_NATIVE)
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
			s->cur.from_id = XXH3_128bits_digest(s->id).low64;
			s->in_from = 0;
			s->cur.data = s->next = off + len + lf;
		}
		return 0;
	}
	if (first && lf && (len == 0 || (len == 1 && cr))) {
		/* popa3d: only a bare LF ends the headers; CR LF is a line
		 * it does not hash */
		if (len == 0)
			s->p3_header = 0;
		s->p3_fixed = 0;
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
	if (s->kind == UIDL_POPA3D && s->p3_header)
		p3_take(s, p, len + lf, first);
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
		if (s->kind == UIDL_POPA3D)
			p3_take(s, line, len + 1, 1);
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
	s->kind = md->scheme.kind;
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
		    !(s->kind == UIDL_POPA3D && s->p3_header) &&
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
		    (m->flags & ~(M_XUIDL | M_NOEOL | M_HIDDEN | M_NOEOH |
		    M_STAMPED | M_DEMOTED)) ||
		    ((m->flags & M_HIDDEN) && i != 0) ||
		    ((m->flags & M_XUIDL) && md->scheme.kind != UIDL_NATIVE) ||
		    ((m->flags & M_STAMPED) && (mbox_table(md->scheme.kind) !=
		    UIDL_DOVECOT || memcmp(m->uid + 4, &md->validity, 4))))
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
