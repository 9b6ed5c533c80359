/*
 * libFuzzer harness for the mbox scanner (mbox.c) and the send path
 * (maildrop.c), linked as the handler links them.
 *
 * The input is a mailbox file. It is fed to the scanner (mbox.c) as
 * maildrop.c feeds it the chunks it reads, its unique-ids are made
 * (mbox_unique), and maildrop_send reads it from a memfd; then it is
 * checked against the README's "Mailbox" rules by an independent, in-memory
 * reference parser:
 *
 *   - the message table (From_, data and end offsets, wire size, no-EOL and
 *     no-end-of-headers flags) is exactly the reference's, and the offsets
 *     are ordered and in the file; a message has no end of headers exactly
 *     when TOP n 0 sends no empty line;
 *   - "not an mbox" (EINVAL) exactly when the reference says so;
 *   - RETR (maildrop_send, lines -1) writes exactly the reference wire form,
 *     every line starting with '.' is stuffed, and once unstuffed it is
 *     exactly LIST's size;
 *   - TOP with 0, 1, 2, 3 and many lines writes the reference TOP, which is a
 *     prefix of the RETR output ending at a line end;
 *   - every unique-id is 1 to 70 characters in 0x21-0x7E, all are distinct,
 *     under every scheme of -i (native, popa3d, dovecot with its default
 *     format and another, uw); with -i popa3d each message's MD5 is the one
 *     a reference made from popa3d 1.0.3's rules gives (128 KiB build);
 *   - the file digest and length are those of the input;
 *   - where maildrop.c can continue a table (the message-table cache), a
 *     scan continued from a message boundary gives the full scan's table,
 *     under every scheme.
 *
 * Any violation abort()s, which libFuzzer reports as a crash.
 *
 * Built twice by fuzz/Makefile: fuzz-mbox with the real 128 KiB MAILBOX_CHUNK,
 * and fuzz-mbox-chunk8 with FUZZ_CHUNK=8 (params.h: the handler's files are
 * compiled with it too), so that small inputs reach the
 * paths for lines longer than the scan buffer and for a CR at the end of a
 * send chunk. With a tiny chunk only the first piece of a long header line is
 * looked at (X-UIDL, Subject), which is why unique-ids and the hidden flag are
 * checked for validity only, never against the reference.
 */
#include <errno.h>
#include <md5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sanitizer/asan_interface.h>

#include "../maildrop.h"
#include "../mbox.h"
#include "../params.h"
#include "../xxh3.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The mailbox, for maildrop_send to read: a memfd holding the input. */
static int memfd = -1;

/*
 * maildrop_send reads through md->rbuf, MAILBOX_CHUNK bytes that it mallocs
 * when md has none, and a fresh 128 KiB mapping per execution costs more
 * than the rest of the harness. The harness hands it this block instead,
 * kept between executions and poisoned between them, so that a use after
 * the maildrop is done with it is still caught.
 */
static char *window_block;

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

/*
 * The harness's own checking code is left out of coverage: libFuzzer's
 * comparison tracing there cost more than half of each run and guides
 * nothing (ASan still checks it).
 */
#define NOCOV __attribute__((no_sanitize("coverage")))

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-mbox: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

/* A growing byte buffer that maildrop_send writes into. */
struct buf {
	char *p;
	size_t len, cap;
};

NOCOV static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t c = b->cap ? b->cap : 256;

		while (c < b->len + n)
			c *= 2;
		b->p = realloc(b->p, c);
		CHECK(b->p != NULL);
		b->cap = c;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* maildrop_send's output buffer, as small as the input says (at least
 * the 64 octets maildrop.h asks for), emptied into a struct buf. */
struct sink {
	struct output out;	/* first: sink_flush is handed this */
	char space[64 + 255];
	struct buf *to;
};

