/*
 * libFuzzer harness for the protocol engine (pop3-handler.c): the line
 * reader, the dispatcher and every command handler, run through session()
 * as main() would, with the real maildrop code underneath.
 *
 * Input: three control bytes, then the client's byte stream.
 *   byte 0, bits: 0 start in TRANSACTION on a fixed maildrop (else in
 *                   AUTHORIZATION, where logins open real mailbox files)
 *                 1 APOP offered (a fixed greeting timestamp)
 *                 2 -A   3 -S   4 -P
 *                 5 the client stops reading: writes fail (EPIPE) after
 *                   byte 2 * 16 octets
 *                 6 at the end of the input the client goes silent
 *                   (idle timeout) instead of closing (EOF)
 *                 7 a remote peer address instead of "local"
 *   byte 1: the most read() returns at once (0: the 4096-octet buffer)
 *   byte 2: the most write() takes at once (0: all), or with bit 5 where
 *           writes start to fail
 *
 * What it replaces, here only: read/poll/write on the client descriptors
 * (the input buffer, short reads and writes), clock_nanosleep (the 1-3 s
 * failure delay), alarm, syslog (fuzz/quiet.h), and the auth_* functions (stubs
 * below: no PAM, no secrets file, no identity change). main() is renamed so
 * that libFuzzer's runs; session() is called directly.
 *
 * Checks (abort() on violation), unless writes were made to fail:
 *   - a reply for every complete input line, in order, each a "+OK" or
 *     "-ERR" line ending in CRLF of at most 512 octets, "-ERR Line too long"
 *     for a line over 255 octets with its LF and "-ERR NUL byte in command"
 *     for one holding a NUL; a multi-line body, ended by ".", exactly after
 *     +OK to CAPA, LIST and UIDL without argument, RETR and TOP; nothing for a
 *     last line without LF;
 *   - the session ends after +OK to QUIT (status 0), or after a closing -ERR
 *     ([AUTH] Too many failures, Too many bad commands, Too many commands
 *     before login, [SYS/...], [IN-USE])
 *     or at the end of input
 *     (status 1), and nothing is written after that;
 *   - no file descriptor is left open after the session;
 *   - the stubs see only what the Design promises: user names that
 *     user_name_ok() would accept, passwords of at most MAX_PASS octets.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../auth.h"
#include "../maildrop.h"
#include "../params.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ssize_t fuzz_read(int fd, void *buf, size_t n);
static ssize_t fuzz_write(int fd, const void *buf, size_t n);
static int fuzz_poll(struct pollfd *fds, nfds_t n, int timeout_ms);
static long fuzz_maildrop_commit(struct maildrop *md, const char **err);
static int fuzz_sigaction(int sig, const struct sigaction *act,
    struct sigaction *old);

#define read(fd, buf, n) fuzz_read(fd, buf, n)
#define write(fd, buf, n) fuzz_write(fd, buf, n)
#define poll(fds, n, t) fuzz_poll(fds, n, t)
#define clock_nanosleep(c, f, req, rem) \
	((void)(c), (void)(f), (void)(req), (void)(rem), 0)
#define alarm(s) ((void)(s), 0u)
#define sigaction(sig, act, old) fuzz_sigaction(sig, act, old)
#define maildrop_commit fuzz_maildrop_commit
#define main pop3_main
int pop3_main(int argc, char **argv);
#include "../pop3-handler.c"
#undef main
#undef sigaction
#undef clock_nanosleep
#undef maildrop_commit
#undef read
#undef write
#undef poll

long maildrop_commit(struct maildrop *md, const char **err);

/*
 * alarm() does nothing here, so a SIGALRM handler of the session (the
 * deadline of the maildrop's open, which _exit()s) could only catch
 * libFuzzer's own timer: -timeout drives it through SIGALRM, and the fuzzer
 * ended with status 1 and no report whenever a tick came during an open.
 * The session's SIGALRM handlers are not installed; every other signal's are.
 */
static int fuzz_sigaction(int sig, const struct sigaction *act,
    struct sigaction *old)
{
	if (sig == SIGALRM)
		return old ? sigaction(SIGALRM, NULL, old) : 0;
	return sigaction(sig, act, old);
}

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-command: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

