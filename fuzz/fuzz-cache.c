/*
 * libFuzzer harness for the message-table cache (cache.c: cache_load and
 * what it trusts), linked with the mailbox files as the handler is. The
 * input becomes the "cache" file in the state directory of a real mailbox,
 * and maildrop_open() runs on that mailbox as a login would. The README promises that a corrupt or hostile cache can cost only a
 * rescan: it can never crash the handler or change an answer.
 *
 * Input: a flag byte, then the bytes of the cache file.
 *   bit 0  the bytes overlay the real cache (the one the harness's own open
 *          wrote) from the offset in the next two bytes, instead of
 *          replacing it: mutations reach past the header
 *   bit 1  the mailbox's device, inode and mtime are written into the
 *          header, as a cache of this very file would have them
 *   bit 2  the checksum is recomputed, as a forger would: whatever the
 *          cache says then passes the one check the handler cannot repeat
 *          without reading the whole file
 *
 * Checks (abort() on violation):
 *   - maildrop_open() succeeds: a bad cache is never a reason to refuse;
 *   - without bit 2, the table is exactly the one a full scan makes
 *     (count, every entry, the X-UIDL pool, the length): no corruption
 *     short of a forged checksum changes an answer;
 *   - with bit 2, the table is one a scan could have made (offsets ordered
 *     and in the file, X-UIDL values inside the pool and valid), and every
 *     message can be sent and its unique-id formed, under ASan;
 *   - nothing leaks (LeakSanitizer) and no descriptor is left open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cache.h"
#include "../mailfile.h"
#include "../maildrop.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-cache: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

/*
 * The mailbox: a hidden UW-IMAP message, X-UIDL values (one repeated), a
 * CRLF message, a dot line, a message with no final newline.
 */
static const char mailbox[] =
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n"
    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
    "X-IMAP: 1307000000 0000000002\n\n"
    "internal\n\n"
    "From a@example.org Mon Jan  1 00:00:00 2024\n"
    "Subject: one\nX-UIDL: first-id\nStatus: RO\n\nbody one\n.dot\n\n"
    "From b@example.org Mon Jan  1 00:00:01 2024\n"
    "Subject: two\nX-UIDL: first-id\n\nbody two\n\n"
    "From c@example.org Mon Jan  1 00:00:02 2024\r\n"
    "Subject: three\r\n\r\nbody three\r\n\r\n"
    "From d@example.org Mon Jan  1 00:00:03 2024\n"
    "Subject: four\n\n>From here\n\n"
    "From d@example.org Mon Jan  1 00:00:03 2024\n"
    "Subject: four\n\n>From here\n\n"
    "From e@example.org Mon Jan  1 00:00:04 2024\n"
    "Subject: five\n\nno newline at the end";

static char dir[256], box[300], state[300], cache[320];
static struct maildrop ref;		/* the full scan's table */
static char *real;			/* the cache that scan wrote */
static size_t real_len;
static struct stat box_st;

static void cleanup(void)
{
	unlink(cache);
	rmdir(state);
	unlink(box);
	rmdir(dir);
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *p;

	CHECK(fd >= 0 && fstat(fd, &st) == 0);
	p = malloc(st.st_size ? st.st_size : 1);
	CHECK(p != NULL);
	CHECK(mailfile_read(fd, p, st.st_size, 0) == st.st_size);
	close(fd);
	*len = st.st_size;
	return p;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;		/* the one opendir holds */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *err;
	int fd;

	(void)argc;
	(void)argv;
	/* libFuzzer ends with _Exit(), so the atexit() cleanup may not run:
	 * fuzz/run.sh gives a FUZZ_TMPDIR that it removes itself. */
	snprintf(dir, sizeof(dir), "%s/pop3-fuzz-cache.XXXXXX",
	    getenv("FUZZ_TMPDIR") ? getenv("FUZZ_TMPDIR") :
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(box, sizeof(box), "%s/alice", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(cache, sizeof(cache), "%s/cache", state);
	fd = open(box, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(mailfile_write(fd, mailbox, sizeof(mailbox) - 1, 0) == 0);
	CHECK(fstat(fd, &box_st) == 0);
	close(fd);
	CHECK(mkdir(state, 0700) == 0);
	CHECK(maildrop_open(&ref, box, state, getuid(), NULL, &err) == 0);
	CHECK(ref.count == 7 && ref.pool_len > 0);
	real = slurp(cache, &real_len);
	CHECK(real_len > sizeof(struct cache_header));
	return 0;
}

/* Every message of md: sent whole and as TOP 1, and its unique-id made. */
static int discard(struct output *o)
{
	CHECK(o->len <= o->size);
	o->len = 0;
	return 0;
}

static void exercise(struct maildrop *md)
{
	char uid[MAX_UIDL + 1], space[4096];
	struct output out = { space, 0, sizeof(space), discard };
	size_t i;

	for (i = 0; i < md->count; i++) {
		const struct message *m = &md->msg[i];

		CHECK(m->from <= m->data && m->data <= m->end &&
		    m->end <= md->length);
		CHECK(i == 0 || md->msg[i - 1].end <= m->from);
		maildrop_send(md, m, -1, &out);
		maildrop_send(md, m, 1, &out);
		maildrop_uidl(md, m, uid);
		CHECK(strlen(uid) >= 1 && strlen(uid) <= MAX_UIDL);
	}
}

static void same_as_scan(const struct maildrop *md)
{
	CHECK(md->count == ref.count && md->length == ref.length);
	CHECK(memcmp(md->msg, ref.msg, ref.count * sizeof(*ref.msg)) == 0);
	CHECK(md->pool_len == ref.pool_len &&
	    memcmp(md->pool, ref.pool, ref.pool_len) == 0);
	CHECK(md->visible == ref.visible && md->first == ref.first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cache_header *c;
	struct maildrop md;
	const char *err;
	size_t len, off;
	char *file;
	int fd, fds = open_fds();

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (size < 3)
			return 0;
		off = ((size_t)data[1] << 8 | data[2]) % (real_len + 1);
		len = off + (size - 3) > real_len ? off + (size - 3) : real_len;
		CHECK((file = malloc(len)) != NULL);
		memcpy(file, real, real_len);
		memcpy(file + off, data + 3, size - 3);
	} else {
		len = size - 1;
		CHECK((file = malloc(len ? len : 1)) != NULL);
		memcpy(file, data + 1, len);
	}
	c = (struct cache_header *)file;
	if (len >= sizeof(*c)) {
		if (data[0] & 2) {
			c->dev = box_st.st_dev;
			c->ino = box_st.st_ino;
			c->mtime_sec = box_st.st_mtim.tv_sec;
			c->mtime_nsec = box_st.st_mtim.tv_nsec;
		}
		if ((data[0] & 4) && c->count <= len / sizeof(struct message) &&
		    c->pool_len <= len) {
			size_t msgs = c->count * sizeof(struct message);

			if (sizeof(*c) + msgs + c->pool_len <= len)
				c->check = cache_check(c, file + sizeof(*c),
				    msgs, file + sizeof(*c) + msgs,
				    c->pool_len);
		}
	}
	fd = open(cache, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(mailfile_write(fd, file, len, 0) == 0);
	close(fd);
	free(file);

	CHECK(maildrop_open(&md, box, state, getuid(), NULL, &err) == 0);
	if (data[0] & 4)
		exercise(&md);
	else
		same_as_scan(&md);
	maildrop_close(&md);
	CHECK(open_fds() == fds);
	return 0;
}