NOCOV static int sink_flush(struct output *o)
{
	struct sink *k = (struct sink *)o;

	CHECK(o->len <= o->size);
	buf_add(k->to, o->buf, o->len);
	o->len = 0;
	return 0;
}

NOCOV static int send_into(struct maildrop *md, const struct message *m,
    long long lines, struct buf *to, size_t room)
{
	struct sink k;
	int r;

	k.out.buf = k.space;
	k.out.len = 0;
	k.out.size = 64 + room % 256;
	k.out.flush = sink_flush;
	k.to = to;
	r = maildrop_send(md, m, lines, &k.out);
	sink_flush(&k.out);
	return r;
}

/* The reference parser's view of one line and one message. */
struct rline {
	size_t start, len;	/* len without the LF */
	int lf;
};

struct rmsg {
	size_t from, data, end, size;
	size_t first, nlines;	/* content lines */
	int noeol;
	int noeoh;		/* no empty content line */
};

NOCOV static int line_empty(const uint8_t *d, const struct rline *l)
{
	return l->lf && (l->len == 0 || (l->len == 1 && d[l->start] == '\r'));
}

/* The line's bytes on the wire, before stuffing: one CR before the LF dropped. */
NOCOV static size_t line_text(const uint8_t *d, const struct rline *l)
{
	return l->len - (l->lf && l->len && d[l->start + l->len - 1] == '\r');
}

/*
 * README "Mailbox": a message starts at a "From " line at the start of the
 * file or after an empty line; that line is not part of it, and neither is
 * the empty line before the next From_ line or at the end of the file.
 * Returns the number of messages, or -1 for "not an mbox".
 */
NOCOV static long reference(const uint8_t *d, size_t size, struct rline **linesp,
    struct rmsg **msgsp)
{
	struct rline *lines = NULL;
	struct rmsg *msgs = NULL;
	size_t nl = 0, i, pos = 0, nm = 0;

	lines = malloc((size + 1) * sizeof(*lines));
	CHECK(lines != NULL);
	while (pos < size) {
		const uint8_t *e = memchr(d + pos, '\n', size - pos);

		lines[nl].start = pos;
		lines[nl].len = (e ? (size_t)(e - d) : size) - pos;
		lines[nl].lf = e != NULL;
		pos += lines[nl].len + lines[nl].lf;
		nl++;
	}
	msgs = malloc((nl + 1) * sizeof(*msgs));
	CHECK(msgs != NULL);
	for (i = 0; i < nl; i++) {
		int starts = lines[i].len >= 5 &&
		    !memcmp(d + lines[i].start, "From ", 5) &&
		    (i == 0 || line_empty(d, &lines[i - 1]));

		if (i == 0 && !starts) {
			free(lines);
			free(msgs);
			return -1;
		}
		if (!starts)
			continue;
		if (nm) {	/* the previous one ends before the separator */
			msgs[nm - 1].nlines = i - 1 - msgs[nm - 1].first;
		}
		msgs[nm].from = lines[i].start;
		msgs[nm].data = lines[i].start + lines[i].len + lines[i].lf;
		msgs[nm].first = i + 1;
		nm++;
	}
	if (nm) {
		struct rmsg *m = &msgs[nm - 1];

		m->nlines = nl - m->first;
		if (m->nlines && line_empty(d, &lines[nl - 1]))
			m->nlines--;
	}
	for (i = 0; i < nm; i++) {
		struct rmsg *m = &msgs[i];
		size_t j;

		m->size = 0;
		m->noeol = 0;
		m->noeoh = 1;
		m->end = m->data;
		for (j = m->first; j < m->first + m->nlines; j++) {
			if (lines[j].lf && line_text(d, &lines[j]) == 0)
				m->noeoh = 0;
			m->size += line_text(d, &lines[j]) + 2;
			m->end = lines[j].start + lines[j].len + lines[j].lf;
			m->noeol = !lines[j].lf;
		}
	}
	*linesp = lines;
	*msgsp = msgs;
	return nm;
}