/* The client: what it sends, how it reads and writes. */
static const uint8_t *in_data;
static size_t in_size, in_off, read_cap;
static int go_silent;
static char *out_data;
static size_t out_size, out_cap, write_cap, write_fail_at;
static int write_fails;

static ssize_t fuzz_read(int fd, void *buf, size_t n)
{
	CHECK(fd == STDIN_FILENO);
	if (n > in_size - in_off)
		n = in_size - in_off;
	if (read_cap && n > read_cap)
		n = read_cap;
	memcpy(buf, in_data + in_off, n);
	in_off += n;
	return n;
}

static int fuzz_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	CHECK(n == 1 && fds[0].fd == STDIN_FILENO && timeout_ms > 0);
	if (in_off == in_size && go_silent)
		return 0;
	fds[0].revents = POLLIN;
	return 1;
}

static ssize_t fuzz_write(int fd, const void *buf, size_t n)
{
	CHECK(fd == STDOUT_FILENO && n > 0);
	if (write_fails && out_size >= write_fail_at) {
		errno = EPIPE;
		return -1;
	}
	if (write_cap && n > write_cap)
		n = write_cap;
	if (out_size + n > out_cap) {
		size_t c = out_cap ? out_cap : 65536;

		while (c < out_size + n)
			c *= 2;
		out_data = realloc(out_data, c);
		CHECK(out_data != NULL);
		out_cap = c;
	}
	memcpy(out_data + out_size, buf, n);
	out_size += n;
	return n;
}

/* The scratch spool: alice's mbox, and mailboxes that are refused. */
static char dir[256], alice_path[300];
static int alice_fd = -1, alice_dirty;
static struct maildrop base;	/* alice's maildrop, for TRANSACTION starts */

static const char alice_mbox[] =
    "From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n"
    "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
    "X-IMAP: 1310126914 0000000002\n"
    "\n"
    "internal\n"
    "\n"
    "From a@example.org Mon Jan  1 00:00:00 2024\n"
    "Subject: one\n"
    "X-UIDL: uid-one\n"
    "\n"
    "first\n"
    ".\n"
    "..dots\n"
    "\n"
    "From b@example.org Mon Jan  1 00:00:01 2024\r\n"
    "Subject: two\r\n"
    "\r\n"
    "crlf body\r\n"
    "\r\n"
    "From c@example.org Mon Jan  1 00:00:02 2024\n"
    "Subject: same\n"
    "\n"
    "same\n"
    "\n"
    "From c@example.org Mon Jan  1 00:00:02 2024\n"
    "Subject: same\n"
    "\n"
    "same\n"
    "\n"
    "From d@example.org Mon Jan  1 00:00:03 2024\n"
    "Subject: headers only, no final newline";

static long fuzz_maildrop_commit(struct maildrop *md, const char **err)
{
	long r = maildrop_commit(md, err);

	if (r != 0)
		alice_dirty = 1;
	return r;
}

static void write_alice(void)
{
	CHECK(ftruncate(alice_fd, 0) == 0);
	CHECK(pwrite(alice_fd, alice_mbox, sizeof(alice_mbox) - 1, 0) ==
	    (ssize_t)sizeof(alice_mbox) - 1);
	alice_dirty = 0;
}

