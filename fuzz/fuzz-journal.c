/*
 * libFuzzer harness for the update journal (journal.c: journal_recover and
 * what it trusts), linked with the mailbox files as the handler is. The
 * input becomes the "journal" file in the state directory of a real
 * mailbox, left there as by a crash in mid-update, and maildrop_open() runs
 * on that mailbox as the next login would. README's
 * Design promises that a journal is carried out only when its hashes say it
 * is the one written for this very file: a damaged or foreign journal can
 * cost a refused login or a journal.bad file for the admin, never a mailbox
 * other than the old or the new one.
 *
 * The harness writes a real journal at start (journal_write, as QUIT does):
 * for deleting messages 2 and 4 of a five-message mailbox.
 *
 * Input: a flag byte, then the bytes of the journal.
 *   bit 0  the bytes overlay the real journal from the offset in the next
 *          two bytes, instead of replacing it: mutations reach every field
 *   bit 1  the header's check is recomputed (a header rewritten whole)
 *   bit 2  the data's hash is recomputed too, as a forger would: then the
 *          journal is trusted for what it says
 *   bits 3-4  the mailbox the journal finds: 0 the old one (not cut yet),
 *          1 the new one (only the journal's removal was left), 2 the old
 *          one half rewritten (the first bytes of the journal's data over
 *          it, as many as the byte after the flags says), 3 the old one with
 *          a byte changed before the update's start (another file)
 *   bit 5  a message was appended to the mailbox after the crash
 *
 * Checks (abort() on violation):
 *   - the mailbox after the open is the one before it, the new one (with
 *     the appended message), or, with bit 2 only, what the journal says:
 *     the old bytes before its start and its data (and the appended one);
 *   - the real journal, unmutated, on the old, half-rewritten or new
 *     mailbox: the open succeeds with the new one; on another file it is
 *     set aside and the open succeeds with the mailbox untouched;
 *   - a mailbox that changed means the open succeeded; a failed open says
 *     [SYS/TEMP]; a successful one has the table a fresh scan of the file
 *     makes, and leaves no journal behind;
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

#include "../journal.h"
#include "../mailfile.h"
#include "../maildrop.h"
#include "../xxh3.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-journal: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

/* Five messages, one of them CRLF, one without a final newline. */
static const char old_box[] =
    "From a@example.org Mon Jan  1 00:00:00 2024\n"
    "Subject: one\nX-UIDL: first-id\n\nbody one\n.dot\n\n"
    "From b@example.org Mon Jan  1 00:00:01 2024\n"
    "Subject: two\n\nbody two\n\n"
    "From c@example.org Mon Jan  1 00:00:02 2024\r\n"
    "Subject: three\r\n\r\nbody three\r\n\r\n"
    "From d@example.org Mon Jan  1 00:00:03 2024\n"
    "Subject: four\n\n>From here\n\n"
    "From e@example.org Mon Jan  1 00:00:04 2024\n"
    "Subject: five\n\nno newline at the end";
static const char late[] =
    "\n\nFrom z@example.org Tue Jan  2 00:00:00 2024\n"
    "Subject: after the crash\n\nlate mail\n";

static char dir[256], box[300], state[300];
static char *real;			/* the journal QUIT wrote */
static size_t real_len;
static char new_box[sizeof(old_box)];	/* the mailbox it makes */
static size_t new_len, start;

static void clear_state(void)
{
	DIR *d = opendir(state);
	struct dirent *e;
	int dfd;

	if (!d)
		return;
	dfd = dirfd(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dfd, e->d_name, 0);
	closedir(d);
}

static void cleanup(void)
{
	clear_state();
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

/* Rewrites the mailbox in place (its inode, which the journal names, stays). */
static void put(const char *path, const char *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(mailfile_write(fd, p, len, 0) == 0);
	close(fd);
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

/* Whether the state directory holds no journal but one set aside. */
static int no_journal_left(void)
{
	DIR *d = opendir(state);
	struct dirent *e;
	int ok = 1;

	CHECK(d != NULL);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "journal", 7) &&
		    strncmp(e->d_name, "journal.bad.", 12))
			ok = 0;
	closedir(d);
	return ok;
}