/* The reference wire form of a message's first n content lines, stuffed. */
NOCOV static void reference_wire(const uint8_t *d, const struct rline *lines,
    const struct rmsg *m, size_t n, struct buf *b)
{
	size_t j;

	for (j = m->first; j < m->first + n; j++) {
		if (lines[j].len && d[lines[j].start] == '.')
			buf_add(b, ".", 1);
		buf_add(b, (const char *)d + lines[j].start,
		    line_text(d, &lines[j]));
		buf_add(b, "\r\n", 2);
	}
}

/* Content lines TOP sends: the headers through the blank line, then lines. */
NOCOV static size_t reference_top(const uint8_t *d, const struct rline *lines,
    const struct rmsg *m, long long body)
{
	size_t j, h = m->nlines;

	for (j = 0; j < m->nlines; j++)
		if (lines[m->first + j].lf &&
		    line_text(d, &lines[m->first + j]) == 0) {
			h = j + 1;
			break;
		}
	if (h == m->nlines)
		return h;
	return (size_t)body < m->nlines - h ? h + body : m->nlines;
}

/* Removes dot-stuffing; aborts on a line that starts with a lone '.'. */
NOCOV static size_t unstuffed_length(const struct buf *b)
{
	size_t i = 0, n = 0;
	int bol = 1;

	while (i < b->len) {
		if (bol && b->p[i] == '.') {
			CHECK(i + 1 < b->len && b->p[i + 1] == '.');
			i++;
		}
		bol = 0;
		if (b->p[i] == '\r' && i + 1 < b->len && b->p[i + 1] == '\n') {
			i += 2;
			n += 2;
			bol = 1;
		} else {
			i++;
			n++;
		}
	}
	CHECK(b->len == 0 || (b->len >= 2 && b->p[b->len - 2] == '\r' &&
	    b->p[b->len - 1] == '\n'));
	return n;
}

/* Whether a and b hold the same bytes (either may still be unallocated). */
NOCOV static int same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

/* Whether b, in wire form, holds an empty line. */
NOCOV static int has_empty(const struct buf *b)
{
	return (b->len >= 2 && b->p[0] == '\r' && b->p[1] == '\n') ||
	    (b->len >= 3 && memmem(b->p, b->len, "\n\r\n", 3));
}

NOCOV static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The scanner fed as maildrop.c feeds it, from offset from on: what a buffer
 * of MAILBOX_CHUNK bytes holds after each read (the bytes not yet taken and
 * as many more as fit), and the end of the file known only when a read
 * comes back short. Returns 0, or -1 with errno set, as the scan would.
 */
static int scan(struct maildrop *md, const uint8_t *data, size_t size,
    size_t from)
{
	struct mbox_scan *s = mbox_start(md, from);
	size_t pos = from;

	CHECK(s != NULL);
	for (;;) {
		size_t have = size - pos < MAILBOX_CHUNK ? size - pos :
		    MAILBOX_CHUNK;
		int eof = have < MAILBOX_CHUNK;
		ssize_t took = mbox_feed(s, (const char *)data + pos, have,
		    MAILBOX_CHUNK, eof);

		if (took < 0) {
			mbox_free(s);
			return -1;
		}
		/* A full buffer always gives up something, or no read
		 * could follow; at the end, everything. */
		CHECK((size_t)took <= have && (took > 0 || have < MAILBOX_CHUNK));
		pos += took;
		if (eof)
			break;
	}
	CHECK(pos == size);
	return mbox_end(s);
}

#define DIGEST_OK(md, d, n) ((md)->segs == 1 && \
    (md)->seg[0].end == (off_t)(n) && (md)->seg[0].digest == XXH3_64bits(d, n))

/*
 * A table continued from message k on (as from a cache that holds messages
 * before k, the mail after it appended since) must be the table of a full
 * scan: the same messages, offsets, sizes, flags and hashes, and the new
 * segment's digest the XXH3 of the bytes from there.
 */
