/*
 * The cache (cache.h): the message table of the last scan, so that opening
 * a mailbox that is unchanged, or has only had mail appended, reads the table
 * and at most the new mail instead of the whole file. It is trusted only
 * after cheap checks say the file still starts with what was scanned: same
 * inode, not shorter, the same mtime if not longer, and the bytes at a
 * sample of From_ lines and at the old end as they were. Any doubt means a
 * full scan. Its checksum catches a damaged cache; one that the user forged
 * could make this user's sessions list wrong sizes, but every offset in it
 * is checked, so it cannot make us read outside the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "cache.h"
#include "commit.h"
#include "mailfile.h"
#include "mbox.h"
#include "params.h"
#include "userstate.h"
#include "xxh3.h"

/* 3: the scanner's M_NOEOH, which a cache of version 2 does not have.
 * 4: the unique-id scheme (-i) that made the table, and the UIDVALIDITY.
 * 5: each message's from_id, in what were the high bits of its flags.
 * 6: M_DEMOTED, which tells whether a table after an UPDATE is a scan's. */
static const char cache_magic[8] = "P3CACHE6";

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
	n = mailfile_read(fd, buf, len, off);
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

/* The table and the pool come apart, so that neither is read twice. */
uint64_t cache_check(const struct cache_header *c, const void *msg,
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

/*
 * Whether the header c, just read, may describe the open file st, and was
 * made by md's unique-id scheme (a table of another is not used): every
 * count bounded by the mailbox before a byte is hashed or allocated (a
 * message takes at least a From_ line, "From ", 5 octets; an X-UIDL value
 * at least its own octets and a newline), and a cache file of cs_size bytes
 * exactly as long as the header says.
 */
static int header_fits(const struct maildrop *md, const struct cache_header *c,
    const struct stat *st, off_t cs_size)
{
	return !memcmp(c->magic, cache_magic, sizeof(c->magic)) &&
	    c->table == (uint32_t)mbox_table(md->scheme.kind) &&
	    c->msg_size == sizeof(struct message) &&
	    c->segs >= 1 && c->segs <= MAX_SEGMENTS &&
	    !(c->length < st->st_size && c->segs == MAX_SEGMENTS) &&
	    c->dev == (uint64_t)st->st_dev && c->ino == (uint64_t)st->st_ino &&
	    c->length >= 0 && c->length <= st->st_size &&
	    !(c->length == st->st_size && (c->mtime_sec != st->st_mtim.tv_sec ||
	    c->mtime_nsec != st->st_mtim.tv_nsec)) &&
	    !(c->length < st->st_size && !c->ends_at_boundary) &&
	    c->count <= (uint64_t)c->length / 5 &&
	    c->pool_len <= (uint64_t)c->length &&
	    (uint64_t)cs_size == sizeof(*c) + c->count *
	    sizeof(struct message) + c->pool_len;
}

int cache_load(struct maildrop *md, const struct stat *st, char *buf)
{
	struct cache_header c, now;
	struct stat cs;
	struct iovec iov[3];
	size_t msgs;
	int fd;

	if (md->state < 0)
		return -1;
	if ((fd = userstate_file(md->state, CACHE_FILE, O_RDONLY)) < 0) {
		if (errno != ENOENT)
			syslog(LOG_NOTICE, "%s: cache not used: %s", md->path,
			    errno == EINVAL ? "not a regular file of the user's "
			    "with one link" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &cs) || mailfile_read(fd, (char *)&c, sizeof(c), 0) !=
	    sizeof(c) || !header_fits(md, &c, st, cs.st_size))
		goto fail;
	msgs = c.count * sizeof(struct message);
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
	md->ends_at_boundary = c.ends_at_boundary;
	md->validity = c.validity;
	if (!mbox_sane(md) || cache_probes(md, &now, buf) ||
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
	md->validity = 0;
	return -1;
}

void cache_write(struct maildrop *md, char *buf)
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
	c.ends_at_boundary = md->ends_at_boundary;
	c.table = mbox_table(md->scheme.kind);
	c.validity = md->validity;
	c.dev = st.st_dev;
	c.ino = st.st_ino;
	c.length = md->length;
	c.mtime_sec = st.st_mtim.tv_sec;
	c.mtime_nsec = st.st_mtim.tv_nsec;
	c.count = md->count;
	c.pool_len = md->pool_len;
	/* Grown or rewritten after we read it (the locks are gone): the
	 * probes would be of another file's bytes. Next time. */
	if (st.st_size != md->length || !commit_times_same(md, &st))
		goto out;
	if (cache_probes(md, &c, buf)) {
		syslog(LOG_INFO, "%s: cannot write the cache: %m", md->path);
		goto out;
	}
	if (!(c.check = cache_check(&c, md->msg, msgs, md->pool, md->pool_len)))
		goto out;
	/* Two sessions writing at once make a cache that fails its check. */
	snprintf(tmp, sizeof(tmp), CACHE_FILE ".new");
	unlinkat(md->state, tmp, 0);	/* whatever it is: a new file */
	fd = userstate_file(md->state, tmp, O_WRONLY | O_CREAT | O_EXCL);
	if (fd < 0 || mailfile_write(fd, (char *)&c, sizeof(c), 0) ||
	    mailfile_write(fd, (char *)md->msg, msgs, sizeof(c)) ||
	    mailfile_write(fd, md->pool, md->pool_len, sizeof(c) + msgs) ||
	    renameat(md->state, tmp, md->state, CACHE_FILE)) {
		syslog(LOG_INFO, "%s: cannot write the cache: %m", md->path);
		unlinkat(md->state, tmp, 0);
	}
out:
	if (fd >= 0)
		close(fd);
}