static void make_file(const char *name, const char *text)
{
	char path[320];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void cleanup(void)
{
	char cmd[300];

	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			fprintf(stderr, "fuzz-command: could not remove %s\n", dir);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char tmpl[300], state_tmpl[300];
	const char *err;
	char path[320];

	(void)argc;
	(void)argv;
	/* libFuzzer ends with _Exit(), so the atexit() cleanup may not run:
	 * fuzz/run.sh gives a FUZZ_TMPDIR that it removes itself. */
	snprintf(dir, sizeof(dir), "%s/pop3-fuzz.XXXXXX",
	    getenv("FUZZ_TMPDIR") ? getenv("FUZZ_TMPDIR") :
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(alice_path, sizeof(alice_path), "%s/alice", dir);
	alice_fd = open(alice_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(alice_fd >= 0);
	write_alice();
	make_file("carol", "not an mbox\n");
	snprintf(path, sizeof(path), "%s/dave", dir);
	CHECK(symlink(alice_path, path) == 0);
	snprintf(path, sizeof(path), "%s/erin", dir);
	CHECK(mkdir(path, 0700) == 0);
	/* bob has no mailbox: an empty maildrop. */
	snprintf(tmpl, sizeof(tmpl), "%s/%%u", dir);
	mailbox_template = tmpl;
#ifdef DEFAULT_STATE	/* the handler with an update journal (-D) */
	snprintf(state_tmpl, sizeof(state_tmpl), "%s/state-%%u", dir);
	state_template = state_tmpl;
	snprintf(path, sizeof(path), "%s/state-alice", dir);
	CHECK(maildrop_open(&base, alice_path, path, geteuid(), &err) == 0);
#else
	CHECK(maildrop_open(&base, alice_path, geteuid(), &err) == 0);
#endif
	CHECK(base.visible == 5 && base.first == 1);
	return 0;
}

/* Stubs for auth.c: no PAM, no secrets file, no change of identity. */
static const char *const users[] = {
	"alice", "bob", "carol", "dave", "erin", "nobody", NULL
};

static int known(const char *user)
{
	int i;

	for (i = 0; users[i]; i++)
		if (!strcmp(user, users[i]))
			return 1;
	return 0;
}

static void check_user(const char *user)
{
	CHECK(user != NULL && strlen(user) <= MAX_USER);
	CHECK(user_name_ok(user));
}

int auth_pam(const char *service, char *user, const char *password,
    const char *rhost)
{
	CHECK(service == pam_service);
	check_user(user);
	CHECK(password != NULL && strlen(password) <= MAX_PASS);
	CHECK(rhost == NULL || !strcmp(rhost, "192.0.2.7"));
	if (!strcasecmp(user, "alice") && strcmp(user, "alice")) {
		/* PAM may settle on another spelling of the name. */
		strcpy(user, "alice");
	}
	return known(user) && !strcmp(password, "secret") ? 0 : -1;
}

int auth_apop(const char *file, const char *user, const char *timestamp,
    const char *digest)
{
	CHECK(file == apop_file && file != NULL);
	check_user(user);
	CHECK(timestamp != NULL && timestamp[0] == '<');
	CHECK(digest != NULL && !strchr(digest, ' '));
	return known(user) &&
	    !strcasecmp(digest, "c4c9334bac560ecc979e58001b3e22fb") ? 0 : -1;
}

int auth_cram(const char *file, const char *user, const char *challenge,
    const char *digest)
{
	CHECK(file == apop_file && file != NULL);
	check_user(user);
	CHECK(challenge != NULL && challenge[0] == '<');
	CHECK(digest != NULL);
	return known(user) &&
	    !strcasecmp(digest, "b913a602c7eda7a495b4e6e7334d3890") ? 0 : -1;
}

int auth_has_secret(const char *file, const char *user)
{
	CHECK(file == apop_file && file != NULL);
	CHECK(user != NULL && user[0] && strlen(user) <= MAX_USER);
	if (!strcmp(user, "carol"))
		return -1;	/* as if the secrets file were refused */
	return !strcmp(user, "alice");
}

int auth_known(const char *user)
{
	CHECK(user != NULL && user[0] && strlen(user) <= MAX_USER);
	return strcmp(user, "nobody") != 0;
}

/* auth.h has this one since privilege separation. */
int auth_may_serve(const char *user);

int auth_may_serve(const char *user)
{
	check_user(user);
	return strcmp(user, "nobody") ? 0 : -1;
}

int auth_lookup(const char *account, const char *name, struct auth_user *u)
{
	CHECK(name == NULL);	/* no virtual users here */
	check_user(account);
	if (!strcmp(account, "nobody"))
		return -1;
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", account);
	u->uid = geteuid();
	snprintf(u->home, sizeof(u->home), "%s", dir);
	return 0;
}

void auth_drop(const struct auth_user *u)
{
	CHECK(u->uid == geteuid());
}

/* Virtual users (-v, -U, -H; vusers.c and auth.c): the harness never sets
 * -v, and never runs main(), so none of these may be reached. */
int vusers_check(const char *file, const char *user, const char *password,
    char *tmpl, size_t size)
{
	(void)file, (void)user, (void)password, (void)tmpl, (void)size;
	CHECK(0);
	return -1;
}

int auth_file_entry(const char *file, const char *user, char *buf,
    size_t size)
{
	(void)file, (void)user, (void)buf, (void)size;
	CHECK(0);
	return -1;
}

int vusers_hash(FILE *in, FILE *out)
{
	(void)in, (void)out;
	CHECK(0);
	return -1;
}

int auth_virtual_account(const char *account)
{
	(void)account;
	CHECK(0);
	return -1;
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

/* Whether a +OK to this command line is followed by a multi-line body. */
static int multi_line(const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	size_t klen = sp ? (size_t)(sp - line) : len;

	if (klen == 4 && (!strncasecmp(line, "CAPA", 4) ||
	    !strncasecmp(line, "LANG", 4) || !strncasecmp(line, "AUTH", 4)))
		return !sp || !strncasecmp(line, "CAPA", 4);
	if (klen == 4 && (!strncasecmp(line, "LIST", 4) ||
	    !strncasecmp(line, "UIDL", 4)))
		return !sp;
	if (klen == 4 && !strncasecmp(line, "RETR", 4))
		return 1;
	return klen == 3 && !strncasecmp(line, "TOP", 3);
}

/* The next CRLF-ended line of the output at *pos: its length, or aborts. */
static size_t out_line(size_t *pos, const char **line)
{
	const char *p = out_data + *pos;
	const char *e = memmem(p, out_size - *pos, "\r\n", 2);

	CHECK(e != NULL);
	*line = p;
	*pos += e - p + 2;
	return e - p;
}

static int starts(const char *line, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && !memcmp(line, prefix, n);
}

#ifndef MAX_SASL_LINE
#define MAX_SASL_LINE MAX_LINE
#endif

/*
 * Replays the input as a client would and checks each reply. After a "+ "
 * continuation (SASL, RFC 5034) the next line is a response, not a command:
 * up to MAX_SASL_LINE octets, never answered with a multi-line body, and the
 * session can't just end there without a last -ERR.
 */
static void check_transcript(int status, const char *timestamp)
{
	char greeting[256];
	size_t pos = 0, off = 0, len;
	const char *line;
	int sasl = 0;

	snprintf(greeting, sizeof(greeting), "+OK " POP3_NAME " ready%s%s",
	    timestamp[0] ? " " : "", timestamp);
	len = out_line(&pos, &line);
	CHECK(len == strlen(greeting) && !memcmp(line, greeting, len));
	for (;;) {
		const uint8_t *nl = memchr(in_data + off, '\n', in_size - off);
		size_t cl, total;
		const char *cmd = (const char *)in_data + off;

		if (!nl) {
			/* EOF (a last line without LF is no command) or silence */
			if (go_silent) {
				len = out_line(&pos, &line);
				CHECK(len == 32 && !memcmp(line,
				    "-ERR Disconnected for inactivity", 32));
			} else if (sasl) {
				len = out_line(&pos, &line);
				CHECK(starts(line, len, "-ERR"));
			}
			CHECK(pos == out_size);
			CHECK(status == 1);
			return;
		}
		total = nl - (in_data + off) + 1;
		off += total;
		cl = total - 1;
		if (cl && cmd[cl - 1] == '\r')
			cl--;
		len = out_line(&pos, &line);
		CHECK(len + 2 <= 512);
		if (starts(line, len, "-ERR Too many bad commands") ||
		    starts(line, len, "-ERR Too many commands before login")) {
			/* the limit on bad lines, or on lines before login:
			 * replaces any reply, closes */
			CHECK(pos == out_size);
			CHECK(status == 1);
			return;
		}
		if (total > (sasl ? MAX_SASL_LINE : MAX_LINE)) {
			CHECK(len == 18 && !memcmp(line, "-ERR Line too long", 18));
			sasl = 0;
			continue;
		}
		if (memchr(cmd, '\0', cl)) {
			CHECK(starts(line, len, sasl ? "-ERR NUL byte in " :
			    "-ERR NUL byte in command"));
			sasl = 0;
			continue;
		}
		if (len == 1 ? line[0] == '+' : starts(line, len, "+ ")) {
			sasl = 1;
			continue;
		}
		if (starts(line, len, "+OK")) {
			CHECK(len == 3 || line[3] == ' ');
			if (!sasl && multi_line(cmd, cl)) {
				const char *b;
				size_t bl;

				do
					bl = out_line(&pos, &b);
				while (!(bl == 1 && b[0] == '.'));
			}
			if (!sasl && cl == 4 && !strncasecmp(cmd, "QUIT", 4)) {
				CHECK(pos == out_size);
				CHECK(status == 0);
				return;
			}
			sasl = 0;
			continue;
		}
		sasl = 0;
		CHECK(starts(line, len, "-ERR") && (len == 4 || line[4] == ' '));
		if (starts(line, len, "-ERR [AUTH] Too many failures") ||
		    starts(line, len, "-ERR [SYS/") ||
		    starts(line, len, "-ERR [IN-USE]")) {
			CHECK(pos == out_size);
			CHECK(status == 1);
			return;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct session s;
	static struct message *copy;
	int mode, status, before;

	if (size < 3)
		return 0;
	before = lowest_free_fd();
	mode = data[0];
	read_cap = data[1];
	write_fails = (mode & 0x20) != 0;
	write_cap = write_fails ? 0 : data[2];
	write_fail_at = (size_t)data[2] * 16;
	go_silent = (mode & 0x40) != 0;
	in_data = data + 3;
	in_size = size - 3;
	in_off = 0;
	out_size = 0;

	/* What main() and the static initializers would set up. */
	in_pos = in_len = 0;
	output.len = 0;
	out_sent = 0;
	alarmed = 0;
	apop_file = (mode & 0x02) ? "/nonexistent/apop-secrets" : NULL;
	apop_only = (mode & 0x04) != 0;
	secure = (mode & 0x08) != 0;
	plaintext_needs_tls = (mode & 0x10) != 0;
	memset(&s, 0, sizeof(s));
	s.state = AUTHORIZATION;
	s.md.fd = -1;
	s.peer = (mode & 0x80) ? "192.0.2.7" : "local";
	if (apop_file) {
		snprintf(s.timestamp, sizeof(s.timestamp),
		    "<1896.697170952@dbc.mtview.ca.us>");
		snprintf(s.challenge, sizeof(s.challenge),
		    "<1896.697170952@postoffice.example.net>");
	}
	copy = NULL;
	if (mode & 0x01) {
		s.state = TRANSACTION;
		snprintf(s.who.name, sizeof(s.who.name), "alice");
		s.who.uid = geteuid();
		s.md = base;
		copy = malloc(base.count * sizeof(*copy));
		CHECK(copy != NULL);
		memcpy(copy, base.msg, base.count * sizeof(*copy));
		s.md.msg = copy;
	}

#ifdef POP3_PRIVSEP_H
	status = session(&s, 1);	/* channel stays -1: no pre-auth child */
#else
	status = session(&s);
#endif
	CHECK(status == 0 || status == 1);
	if (getenv("FUZZ_DUMP")) {	/* to read a transcript: FUZZ_DUMP=1 */
		fprintf(stderr, "--- status %d, %zu octets out:\n", status,
		    out_size);
		fwrite(out_data, 1, out_size, stderr);
	}
	if (!write_fails)
		check_transcript(status, s.timestamp);

	if (copy) {
		/* base's descriptors are shared; a commit may have opened more */
		CHECK(s.md.fd == base.fd);
#ifdef DEFAULT_STATE
		if (s.md.state >= 0 && s.md.state != base.state)
			close(s.md.state);
#endif
		free(copy);
	} else if (s.md.path)
		maildrop_close(&s.md);	/* also after a failed open */
	if (alice_dirty)
		write_alice();
	CHECK(lowest_free_fd() <= before);
	return 0;
}