static void check_continued(const struct maildrop *full, const uint8_t *data,
    size_t size, size_t k)
{
	struct maildrop md;
	off_t from = full->msg[k].from;
	size_t i;

	memset(&md, 0, sizeof(md));
	md.fd = -1;	/* the scanner reads no file */
	md.path = (char *)"fuzz-mbox";
	md.scheme = full->scheme;	/* and the cache keeps these two */
	md.validity = full->validity;
	md.alloc = k;
	md.msg = malloc(k * sizeof(*md.msg));
	CHECK(md.msg != NULL);
	memcpy(md.msg, full->msg, k * sizeof(*md.msg));
	md.count = k;
	if (full->pool_len) {
		md.pool = malloc(full->pool_len);
		CHECK(md.pool != NULL);
		memcpy(md.pool, full->pool, full->pool_len);
		md.pool_len = md.pool_size = full->pool_len;
	}
	md.segs = 1;
	md.seg[0].end = from;
	md.seg[0].digest = XXH3_64bits(data, from);
	md.length = from;
	md.ends_at_boundary = 1;
	CHECK(scan(&md, data, size, from) == 0);
	CHECK(md.count == full->count);
	CHECK(md.length == full->length &&
	    md.ends_at_boundary == full->ends_at_boundary);
	CHECK(md.segs == 2 && md.seg[1].end == (off_t)size &&
	    md.seg[1].digest == XXH3_64bits(data + from, size - from));
	for (i = 0; i < md.count; i++) {
		const struct message *a = &md.msg[i], *b = &full->msg[i];

		CHECK(a->from == b->from && a->data == b->data &&
		    a->end == b->end && a->size == b->size &&
		    a->flags == b->flags && !memcmp(a->uid, b->uid, 16));
		if (a->flags & M_XUIDL)
			CHECK(!strcmp(md.pool + a->uidl.xuidl,
			    full->pool + b->uidl.xuidl));
		else
			CHECK(a->uidl.suffix == b->uidl.suffix);
	}
	free(md.msg);
	free(md.pool);
}

/*
 * popa3d 1.0.3's unique-id of the message rm, from its rules (README,
 * "Unique-ids"), a line at a time: the MD5 of its "fixed" header lines with
 * their line ends, up to a line of a bare LF (a CR LF line does not end
 * them for popa3d).
 */
NOCOV static void reference_popa3d(const uint8_t *d, const struct rline *lines,
    const struct rmsg *rm, unsigned char out[16])
{
	MD5_CTX c;
	size_t j;
	int fixed = 0, received = 0;

	MD5Init(&c);
	for (j = rm->first; j < rm->first + rm->nlines; j++) {
		const char *l = (const char *)d + lines[j].start;
		size_t n = lines[j].len + lines[j].lf;

		if (lines[j].lf && lines[j].len == 0)
			break;
#define P3(name) (n >= sizeof(name) - 1 && \
    !strncasecmp(l, name, sizeof(name) - 1))
		switch (n ? l[0] : 0) {
		case ' ': case '\t':
			break;
		case 'R': case 'r':
			fixed = !received && P3("Received:");
			received |= fixed;
			break;
		case 'D': case 'd':
			fixed = P3("Delivered-To:") || (!received && P3("Date:"));
			break;
		case 'M': case 'm':
			fixed = !received && P3("Message-ID:");
			break;
		case 'X':
			fixed = P3("X-Delivery-ID:");
			break;
		default:
			fixed = 0;
		}
#undef P3
		if (fixed)
			MD5Update(&c, (const uint8_t *)l, n);
	}
	MD5Final(out, &c);
}

/* Every listed unique-id of md is 1 to 70 octets of 0x21-0x7E, and no two
 * are the same. */
