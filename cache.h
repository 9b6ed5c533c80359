/*
 * The message-table cache, "cache" in the state directory: the table of the
 * last scan, trusted only after cheap checks tie it to the file.
 */
#ifndef POP3_CACHE_H
#define POP3_CACHE_H

#include <stdint.h>
#include <sys/stat.h>

#include "maildrop.h"

#define CACHE_FILE	"cache"		/* in the state directory */

/* The cache file's header; the message table and the X-UIDL pool follow it.
 * Here for fuzz/fuzz-cache.c, which forges caches. */
struct cache_header {
	char magic[8];
	uint32_t msg_size, segs, ends_at_boundary;
	uint32_t table;			/* mbox_table of the scheme (-i) */
	uint32_t validity, unused;	/* md->validity */
	uint64_t dev, ino;
	int64_t length, mtime_sec, mtime_nsec;
	struct segment seg[MAX_SEGMENTS];
	uint64_t count, pool_len;
	uint64_t tail;			/* XXH3 of the CACHE_TAIL bytes before length */
	uint64_t samples[CACHE_SAMPLES];	/* XXH3 at sampled From_ lines */
	uint64_t check;			/* XXH3 of what follows, seeded with the above */
};

/* Loads the cache of md->state for the open file st (md->fd), into md's
 * empty table, with md->length, md->seg and md->ends_at_boundary. Returns 1
 * when it covers the whole file, 0 when mail was appended after what it
 * covers (md->length), -1 when it is missing or not to be trusted (md's
 * table left empty). buf: MAILBOX_CHUNK bytes of scratch. */
int cache_load(struct maildrop *md, const struct stat *st, char *buf);

/* Writes the cache for md's table, just read from the file; a failure
 * (logged) costs only speed, and a file that grew meanwhile waits for the
 * next time. Makes the state directory if need be. */
void cache_write(struct maildrop *md, char *buf);

/* The checksum of a cache: the XXH3 of its header fields before check, of
 * its msgs bytes of table and of its pool. 0 when out of memory. */
uint64_t cache_check(const struct cache_header *c, const void *msg,
    size_t msgs, const void *pool, size_t pool_len);

#endif
