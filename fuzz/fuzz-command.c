/*
 * libFuzzer harness for the protocol engine (session.c and the command
 * files): the line reader, the dispatcher and every command handler, run
 * through session_run() as main() runs it, with the real maildrop code
 * underneath. It links the handler's objects: the client's bytes go through
 * a real socket, and the replies come back through a real pipe, on the
 * descriptors client_open() is given.
 *
 * Input: three control bytes, then the client's byte stream.
 *   byte 0, bits: 0 start in TRANSACTION on a fixed maildrop (else in
 *                   AUTHORIZATION, where logins open real mailbox files)
 *                 1 APOP offered (a fixed greeting timestamp)
 *                 2 -A   3 -S   4 -P
 *                 5 the client stops reading: writes fail (EPIPE) once it
 *                   has read byte 2 * 16 octets
 *                 6 at the end of the input the client goes silent
 *                   (idle timeout) instead of closing (EOF)
 *                 7 a remote peer address instead of "local"
 *   byte 1: the most one read() returns (0: the 4096-octet buffer): the
 *           input goes as SOCK_SEQPACKET packets of that size, each read
 *           returns one
 *   byte 2: with bit 5, where writes start to fail
 *
 * What it replaces, at link time only: auth.o and vusers.o (stub-auth.c: no
 * PAM, no secrets file, no identity change) and timing.o (stub-timing.c: no
 * 1-3 s failure delay, no alarm, and a day passes when the silent client
 * has nothing more to send). syslog only formats (quiet.h). A writer
 * thread sends the input and reads the replies as a client would.
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
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../client.h"
#include "../maildrop.h"
#include "../params.h"
#include "../session.h"
#include "fuzz-command.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void fuzz_fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-command: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

/* The client: what it sends, in packets of at most read_cap octets, and
 * what it has read back. */
static const uint8_t *in_data;
static size_t in_size, in_off, read_cap;
static int go_silent;
static char *out_data;
static size_t out_size, out_cap, write_fail_at;
static int write_fails, out_room;
/* The session's ends: it reads session_in and writes session_out; the
 * client writes peer_in and reads peer_out (its ends). */
static int session_in, session_out, peer_in, peer_out;
static atomic_int all_sent;	/* the client has sent its last packet */

int fuzz_client_idle(void)
{
	int queued;

	if (!go_silent)
		return 0;
	for (;;) {
		int sent = atomic_load(&all_sent);

		CHECK(ioctl(session_in, FIONREAD, &queued) == 0);
		if (queued > 0)
			return 0;
		if (sent)
			return 1;
		sched_yield();	/* the client is about to send more */
	}
}

static void take_output(void)
{
	ssize_t n;

	if (out_size + 65536 > out_cap) {
		size_t c = out_cap ? out_cap * 2 : 65536;

		out_data = realloc(out_data, c);
		CHECK(out_data != NULL);
		out_cap = c;
	}
	n = read(peer_out, out_data + out_size, out_cap - out_size);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	CHECK(n >= 0);
	out_size += n;
	if (n == 0 || (write_fails && out_size >= write_fail_at)) {
		close(peer_out);	/* the session's writes fail from here */
		peer_out = -1;
	}
}

/* Sends the next packets of the input while the socket takes them without
 * waiting. Returns 0, or -1 when the session has gone. */