/* The real journal, by the function QUIT writes it with: messages 2 and 4
 * (of 1 to 5) deleted. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct maildrop md;
	struct journal j;
	struct range r[2];
	struct stat st;
	const char *err;
	char *buf;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/pop3-fuzz-journal.XXXXXX",
	    getenv("FUZZ_TMPDIR") ? getenv("FUZZ_TMPDIR") :
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(box, sizeof(box), "%s/alice", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	put(box, old_box, sizeof(old_box) - 1);
	CHECK(mkdir(state, 0700) == 0);
	CHECK(maildrop_open(&md, box, NULL, getuid(), NULL, &err) == 0);
	CHECK(md.count == 5 && md.length == sizeof(old_box) - 1);
	CHECK(fstat(md.fd, &st) == 0);
	CHECK((md.state = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	CHECK((buf = malloc(MAILBOX_CHUNK)) != NULL);

	memset(&j, 0, sizeof(j));
	start = md.msg[1].from;
	r[0] = (struct range){ md.fd, md.msg[2].from,
	    md.msg[3].from - md.msg[2].from };
	r[1] = (struct range){ md.fd, md.msg[4].from,
	    md.length - md.msg[4].from };
	j.dev = st.st_dev;
	j.ino = st.st_ino;
	j.start = start;
	j.old_end = md.length;
	j.new_end = start + r[0].len + r[1].len;
	CHECK(mailfile_hash(md.fd, 0, j.start, buf, &j.prefix) == 0);
	CHECK(mailfile_hash(md.fd, j.new_end, j.old_end, buf, &j.tail) == 0);
	CHECK(journal_write(&md, &j, r, 2, buf) == 0);

	memcpy(new_box, old_box, start);
	memcpy(new_box + start, old_box + r[0].off, r[0].len);
	memcpy(new_box + start + r[0].len, old_box + r[1].off, r[1].len);
	new_len = j.new_end;
	free(buf);
	maildrop_close(&md);
	{
		char path[320];

		snprintf(path, sizeof(path), "%s/journal", state);
		real = slurp(path, &real_len);
	}
	CHECK(real_len == sizeof(j) + new_len - start);
	clear_state();
	return 0;
}

static int same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && !memcmp(a, b, alen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildrop md, fresh;
	struct journal *j;
	const char *err;
	char *file, *before, *after, *said = NULL;
	size_t len, off, blen, alen, said_len = 0, half;
	int fd, r, where, appended, fds = open_fds();
	char path[320];

	if (size < 2)
		return 0;
	where = (data[0] >> 3) & 3;
	appended = (data[0] >> 5) & 1;
	half = data[1] % (new_len - start + 1);
	data += 2;
	size -= 2;
	if (data[-2] & 1) {
		if (size < 2)
			return 0;
		off = ((size_t)data[0] << 8 | data[1]) % (real_len + 1);
		len = off + (size - 2) > real_len ? off + (size - 2) : real_len;
		CHECK((file = malloc(len)) != NULL);
		memcpy(file, real, real_len);
		memcpy(file + off, data + 2, size - 2);
	} else {
		len = size;
		CHECK((file = malloc(len ? len : 1)) != NULL);
		memcpy(file, data, len);
	}
	j = (struct journal *)file;
	if (len >= sizeof(*j)) {
		if (data[-2] & 4)
			j->data = XXH3_64bits(file + sizeof(*j),
			    len - sizeof(*j));
		if (data[-2] & 6)
			j->check = journal_check(j);
	}

	/* The mailbox as the crash left it, and the mail come since. */
	CHECK((before = malloc(sizeof(old_box) + sizeof(late))) != NULL);
	if (where == 1) {
		memcpy(before, new_box, blen = new_len);
	} else {
		memcpy(before, old_box, blen = sizeof(old_box) - 1);
		if (where == 2)
			memcpy(before + start, new_box + start, half);
		if (where == 3)
			before[start - 3] ^= 1;	/* in message 1's body */
	}
	if (appended) {
		memcpy(before + blen, late, sizeof(late) - 1);
		blen += sizeof(late) - 1;
	}
	put(box, before, blen);
	snprintf(path, sizeof(path), "%s/journal", state);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(mailfile_write(fd, file, len, 0) == 0);
	close(fd);

	/* What a forged journal says the mailbox becomes: the bytes before
	 * its start, its data, and what lies past its old end (mail come
	 * since). */
	if ((data[-2] & 4) && len >= sizeof(*j) && j->start <= blen &&
	    j->old_end <= blen) {
		said_len = j->start + (len - sizeof(*j)) + (blen - j->old_end);
		CHECK((said = malloc(said_len ? said_len : 1)) != NULL);
		memcpy(said, before, j->start);
		memcpy(said + j->start, file + sizeof(*j), len - sizeof(*j));
		memcpy(said + j->start + (len - sizeof(*j)), before + j->old_end,
		    blen - j->old_end);
	}

	r = maildrop_open(&md, box, state, getuid(), NULL, &err);
	after = slurp(box, &alen);
	if (same(file, len, real, real_len) && where != 3) {
		CHECK(r == 0);
		CHECK(alen == new_len + (appended ? sizeof(late) - 1 : 0));
		CHECK(!memcmp(after, new_box, new_len));
	} else if (same(file, len, real, real_len)) {
		CHECK(r == 0);
		CHECK(same(after, alen, before, blen));
	}
	CHECK(same(after, alen, before, blen) ||
	    (alen == new_len + (appended ? sizeof(late) - 1 : 0) &&
	    !memcmp(after, new_box, new_len) &&
	    (!appended || !memcmp(after + new_len, late, sizeof(late) - 1))) ||
	    (said && same(after, alen, said, said_len)));
	CHECK(r == 0 || same(after, alen, before, blen));
	if (r) {
		CHECK(!strncmp(err, "[SYS/TEMP] ", 11));
	} else {
		/* The table is the file's: a fresh scan agrees. */
		maildrop_tidy(&md);
		CHECK(no_journal_left());
		CHECK(maildrop_open(&fresh, box, NULL, getuid(), NULL, &err) == 0);
		CHECK(fresh.count == md.count && fresh.length == md.length);
		CHECK(!md.count || !memcmp(fresh.msg, md.msg,
		    md.count * sizeof(*md.msg)));
		maildrop_close(&fresh);
	}
	maildrop_close(&md);
	clear_state();
	free(file);
	free(before);
	free(after);
	free(said);
	CHECK(open_fds() == fds);
	return 0;
}