NOCOV static void check_ids(struct maildrop *md)
{
	char **uids;
	size_t i, k;

	uids = calloc(md->visible + 1, sizeof(*uids));
	CHECK(uids != NULL);
	for (i = 1; i <= md->visible; i++) {
		struct message *m = maildrop_get(md, i);
		char *u = malloc(MAX_UIDL + 2);
		size_t len;

		CHECK(m != NULL && u != NULL);
		memset(u, 0x55, MAX_UIDL + 2);
		maildrop_uidl(md, m, u);
		CHECK(u[MAX_UIDL + 1] == 0x55);	/* wrote no more than allowed */
		len = strlen(u);
		CHECK(len >= 1 && len <= MAX_UIDL);
		for (k = 0; k < len; k++)
			CHECK((unsigned char)u[k] >= 0x21 &&
			    (unsigned char)u[k] <= 0x7e);
		uids[i - 1] = u;
	}
	CHECK(maildrop_get(md, 0) == NULL);
	CHECK(maildrop_get(md, md->visible + 1) == NULL);
	qsort(uids, md->visible, sizeof(*uids), cmp_str);
	for (i = 1; i < md->visible; i++)
		CHECK(strcmp(uids[i - 1], uids[i]) != 0);
	for (i = 0; i < md->visible; i++)
		free(uids[i]);
	free(uids);
}

/* The other schemes of -i on the same input: the same table as native's
 * but for the ids (and X-UIDL, which only native reads). */