static int send_input(void)
{
	size_t cap = read_cap ? read_cap : INPUT_BUFFER;

	while (in_off < in_size) {
		size_t n = in_size - in_off < cap ? in_size - in_off : cap;
		ssize_t w = send(peer_in, in_data + in_off, n,
		    MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return 0;
		if (w < 0)
			return -1;
		CHECK((size_t)w == n);
		in_off += n;
	}
	atomic_store(&all_sent, 1);
	if (!go_silent)
		shutdown(peer_in, SHUT_WR);
	return 0;
}

/* The client, when the input does not fit the socket at once or it stops
 * reading: sends the rest and reads the replies until the session's end of
 * the pipe is closed (or it stops reading, byte 0 bit 5) and the input is
 * sent (or the session has gone). */
static void *client(void *arg)
{
	(void)arg;
	while (peer_out >= 0 || in_off < in_size) {
		struct pollfd p[2] = { { peer_out, POLLIN, 0 },
		    { peer_in, POLLOUT, 0 } };
		int sending = in_off < in_size;

		if (poll(p, sending ? 2 : 1, -1) < 0) {
			CHECK(errno == EINTR);
			continue;
		}
		if (p[0].revents)
			take_output();
		if (sending && p[1].revents && send_input())
			in_off = in_size;	/* the session is gone */
	}
	return NULL;
}

/* The scratch spool: alice's mbox, and mailboxes that are refused. */
char fuzz_home[256];
static char alice_path[300];
static int alice_fd = -1;
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

static void write_alice(void)
{
	CHECK(ftruncate(alice_fd, 0) == 0);
	CHECK(pwrite(alice_fd, alice_mbox, sizeof(alice_mbox) - 1, 0) ==
	    (ssize_t)sizeof(alice_mbox) - 1);
}

/* Whether a QUIT rewrote alice's mbox: then it is put back. */
static void restore_alice(void)
{
	char buf[sizeof(alice_mbox)];
	struct stat st;

	CHECK(fstat(alice_fd, &st) == 0);
	if (st.st_size == (off_t)sizeof(alice_mbox) - 1 &&
	    pread(alice_fd, buf, sizeof(buf), 0) == st.st_size &&
	    !memcmp(buf, alice_mbox, st.st_size))
		return;
	write_alice();
}

static void make_file(const char *name, const char *text)
{
	char path[320];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fuzz_home, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void cleanup(void)
{
	char cmd[300];

	if (fuzz_home[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_home);
		if (system(cmd))
			fprintf(stderr, "fuzz-command: could not remove %s\n",
			    fuzz_home);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char tmpl[300], state_tmpl[300];
	struct sigaction sa;
	const char *err;
	char path[320];

	(void)argc;
	(void)argv;
	/* As main() does: a write to a client that has gone fails, EPIPE. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* libFuzzer ends with _Exit(), so the atexit() cleanup may not run:
	 * fuzz/run.sh gives a FUZZ_TMPDIR that it removes itself. */
	snprintf(fuzz_home, sizeof(fuzz_home), "%s/pop3-fuzz.XXXXXX",
	    getenv("FUZZ_TMPDIR") ? getenv("FUZZ_TMPDIR") :
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	CHECK(mkdtemp(fuzz_home) != NULL);
	atexit(cleanup);
	snprintf(alice_path, sizeof(alice_path), "%s/alice", fuzz_home);
	alice_fd = open(alice_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(alice_fd >= 0);
	write_alice();
	make_file("carol", "not an mbox\n");
	snprintf(path, sizeof(path), "%s/dave", fuzz_home);
	CHECK(symlink(alice_path, path) == 0);
	snprintf(path, sizeof(path), "%s/erin", fuzz_home);
	CHECK(mkdir(path, 0700) == 0);
	/* bob has no mailbox: an empty maildrop. */
	snprintf(tmpl, sizeof(tmpl), "%s/%%u", fuzz_home);
	opt.mailbox_template = tmpl;
	snprintf(state_tmpl, sizeof(state_tmpl), "%s/state-%%u", fuzz_home);
	opt.state_template = state_tmpl;
	snprintf(path, sizeof(path), "%s/state-alice", fuzz_home);
	CHECK(maildrop_open(&base, alice_path, path, geteuid(), NULL, &err) == 0);
	CHECK(base.visible == 5 && base.first == 1);
	return 0;
}

/* The lowest descriptor free. */
static int lowest_free(void)
{
	int fd = dup(STDERR_FILENO);

	CHECK(fd >= 0);
	close(fd);
	return fd;
}

/*
 * No descriptor may stay open after a session: the lowest free one is the
 * same after the run as before it. (Between runs libFuzzer may open its
 * own, the symbolizer's pipes for a NEW_FUNC line.)
 */
static void check_descriptors(int before)
{
	int fd = lowest_free();

	if (fd > before) {	/* say which are open, for the report */
		char path[64], link[256];
		ssize_t n;
		int i;

		for (i = 0; i < fd; i++) {
			snprintf(path, sizeof(path), "/proc/self/fd/%d", i);
			if ((n = readlink(path, link, sizeof(link) - 1)) > 0)
				fprintf(stderr, "fd %d: %.*s\n", i, (int)n,
				    link);
		}
	}
	CHECK(fd <= before);
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

/* Connects the client to the session: a socket in, a pipe out, whose
 * 1 MiB holds every reply to a 4 KiB input. */
static void connect_client(void)
{
	int in[2], out[2];

	int room = 4 << 20;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, in) == 0);
	CHECK(pipe2(out, O_CLOEXEC) == 0);
	/* As root, room for most inputs' packets (at most 512 are queued). */
	if (setsockopt(in[1], SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof(room)))
		setsockopt(in[1], SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
	session_in = in[0];
	peer_in = in[1];
	peer_out = out[0];
	session_out = out[1];
	out_room = fcntl(session_out, F_SETPIPE_SZ, 1 << 20);
	CHECK(out_room > 0);
	client_open(session_in, session_out);
}

/*
 * Runs the session with the client connected. When the whole input fits
 * the socket at once and the client reads everything, it is sent first and
 * the replies are read afterwards, no thread between (the pipe does not
 * block the session then: replies that filled it are not checked); else a
 * client thread sends the rest and reads as the session writes.
 */
static int run_session(struct session *s, int *unchecked)
{
	pthread_t writer;
	int status, threaded;

	connect_client();
	CHECK(send_input() == 0);
	threaded = in_off < in_size || write_fails;
	if (threaded)
		CHECK(pthread_create(&writer, NULL, client, NULL) == 0);
	else
		CHECK(fcntl(session_out, F_SETFL, O_NONBLOCK) == 0);
	status = session_run(s, 1);	/* no pre-auth child: not root_parent */
	close(session_in);
	close(session_out);
	if (threaded)
		CHECK(pthread_join(writer, NULL) == 0);
	else {
		while (peer_out >= 0)
			take_output();
		*unchecked = out_size >= (size_t)out_room;
	}
	close(peer_in);
	return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct session s;
	static struct message *copy;
	int mode, status, unchecked = 0, fds = lowest_free();

	if (size < 3)
		return 0;
	mode = data[0];
	read_cap = data[1];
	write_fails = (mode & 0x20) != 0;
	write_fail_at = (size_t)data[2] * 16;
	go_silent = (mode & 0x40) != 0;
	in_data = data + 3;
	in_size = size - 3;
	in_off = 0;
	out_size = 0;
	atomic_store(&all_sent, 0);

	/* What main() would set up. */
	opt.apop_file = (mode & 0x02) ? "/nonexistent/apop-secrets" : NULL;
	opt.apop_only = (mode & 0x04) != 0;
	opt.secure = (mode & 0x08) != 0;
	opt.plaintext_needs_tls = (mode & 0x10) != 0;
	memset(&s, 0, sizeof(s));
	session_init(&s, (mode & 0x80) ? "192.0.2.7" : "local");
	if (opt.apop_file) {
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

	status = run_session(&s, &unchecked);
	CHECK(status == 0 || status == 1);
	if (getenv("FUZZ_DUMP")) {	/* to read a transcript: FUZZ_DUMP=1 */
		fprintf(stderr, "--- status %d, %zu octets out:\n", status,
		    out_size);
		fwrite(out_data, 1, out_size, stderr);
	}
	if (!write_fails && !unchecked)
		check_transcript(status, s.timestamp);

	if (copy) {
		/* base's descriptors are shared; a commit may have opened more */
		CHECK(s.md.fd == base.fd);
		if (s.md.state >= 0 && s.md.state != base.state)
			close(s.md.state);
		if (s.md.rbuf != base.rbuf)	/* RETR's window took one */
			free(s.md.rbuf);
		free(copy);
	} else if (s.md.path)
		maildrop_close(&s.md);	/* also after a failed open */
	restore_alice();
	check_descriptors(fds);
	return 0;
}
