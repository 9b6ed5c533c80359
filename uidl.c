/*
 * The unique-ids as UIDL prints them (maildrop_uidl), under each scheme of
 * -i, from what the scanner (mbox.c) kept in the table, and made distinct
 * within the maildrop (mbox_unique). Pure functions on the table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maildrop.h"
#include "mbox.h"
#include "params.h"
#include "xxh3.h"

/* The octets a pop3_uidl_format may print, so that a suffix (".4294967295")
 * still fits in MAX_UIDL. */
#define FORMAT_MAX	(MAX_UIDL - 11)

/*
 * Prints a Dovecot pop3_uidl_format with the UID u and the UIDVALIDITY v into
 * buf (FORMAT_MAX + 1 bytes), as Dovecot's var_expand does for the part we
 * take: "%u", "%v", "%0NXu" (N digits, zero-padded, of hex: lower-case,
 * as Dovecot 2.3.19 prints it, whatever the capital X suggests),
 * "%Xu", "%0Nu", "%%". Returns the length, or 0 when fmt is not such a format
 * or prints more than FORMAT_MAX octets or an octet a unique-id cannot hold.
 */
static size_t format_uidl(const char *fmt, uint32_t u, uint32_t v, char *buf)
{
	size_t len = 0;
	const char *f;

	for (f = fmt; *f; f++) {
		char one[24];
		int width = 0, hex = 0, n;

		if (*f != '%') {
			if ((unsigned char)*f < 0x21 || (unsigned char)*f > 0x7e ||
			    len >= FORMAT_MAX)
				return 0;
			buf[len++] = *f;
			continue;
		}
		if (*++f == '%') {
			if (len >= FORMAT_MAX)
				return 0;
			buf[len++] = '%';
			continue;
		}
		if (*f == '0') {
			/* a width without the 0 cuts a value in Dovecot */
			for (f++; *f >= '0' && *f <= '9' && width < 100; f++)
				width = width * 10 + (*f - '0');
			if (!width)
				return 0;
		}
		if (*f == 'X') {
			hex = 1;
			f++;
		}
		if (*f != 'u' && *f != 'v')
			return 0;
		n = snprintf(one, sizeof(one), hex ? "%0*x" : "%0*u", width,
		    (unsigned)(*f == 'u' ? u : v));
		if (n < 0 || (size_t)n > FORMAT_MAX - len)
			return 0;
		memcpy(buf + len, one, n);
		len += n;
	}
	buf[len] = '\0';
	return len;
}

int uidl_format_ok(const char *fmt)
{
	char a[FORMAT_MAX + 1], b[FORMAT_MAX + 1];

	/* The longest values print the longest ids; and an id must change
	 * with the UID, or every message would print the same. */
	return format_uidl(fmt, UINT32_MAX, UINT32_MAX, a) > 0 &&
	    format_uidl(fmt, 1, 1, a) && format_uidl(fmt, 2, 1, b) &&
	    strcmp(a, b) != 0;
}

/* The id of a stamped message (M_STAMPED): Dovecot's pop3_uidl_format, by
 * default %08Xu%08Xv (lower-case hex, as it prints), or UW ipop3d's
 * "%08lx%08lx" of UIDVALIDITY and UID. */
static size_t stamped_uidl(const struct maildrop *md, const struct message *m,
    char *buf)
{
	uint32_t u, v;
	size_t len;

	memcpy(&u, m->uid, 4);
	memcpy(&v, m->uid + 4, 4);
	if (md->scheme.kind == UIDL_UW)
		return snprintf(buf, 17, "%08x%08x", (unsigned)v, (unsigned)u);
	if (md->scheme.format &&
	    (len = format_uidl(md->scheme.format, u, v, buf)))
		return len;
	return snprintf(buf, 17, "%08x%08x", (unsigned)u, (unsigned)v);
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
	if (m->flags & M_STAMPED)
		len = stamped_uidl(md, m, buf);
	else if (md->scheme.kind == UIDL_POPA3D) {
		/* popa3d prints bytes 3, 2, 1, 0, 7, 6, 5, 4 of the MD5 */
		for (i = 0; i < 8; i++) {
			unsigned char b = m->uid[(i & 4) + 3 - (i & 3)];

			buf[2 * i] = hex[b >> 4];
			buf[2 * i + 1] = hex[b & 15];
		}
		len = 16;
	} else
		for (i = 0; i < 16; i++) {
			buf[2 * i] = hex[m->uid[i] >> 4];
			buf[2 * i + 1] = hex[m->uid[i] & 15];
		}
	buf[len] = '\0';
	if (m->uidl.suffix)
		len += snprintf(buf + len, MAX_UIDL + 1 - len, ".%u",
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
			m->flags = (m->flags & ~M_XUIDL) | M_DEMOTED;
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

int mbox_table(enum uidl_kind kind)
{
	return kind == UIDL_UW ? UIDL_DOVECOT : kind;
}