NOCOV static void check_schemes(const struct maildrop *native,
    const uint8_t *data, size_t size, const struct rline *lines,
    const struct rmsg *ref)
{
	static const struct uidl_scheme schemes[] = {
		{ UIDL_POPA3D, NULL }, { UIDL_DOVECOT, NULL },
		{ UIDL_DOVECOT, "%v.%u" }, { UIDL_UW, NULL },
	};
	size_t j, i;

	(void)lines;	/* the reference is not used with a tiny chunk */
	(void)ref;
	for (j = 0; j < sizeof(schemes) / sizeof(schemes[0]); j++) {
		struct maildrop md;

		memset(&md, 0, sizeof(md));
		md.fd = -1;
		md.path = (char *)"fuzz-mbox";
		md.scheme = schemes[j];
		CHECK(scan(&md, data, size, 0) == 0);
		CHECK(md.count == native->count);
		if (md.count >= 2)
			check_continued(&md, data, size,
			    1 + data[0] % (md.count - 1));
		for (i = 0; i < md.count; i++) {
			const struct message *m = &md.msg[i];

			CHECK(m->end == native->msg[i].end &&
			    m->size == native->msg[i].size &&
			    (m->flags & ~M_STAMPED) ==
			    (native->msg[i].flags & ~(M_XUIDL | M_DEMOTED)));
			CHECK(!(m->flags & M_STAMPED) ||
			    md.scheme.kind != UIDL_POPA3D);
#ifndef FUZZ_CHUNK
			/* with a tiny chunk only a line's first piece is
			 * looked at, as for X-UIDL */
			if (md.scheme.kind == UIDL_POPA3D) {
				unsigned char want[16];

				reference_popa3d(data, lines, &ref[i], want);
				CHECK(!memcmp(m->uid, want, 16));
			}
#endif
		}
		CHECK(mbox_sane(&md));
		mbox_number(&md);
		CHECK(mbox_unique(&md) == 0);
		check_ids(&md);
		free(md.msg);
		free(md.pool);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	memfd = memfd_create("fuzz-mbox", MFD_CLOEXEC);
	window_block = malloc(MAILBOX_CHUNK);
	if (memfd < 0 || !window_block) {
		perror("memfd_create");
		exit(1);
	}
	ASAN_POISON_MEMORY_REGION(window_block, MAILBOX_CHUNK);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long long tops[] = { 0, 1, 2, 3, 1000000 };
	struct maildrop md;
	struct rline *lines = NULL;
	struct rmsg *ref = NULL;
	struct buf retr = { 0 }, top = { 0 }, want = { 0 };
	long nref;
	size_t i, k;
	int r;

	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);

	memset(&md, 0, sizeof(md));
	md.fd = memfd;
	md.path = (char *)"fuzz-mbox";
	ASAN_UNPOISON_MEMORY_REGION(window_block, MAILBOX_CHUNK);
	memset(window_block, 0xbe, MAILBOX_CHUNK < 4096 ? MAILBOX_CHUNK : 4096);
	md.rbuf = window_block;
	nref = reference(data, size, &lines, &ref);
	errno = 0;
	r = scan(&md, data, size, 0);
	if (r) {
		CHECK(errno == EINVAL);
		CHECK(nref < 0);
		free(md.msg);
		free(md.pool);
		ASAN_POISON_MEMORY_REGION(window_block, MAILBOX_CHUNK);
		return 0;
	}
	CHECK(nref >= 0);
	CHECK(md.count == (size_t)nref);
	CHECK(md.length == (off_t)size);
	CHECK(DIGEST_OK(&md, data, size));
	if (md.count >= 2)
		check_continued(&md, data, size,
		    1 + data[size - 1] % (md.count - 1));

	mbox_number(&md);
	CHECK(md.first == (size_t)(md.count && (md.msg[0].flags & M_HIDDEN)));
	CHECK(md.visible == md.count - md.first);
	CHECK(mbox_unique(&md) == 0);

	for (i = 0; i < md.count; i++) {
		struct message *m = &md.msg[i];
		struct rmsg *rm = &ref[i];

		CHECK((m->flags & ~(M_XUIDL | M_NOEOL | M_HIDDEN | M_NOEOH |
		    M_DEMOTED)) == 0);
		CHECK(i == 0 || !(m->flags & M_HIDDEN));
		CHECK(0 <= m->from && m->from < m->data + 1 && m->data <= m->end &&
		    m->end <= (off_t)size);
		CHECK(i == 0 || m->from >= md.msg[i - 1].end);
		CHECK(m->from == (off_t)rm->from);
		CHECK(m->data == (off_t)rm->data);
		CHECK(m->end == (off_t)rm->end);
		CHECK(m->size == (off_t)rm->size);
		CHECK(!!(m->flags & M_NOEOL) == rm->noeol);
		CHECK(!!(m->flags & M_NOEOH) == rm->noeoh);

		retr.len = 0;
		CHECK(send_into(&md, m, -1, &retr, size + i) == 0);
		want.len = 0;
		reference_wire(data, lines, rm, rm->nlines, &want);
		CHECK(same(&retr, &want));
		CHECK(unstuffed_length(&retr) == (size_t)m->size);

		for (k = 0; k < sizeof(tops) / sizeof(tops[0]); k++) {
			top.len = 0;
			CHECK(send_into(&md, m, tops[k], &top, size + k) == 0);
			CHECK(top.len <= retr.len && (top.len == 0 ||
			    !memcmp(top.p, retr.p, top.len)));
			CHECK(top.len == 0 || (top.len >= 2 &&
			    top.p[top.len - 2] == '\r' &&
			    top.p[top.len - 1] == '\n'));
			want.len = 0;
			reference_wire(data, lines, rm,
			    reference_top(data, lines, rm, tops[k]), &want);
			CHECK(same(&top, &want));
			/* What the handler once read at login to know it: an
			 * empty line in TOP n 0. */
			if (tops[k] == 0)
				CHECK(!!(m->flags & M_NOEOH) ==
				    !has_empty(&top));
		}
	}

	check_ids(&md);
	check_schemes(&md, data, size, lines, ref);

	free(retr.p);
	free(top.p);
	free(want.p);
	free(lines);
	free(ref);
	free(md.msg);
	free(md.pool);
	CHECK(md.rbuf == window_block);	/* the window used no other */
	ASAN_POISON_MEMORY_REGION(window_block, MAILBOX_CHUNK);
	return 0;
}
