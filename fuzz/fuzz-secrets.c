/*
 * libFuzzer harness for the APOP secrets-file parser and the digest check
 * (auth.c: find_secret, auth_has_secret, auth_apop).
 *
 * Input: one control byte, a user name up to the first LF, then the secrets
 * file, which is written to a mode 0600 file of ours. An independent
 * reference parser reads the file as the README says ("One user:secret per
 * line. Blank lines and lines starting with # are ignored. The secret is
 * everything after the first colon ... lines are at most 1023 octets"; as the
 * code does, one CR before the LF is not part of the line, and the first line
 * for a user counts), and then:
 *   - auth_has_secret says 1 exactly when the reference finds a secret;
 *   - auth_apop accepts the right digest, MD5(timestamp secret) in lower and
 *     in upper case, exactly when there is a secret, and refuses a digest
 *     with one hex digit changed, a digest one digit short, and the control
 *     byte's variant: the right digest with the characters that byte picks
 *     given the other case (bit 0x20 flipped), which is accepted only when
 *     every character is still a hex digit.
 * A file holding a NUL byte is only run, not compared: see
 * tests/fuzz-crashes/README.md for what the parser does with one.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../auth.c"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-secrets: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

static const char timestamp[] = "<1896.697170952@dbc.mtview.ca.us>";
static char dir[256], file[300];
static int file_fd = -1;

static void cleanup(void)
{
	if (file[0])
		unlink(file);
	if (dir[0])
		rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* libFuzzer ends with _Exit(), so the atexit() cleanup may not run:
	 * fuzz/run.sh gives a FUZZ_TMPDIR that it removes itself. */
	snprintf(dir, sizeof(dir), "%s/pop3-fuzz.XXXXXX",
	    getenv("FUZZ_TMPDIR") ? getenv("FUZZ_TMPDIR") :
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(file, sizeof(file), "%s/secrets", dir);
	file_fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(file_fd >= 0);
	return 0;
}

/* The README's reading of the file: 1 and the secret, or 0. */
static int reference(const char *f, size_t size, const char *user,
    char *secret)
{
	size_t off = 0, ulen = strlen(user);

	while (off < size) {
		const char *l = f + off;
		const char *nl = memchr(l, '\n', size - off);
		size_t len = nl ? (size_t)(nl - l) : size - off;

		off += len + (nl != NULL);
		if (len > MAX_SECRET_LINE - 1)
			continue;
		if (len && l[len - 1] == '\r')
			len--;
		if (len == 0 || l[0] == '#')
			continue;
		if (len > ulen && !memcmp(l, user, ulen) && l[ulen] == ':') {
			memcpy(secret, l + ulen + 1, len - ulen - 1);
			secret[len - ulen - 1] = '\0';
			return 1;
		}
	}
	return 0;
}

static void digest_of(const char *secret, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[MD5_DIGEST_LENGTH];
	MD5_CTX ctx;
	int i;

	MD5Init(&ctx);
	MD5Update(&ctx, (const uint8_t *)timestamp, strlen(timestamp));
	MD5Update(&ctx, (const uint8_t *)secret, strlen(secret));
	MD5Final(md, &ctx);
	for (i = 0; i < MD5_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[32] = '\0';
}

/*
 * No descriptor may stay open after a run: the lowest free one is no higher
 * than before it. Compared per run, not with the first run's: libFuzzer
 * itself opens a pipe to its symbolizer between runs when it prints a
 * NEW_FUNC line.
 */
static int lowest_free_fd(void)
{
	int fd = dup(STDERR_FILENO);

	CHECK(fd >= 0);
	close(fd);
	return fd;
}

static int run(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int before = lowest_free_fd();

	run(data, size);
	CHECK(lowest_free_fd() <= before);
	return 0;
}

static int run(const uint8_t *data, size_t size)
{
	char user[MAX_USER + 1], secret[MAX_SECRET_LINE + 1];
	char right[33], other[33];
	const uint8_t *nl;
	size_t ulen;
	int i;
	int mask, found, compare, hexonly;

	if (size < 2)
		return 0;
	mask = data[0];
	data++;
	size--;
	nl = memchr(data, '\n', size);
	if (!nl)
		return 0;
	ulen = nl - data;
	if (ulen == 0 || ulen > MAX_USER || memchr(data, '\0', ulen))
		return 0;
	memcpy(user, data, ulen);
	user[ulen] = '\0';
	data += ulen + 1;
	size -= ulen + 1;

	CHECK(ftruncate(file_fd, 0) == 0);
	CHECK(pwrite(file_fd, data, size, 0) == (ssize_t)size);

	compare = !memchr(data, '\0', size);
	found = reference((const char *)data, size, user, secret);
	if (!found)
		strcpy(secret, "no secret for this user");
	digest_of(secret, right);

	i = auth_has_secret(file, user);
	CHECK(i == 0 || i == 1);
	CHECK(!compare || (int)i == found);
	i = auth_apop(file, user, timestamp, right) == 0;
	CHECK(!compare || (int)i == found);
	if (!compare)
		return 0;	/* a NUL may hide a secret: nothing to compare */

	for (i = 0; i < 32; i++)
		other[i] = right[i] >= 'a' ? right[i] - 0x20 : right[i];
	other[32] = '\0';
	CHECK((auth_apop(file, user, timestamp, other) == 0) == found);

	/* one hex digit changed: always refused */
	memcpy(other, right, 33);
	i = mask % 32;
	other[i] = other[i] == '0' ? '1' : '0';
	CHECK(auth_apop(file, user, timestamp, other) != 0);

	/* one digit short: refused */
	memcpy(other, right, 33);
	other[31] = '\0';
	CHECK(auth_apop(file, user, timestamp, other) != 0);

	/* the other case where the control byte says: a non-hex character
	 * for each digit so changed */
	if (!found)
		return 0;
	memcpy(other, right, 33);
	hexonly = 1;
	for (i = 0; i < 32; i++)
		if ((mask >> (i % 8)) & 1 && i / 8 == (mask & 3)) {
			other[i] ^= 0x20;
			if (!strchr("0123456789abcdefABCDEF", other[i]))
				hexonly = 0;
		}
	CHECK((auth_apop(file, user, timestamp, other) == 0) == hexonly);
	return 0;
}
