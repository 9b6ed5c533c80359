/*
 * pop3-handler: one POP3 session (RFC 1939, RFC 2449, RFC 3206) on stdin and
 * stdout. This file is the protocol engine: options, line I/O, the command
 * table and its dispatcher.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "dotlock.h"
#include "maildrop.h"
#include "params.h"
#include "privsep.h"
#include "proxy.h"
#include "sasl.h"
#include "userstate.h"
#include "vusers.h"

/* Options. */
static const char *pam_service = DEFAULT_PAM_SERVICE;
static const char *mailbox_template = DEFAULT_MAILBOX;
static const char *state_template = DEFAULT_STATE;
static const char *apop_file;
static int apop_only;			/* -A */
static int secure;			/* -S: the connection is under TLS */
static int plaintext_needs_tls;		/* -P */
static int timeout = DEFAULT_TIMEOUT;
static int login_timeout = DEFAULT_LOGIN_TIMEOUT;	/* -L */
static long login_delay = -1;		/* -l: LOGIN-DELAY seconds */
static long expire = -1;		/* -e: EXPIRE days; 0 deletes RETR'd */
static int no_top;			/* -T */
static int one_session;			/* -1: [IN-USE] for a second one */
static int no_nuls;			/* -W outlook-no-nuls */
static int add_eoh;			/* -W oe-ns-eoh */
static const char *proxies;		/* -X: who may send a PROXY header */
static const char *vusers_file;		/* -v: only its users log in */
static const char *vusers_account;	/* -U: the account they map to */
/* The authority's pick for the virtual user it let in: the entry's mailbox
 * template, or "" for -m's. */
static char vusers_mailbox[MAX_SECRET_LINE + 1];

/* In the pre-auth child: the channel to the root parent; else -1. */
static int channel = -1;
/* Without privilege separation: when AUTHORIZATION runs out (-L), in
 * milliseconds on the monotonic clock; 0 after a login, and always 0 in the
 * pre-auth child, whose root parent keeps the deadline instead. */
static long long login_deadline;

/* What a handler tells the dispatcher to do with its reply. */
enum result {
	P_OK,		/* +OK reply, then any multi-line body */
	P_ERR,		/* -ERR reply */
	P_QUIT,		/* +OK reply, then end the session */
	P_CLOSE		/* -ERR reply, then hang up */
};

enum state { AUTHORIZATION = 1, TRANSACTION = 2 };

struct counter {
	unsigned long count;
	unsigned long long octets;
};

struct session {
	enum state state;
	char reply[512];	/* the text after +OK or -ERR */
	/* a multi-line body to follow a +OK, and its argument */
	int (*body)(struct session *);
	struct message *msg;
	long long lines;
	/* AUTHORIZATION */
	char user[MAX_USER + 1];	/* from USER; "" before it */
	int user_ok;			/* the name could be a user's */
	int failures[2];		/* by what they guessed at: the
					 * password, the secrets file */
	int bad;			/* malformed or unknown commands */
	int commands;			/* commands read before login */
	char timestamp[128];		/* APOP, "" when not offered */
	char challenge[128];		/* CRAM-MD5, "" when not offered */
	int utf8;			/* UTF8 given: names and passwords
					 * are UTF-8, SASLprep'd */
	/* TRANSACTION */
	struct auth_user who;
	struct maildrop md;
	struct counter top, retr, del;
	unsigned long long octets;	/* of every message at login */
	int lock;			/* the session lock (-1), or -1 */
	const char *peer;
};

/* Client I/O. */
static char inbuf[INPUT_BUFFER];
static size_t in_pos, in_len;
static char outbuf[OUTPUT_BUFFER];
static int send_output(struct maildrop_out *o);
/* Replies and messages, which maildrop_send writes into directly. */
static struct maildrop_out output = { outbuf, 0, sizeof(outbuf), send_output };
static unsigned long long out_sent;	/* octets written to the client */
static volatile sig_atomic_t alarmed;
static int timed_socket;		/* SO_SNDTIMEO bounds our writes */

static void on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

/* Seconds that opening the maildrop may take: the idle timeout, the client's
 * wait, but never so few that a busy lock is not answered [IN-USE]. */
static unsigned open_deadline(void)
{
	return timeout > OPEN_TIMEOUT_MIN ? (unsigned)timeout :
	    OPEN_TIMEOUT_MIN;
}

/*
 * Writes buf to the client whole, within the timeout. On a socket the
 * kernel keeps the time (SO_SNDTIMEO, set once: a write that sends nothing
 * for that long fails with EAGAIN); elsewhere (a pipe, by hand) an alarm
 * does, and two alarm calls a write were 5 % of RETR's time on a socket.
 * Returns 0 or -1.
 */
static int write_client(const char *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	alarmed = 0;
	if (!timed_socket)
		alarm(timeout);
	while (done < len) {
		n = write(STDOUT_FILENO, buf + done, len - done);
		if (n < 0 && errno == EINTR && !alarmed)
			continue;
		if (n <= 0)
			break;
		done += n;
	}
	if (!timed_socket)
		alarm(0);
	if (done < len) {
		syslog(LOG_INFO, "write to client failed: %s",
		    alarmed || errno == EAGAIN ? "timed out" : strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether the client is a socket that now times its writes itself. */
static int time_socket_writes(void)
{
	struct timeval tv = { timeout, 0 };

	return !setsockopt(STDOUT_FILENO, SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv));
}

/*
 * Sends what is queued. The outlook-no-nuls workaround turns each NUL into
 * 0x80 here, which keeps every size as it was: only message bytes can hold
 * a NUL, since no reply of ours does.
 */
static int send_output(struct maildrop_out *o)
{
	size_t n = o->len, i;

	o->len = 0;
	if (no_nuls)
		for (i = 0; i < n; i++)
			if (!o->buf[i])
				o->buf[i] = (char)0x80;
	out_sent += n;
	return n ? write_client(o->buf, n) : 0;
}

static int flush_output(void)
{
	return send_output(&output);
}

/* Octets queued for the client so far. */
static unsigned long long out_total(void)
{
	return out_sent + output.len;
}

static int out_str(const char *s)
{
	return maildrop_put(&output, s, strlen(s));
}

enum line_status { LINE, LINE_EOF, LINE_LONG, LINE_FAIL, LINE_TIMEOUT };

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Refills the input buffer before deadline (now_ms's), first flushing what
 * we have to say: the client has been answered for everything it sent
 * before it waits on us.
 */
static enum line_status fill_input(long long deadline)
{
	struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
	long long left;
	ssize_t n;
	int r;

	if (output.len && flush_output())
		return LINE_FAIL;
	do
		r = (left = deadline - now_ms()) > 0 ?
		    poll(&pfd, 1, (int)left) : 0;
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return LINE_TIMEOUT;
	do
		n = read(STDIN_FILENO, inbuf, sizeof(inbuf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		syslog(LOG_INFO, "read from client failed: %m");
		return LINE_FAIL;
	}
	if (n == 0)
		return LINE_EOF;
	in_pos = 0;
	in_len = n;
	return LINE;
}

/*
 * Reads one line of at most max octets with its LF into line (which holds
 * max + 1 bytes), without the CR LF, NUL-terminated; *len gets its length,
 * NULs included. A longer line is read to its LF and thrown away: LINE_LONG,
 * once. A line cut off by EOF is not a command. The whole line must come
 * within -t seconds of our first wait for it, and before the login deadline:
 * a byte now and then does not keep a session open (LINE_TIMEOUT).
 */
static enum line_status get_line(char *line, size_t max, size_t *len)
{
	size_t n = 0, total = 0;
	enum line_status st;
	long long deadline = 0;

	for (;;) {
		char *nl;
		size_t take;

		if (in_pos == in_len) {
			if (!deadline) {
				deadline = now_ms() + timeout * 1000LL;
				if (login_deadline && login_deadline < deadline)
					deadline = login_deadline;
			}
			if ((st = fill_input(deadline)) != LINE)
				return st;
		}
		nl = memchr(inbuf + in_pos, '\n', in_len - in_pos);
		take = (nl ? (size_t)(nl - inbuf) : in_len) - in_pos;
		total += take + (nl != NULL);
		if (n < max) {
			size_t room = max - n;
			memcpy(line + n, inbuf + in_pos, take < room ? take : room);
			n += take < room ? take : room;
		}
		in_pos += take + (nl != NULL);
		if (nl)
			break;
	}
	if (total > max)
		return LINE_LONG;
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	*len = n;
	return LINE;
}

static enum result reply(struct session *s, enum result r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->reply, sizeof(s->reply), fmt, ap);
	va_end(ap);
	return r;
}

/* A line did not come in time: the login deadline has passed, or -t. Sets
 * the closing reply, and *why (unless NULL) for the log. */
static enum result time_up(struct session *s, const char **why)
{
	int login = login_deadline && now_ms() >= login_deadline;

	if (why)
		*why = login ? "no login in time" : "idle timeout";
	if (login)
		return reply(s, P_CLOSE, "No login within %d seconds",
		    login_timeout);
	return reply(s, P_CLOSE, "Disconnected for inactivity");
}

/* A command we cannot take: malformed, or unknown here. Counted, since a
 * client that sends nothing else is broken or probing. */
static enum result bad_input(struct session *s, const char *text)
{
	s->bad++;
	return reply(s, P_ERR, "%s", text);
}

/*
 * The length of the UTF-8 sequence at s (1 to 4), or 0 when it is not one:
 * a stray continuation byte, a truncated or overlong sequence, a surrogate,
 * or more than U+10FFFF.
 */
static size_t utf8_length(const unsigned char *s)
{
	size_t n, i;
	unsigned long cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/*
 * Makes a string from the client or the system safe to log: a control
 * character (C0, DEL, or a C1 code point, U+0080 to U+009F, which some
 * terminals obey) and each byte that is not part of valid UTF-8 become '?'.
 * UTF-8 user names pass as they are.
 */
static const char *printable(const char *s, char *buf, size_t size)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;

	while (*u && i + 1 < size) {
		n = utf8_length(u);
		if (n == 0 || u[0] < 0x20 || u[0] == 0x7f ||
		    (u[0] == 0xc2 && u[1] < 0xa0)) {
			buf[i++] = '?';
			u += n ? n : 1;
			continue;
		}
		if (i + n >= size)
			break;
		memcpy(buf + i, u, n);
		i += n;
		u += n;
	}
	buf[i] = '\0';
	return buf;
}

/*
 * Strict numbers: decimal digits only, at most max, no sign, space or
 * trailing junk. Returns 0 or -1.
 */
static int parse_number(const char *arg, unsigned long long max,
    unsigned long long *value)
{
	unsigned long long v = 0;

	if (!arg || !*arg)
		return -1;
	for (; *arg; arg++) {
		if (*arg < '0' || *arg > '9')
			return -1;
		if (v > (max - (*arg - '0')) / 10)
			return -1;
		v = v * 10 + (*arg - '0');
	}
	*value = v;
	return 0;
}

/* Finds the message an argument names; on failure says why in s->reply. */
static struct message *message_arg(struct session *s, const char *arg,
    unsigned long *n)
{
	unsigned long long v;
	struct message *m;

	if (!arg) {
		bad_input(s, "Syntax error");
		return NULL;
	}
	if (parse_number(arg, UINT32_MAX, &v)) {
		bad_input(s, "Invalid message number");
		return NULL;
	}
	*n = v;
	if (!(m = maildrop_get(&s->md, v))) {
		reply(s, P_ERR, "No such message");
		return NULL;
	}
	if (m->flags & M_DELETED) {
		reply(s, P_ERR, "Message %lu is deleted", *n);
		return NULL;
	}
	return m;
}

/*
 * What RETR sends of m before dot-stuffing: its wire size, and 2 more when
 * the oe-ns-eoh workaround adds the missing blank line after the headers.
 */
static long long msg_size(const struct session *s, const struct message *m)
{
	(void)s;	/* M_NOEOH is the scanner's, on m */
	return m->size + (add_eoh && (m->flags & M_NOEOH) ? 2 : 0);
}

/* The count and octets of the messages not marked deleted: those at login
 * less what del counts, every message marked since. */
static void totals(struct session *s, unsigned long *count,
    unsigned long long *octets)
{
	*count = s->md.visible - s->del.count;
	*octets = s->octets - s->del.octets;
}

static void random_bytes(void *buf, size_t len)
{
	if (getrandom(buf, len, 0) != (ssize_t)len) {
		syslog(LOG_CRIT, "getrandom: %m");
		exit(1);
	}
}

/*
 * Waits until a failed login may be answered: FAIL_DELAY_MS after its
 * credential arrived for the first failure of its kind (authority) in the
 * connection, twice that for the second, and so on, whatever the check did
 * in the meantime (PAM's own delay is suppressed, auth_pam). Every reason
 * for a failure is answered at the same time, so the wait tells nothing; a
 * check that overran it is logged, since its failure then comes late by as
 * much.
 */
static void fail_delay(int failures, const struct timespec *arrival)
{
	unsigned ms = FAIL_DELAY_MS * failures;
	struct timespec now, until = *arrival;

	if (output.len)
		flush_output();
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec &&
	    now.tv_nsec > until.tv_nsec))
		syslog(LOG_WARNING, "the credential check took longer than "
		    "the failure delay (%u ms): its failure's timing shows",
		    ms);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL)
	    == EINTR)
		;
}

/*
 * Expands the mailbox template: %u the user, %h the home directory, %% a
 * percent sign. Returns 0, or -1 when the result would not fit.
 */
static int expand(const char *tmpl, const struct auth_user *u, char *buf,
    size_t size)
{
	size_t n = 0;
	const char *add;
	char c[2] = { 0, 0 };

	for (; *tmpl; tmpl++) {
		if (*tmpl == '%' && tmpl[1]) {
			tmpl++;
			add = *tmpl == 'u' ? u->name : *tmpl == 'h' ? u->home
			    : (c[0] = *tmpl, c);
		} else
			add = (c[0] = *tmpl, c);
		if (n + strlen(add) >= size)
			return -1;
		strcpy(buf + n, add);
		n += strlen(add);
	}
	return 0;
}

/* Whether a template names the user (%u), as the state directory of virtual
 * users must: they all share one account and home. */
static int template_has_user(const char *tmpl)
{
	for (; *tmpl; tmpl++)
		if (*tmpl == '%') {
			if (*++tmpl == 'u')
				return 1;
			if (!*tmpl)
				break;
		}
	return 0;
}

/* A template may use only %u, %h and %%. */
static int template_ok(const char *tmpl)
{
	for (; *tmpl; tmpl++)
		if (*tmpl == '%') {
			tmpl++;
			if (*tmpl != 'u' && *tmpl != 'h' && *tmpl != '%')
				return 0;
		}
	return 1;
}

/*
 * As the user, before the maildrop is opened: one session per maildrop (-1)
 * and LOGIN-DELAY (-l), both kept in the state directory. Only a client that
 * gave a good credential gets this far, so [LOGIN-DELAY] and [IN-USE] tell
 * nothing to one that did not.
 */
static enum result user_state(struct session *s, const char *path)
{
	long wait = 0;
	int dir = userstate_open(path, s->who.uid, 1);

	if (dir < 0)
		return reply(s, P_CLOSE, "[SYS/TEMP] No state directory");
	if (one_session && (s->lock = userstate_lock(dir)) < 0) {
		close(dir);
		if (s->lock == -2) {
			syslog(LOG_NOTICE, "login refused: another session of "
			    "%s is active", s->who.name);
			s->lock = -1;
			return reply(s, P_CLOSE, "[IN-USE] Another session "
			    "is active");
		}
		return reply(s, P_CLOSE, "[SYS/TEMP] Session lock failed");
	}
	if (login_delay > 0) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		wait = userstate_login_delay(dir, login_delay, &now);
	}
	close(dir);
	if (wait < 0)
		return reply(s, P_CLOSE, "[SYS/TEMP] Login record failed");
	if (wait > 0) {
		syslog(LOG_NOTICE, "login refused: user=%s: LOGIN-DELAY, %ld s "
		    "to wait", s->who.name, wait);
		return reply(s, P_CLOSE, "[LOGIN-DELAY] Wait %ld more "
		    "second%s", wait, wait == 1 ? "" : "s");
	}
	return P_OK;
}

/*
 * The deadline of maildrop_open (open_deadline): it holds the spool's locks,
 * and nothing in it may keep them for ever. The session ends without UPDATE,
 * and exit lets go of the locks. The log line is the only unsafe call in a
 * handler: should it hang on a lock the interrupted code held, the next
 * alarm, now of default action, ends the process anyway.
 */
static void open_late(int sig)
{
	sigset_t set;

	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	alarm(2);
	syslog(LOG_ERR, "opening the maildrop took more than %u s: session "
	    "ended", open_deadline());
	_exit(1);
}

/*
 * After a good credential: become the user, open the maildrop, and enter
 * TRANSACTION. A maildrop that can't be opened ends the session, since the
 * identity has already changed.
 */
static enum result login(struct session *s, const char *method)
{
	char path[PATH_MAX], state[PATH_MAX], name[MAX_USER + 1];
	const char *err;
	unsigned long count, n;
	unsigned long long octets;
	struct sigaction late, prev;
	enum result r;
	int failed;

	if (vusers_file ? auth_lookup(vusers_account, s->user, &s->who) :
	    auth_lookup(s->user, NULL, &s->who))
		return reply(s, P_CLOSE, "[AUTH] Authentication failed");
	if (expand(vusers_mailbox[0] ? vusers_mailbox : mailbox_template,
	    &s->who, path, sizeof(path)) ||
	    expand(state_template, &s->who, state, sizeof(state))) {
		syslog(LOG_ERR, "%s: mailbox or state path too long",
		    s->who.name);
		return reply(s, P_CLOSE, "[SYS/PERM] Mailbox path too long");
	}
	/* The one thing done for the maildrop with root's help (see
	 * dotlock.c); then we are the user for good. */
	dotlock_keeper(path, s->who.uid);
	auth_drop(&s->who);
	if ((login_delay > 0 || one_session) && (r = user_state(s, state)) !=
	    P_OK)
		return r;
	memset(&late, 0, sizeof(late));
	late.sa_handler = open_late;
	sigaction(SIGALRM, &late, &prev);
	alarm(open_deadline());
	failed = maildrop_open(&s->md, path, state, s->who.uid, &err);
	alarm(0);
	sigaction(SIGALRM, &prev, NULL);
	if (failed) {
		syslog(LOG_NOTICE, "login refused: user=%s host=%s: %s",
		    printable(s->who.name, name, sizeof(name)), s->peer, err);
		return reply(s, P_CLOSE, "%s", err);
	}
	for (n = 1; n <= s->md.visible; n++)
		s->octets += msg_size(s, maildrop_get(&s->md, n));
	s->state = TRANSACTION;
	login_deadline = 0;
	totals(s, &count, &octets);
	syslog(LOG_INFO, "login: user=%s host=%s method=%s messages=%lu "
	    "octets=%llu", printable(s->who.name, name, sizeof(name)), s->peer,
	    method, count, octets);
	return reply(s, P_OK, "maildrop has %lu message%s (%llu octets)",
	    count, count == 1 ? "" : "s", octets);
}

/* A user name we would look up: no control characters, spaces or slashes. */
static int user_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len < 1 || len > MAX_USER || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return 0;
	for (; *name; name++)
		if ((unsigned char)*name <= ' ' || *name == 0x7f || *name == '/')
			return 0;
	return 1;
}

/* For logs, by enum method. */
static const char *const method_names[] = {
	"PASS", "APOP", "PLAIN", "LOGIN", "CRAM-MD5"
};

/* Whether a password may cross this connection in the clear (-P, -S). */
static int plaintext_allowed(void)
{
	return secure || !plaintext_needs_tls;
}

static enum result cmd_user(struct session *s, char *arg)
{
	if (!arg || !*arg)
		return bad_input(s, "Syntax error");
	if (!plaintext_allowed())
		return reply(s, P_ERR, "[AUTH] Plaintext authentication "
		    "disallowed on non-secure connections");
	s->user_ok = strlen(arg) <= MAX_USER && user_name_ok(arg);
	snprintf(s->user, sizeof(s->user), "%s", arg);
	if (s->utf8 && s->user_ok) {	/* RFC 6856 §2: SASLprep'd */
		char buf[MAX_USER + 1];

		memcpy(buf, s->user, sizeof(buf));
		s->user_ok = !sasl_prep(buf, sizeof(buf)) && user_name_ok(buf);
		if (s->user_ok)
			memcpy(s->user, buf, sizeof(buf));
	}
	return reply(s, P_OK, "Send PASS");
}

/*
 * Whether a failed login's name is logged as it came: only when it names a
 * user this handler knows (an account, or one in the -v or -a file). A name
 * that is none of these is often a password typed into the wrong field, and
 * the logs, read by more people than the shadow file, get "(unknown)"
 * instead; the host and the count still show a guesser. Not root, every
 * name is the PAM stack's business and logged as it came.
 */
static int known_name(const char *user)
{
	char buf[MAX_SECRET_LINE + 1];
	int found;

	if (!user[0])
		return 1;
	if (vusers_file) {
		found = auth_file_entry(vusers_file, user, buf, sizeof(buf));
		explicit_bzero(buf, sizeof(buf));
		return found == 1;
	}
	return auth_known(user) ||
	    (apop_file && auth_has_secret(apop_file, user) == 1);
}

/*
 * The authority: whether a credential lets its user in. With privileges
 * separated it runs in the root parent, else in the one process. Failures
 * are logged, answered 1-3 s after the credential arrived and counted here,
 * where a compromised pre-auth child could not skip them. They are counted
 * by what they guessed at, the password or the secrets file (APOP,
 * CRAM-MD5), so that a client that tries CRAM-MD5 and APOP before USER, as
 * mutt does, loses no try of the password to them and no time on it. On
 * V_OK, s->user holds the name PAM settled on, or the virtual user's. The
 * secret is wiped.
 */
static enum verdict authority(struct session *s, struct credential *c)
{
	const char *why = NULL;
	char name[MAX_USER + 1];
	struct timespec arrival;
	int kind;

	clock_gettime(CLOCK_MONOTONIC, &arrival);
	if (!user_name_ok(c->user))
		why = "not a valid user name";
	else if (c->method == CRED_APOP) {
		if (!apop_file || auth_apop(apop_file, c->user, s->timestamp,
		    c->secret))
			why = "APOP refused";
	} else if (c->method == CRED_CRAM) {
		if (!apop_file || auth_cram(apop_file, c->user, s->challenge,
		    c->secret))
			why = "CRAM-MD5 refused";
	} else if (!plaintext_allowed())
		why = "plaintext password refused (-P)";
	else if (strlen(c->secret) > MAX_PASS)
		why = "password too long";
	else if (apop_file && apop_only &&
	    auth_has_secret(apop_file, c->user) != 0)
		why = "password refused: APOP user (-A)";
	else if (vusers_file) {		/* never PAM: see README, Design */
		if (vusers_check(vusers_file, c->user, c->secret,
		    vusers_mailbox, sizeof(vusers_mailbox)) != 1)
			why = "virtual user refused";
		else if (!template_ok(vusers_mailbox))
			why = "bad mailbox template in the virtual users file";
	} else if (auth_pam(pam_service, c->user, c->secret,
	    strcmp(s->peer, "local") ? s->peer : NULL))
		why = "PAM refused";
	if (!why && !vusers_file && auth_may_serve(c->user))
		why = "no account to serve";
	explicit_bzero(c->secret, sizeof(c->secret));
	if (!why) {
		snprintf(s->user, sizeof(s->user), "%s", c->user);
		return V_OK;
	}
	syslog(LOG_NOTICE, "authentication failed: user=%s host=%s "
	    "method=%s: %s", known_name(c->user) ? printable(c->user, name,
	    sizeof(name)) : "(unknown)", s->peer, method_names[c->method], why);
	kind = c->method == CRED_APOP || c->method == CRED_CRAM;
	fail_delay(++s->failures[kind], &arrival);
	if (s->failures[kind] < MAX_AUTH_FAILURES)
		return V_FAIL;
	/* One line for the hang-up, as for bad commands: fail2ban counts it. */
	syslog(LOG_NOTICE, "host=%s: %d failed logins, closing", s->peer,
	    s->failures[kind]);
	return V_CLOSE;
}

/*
 * Pre-auth child, after a good login: what we have said goes out, what the
 * client sent ahead goes to the parent, which carries on as the user.
 */
static void hand_over(void)
{
	int bad = flush_output() ||
	    privsep_hand_over(channel, inbuf + in_pos, in_len - in_pos);

	explicit_bzero(inbuf, sizeof(inbuf));
	_exit(bad);
}

/* Puts a credential to the authority and answers as it decides. */
static enum result authenticate(struct session *s, struct credential *c)
{
	int v = channel >= 0 ? privsep_ask(channel, c) : (int)authority(s, c);

	explicit_bzero(c->secret, sizeof(c->secret));
	switch (v) {
	case V_OK:
		if (channel >= 0)
			hand_over();
		return login(s, method_names[c->method]);
	case V_FAIL:
		s->user[0] = '\0';
		return reply(s, P_ERR, "[AUTH] Authentication failed");
	case V_CLOSE:
		return reply(s, P_CLOSE, "[AUTH] Too many failures");
	default:
		syslog(LOG_ERR, "pre-auth: the root process is gone");
		return reply(s, P_CLOSE, "[SYS/TEMP] Internal error");
	}
}

static enum result cmd_pass(struct session *s, char *arg)
{
	struct credential c;

	if (!s->user[0])
		return reply(s, P_ERR, "Send USER first");
	memset(&c, 0, sizeof(c));
	if (s->user_ok)
		strcpy(c.user, s->user);
	if (arg) {
		snprintf(c.secret, sizeof(c.secret), "%s", arg);
		explicit_bzero(arg, strlen(arg));
	}
	if (s->utf8 && sasl_prep(c.secret, sizeof(c.secret)))
		c.user[0] = '\0';	/* fails at the authority, counted */
	return authenticate(s, &c);
}

static enum result cmd_apop(struct session *s, char *arg)
{
	char *digest = arg ? strchr(arg, ' ') : NULL;
	struct credential c;

	if (!digest || strchr(digest + 1, ' '))
		return bad_input(s, "Syntax error");
	*digest++ = '\0';
	memset(&c, 0, sizeof(c));
	c.method = CRED_APOP;
	if (strlen(arg) <= MAX_USER)
		strcpy(c.user, arg);
	snprintf(c.secret, sizeof(c.secret), "%s", digest);
	return authenticate(s, &c);
}

/*
 * SASL (RFC 5034). The mechanisms on offer: PLAIN and LOGIN carry a
 * password, so they go where USER goes (-P); CRAM-MD5 needs the secrets file.
 */
static int mech_offered(const char *mech)
{
	if (!strcasecmp(mech, "PLAIN") || !strcasecmp(mech, "LOGIN"))
		return plaintext_allowed();
	if (!strcasecmp(mech, "CRAM-MD5"))
		return apop_file != NULL;
	return 0;
}

/* The mechanisms on offer, space-separated, into buf. */
static char *mech_list(char *buf, size_t size)
{
	static const char *const all[] = { "PLAIN", "LOGIN", "CRAM-MD5", NULL };
	size_t i;

	buf[0] = '\0';
	for (i = 0; all[i]; i++)
		if (mech_offered(all[i]))
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
			    buf[0] ? " " : "", all[i]);
	return buf;
}

/*
 * One step of a SASL exchange: the client's response, decoded into buf (size
 * bytes) with *len its length. It is the initial response when the AUTH
 * line carried one (initial, "=" for an empty one); else "+ challenge" is
 * sent and one line of at most MAX_SASL_LINE octets read. Besides the
 * dispatcher, only this writes to the client, and only the "+ " line.
 * Returns P_OK, or P_ERR or P_CLOSE with the reply set: "*" cancels.
 */
static enum result sasl_step(struct session *s, const char *challenge,
    const char *initial, char *buf, size_t size, ssize_t *len)
{
	char line[MAX_SASL_LINE + 1];
	size_t n;

	if (!initial) {
		if (out_str("+ ") || out_str(challenge) || out_str("\r\n"))
			return reply(s, P_CLOSE, "Write failed");
		switch (get_line(line, MAX_SASL_LINE, &n)) {
		case LINE:
			break;
		case LINE_LONG:
			return reply(s, P_ERR, "Line too long");
		case LINE_TIMEOUT:
			return time_up(s, NULL);
		default:
			return reply(s, P_CLOSE, "Connection lost");
		}
		if (memchr(line, '\0', n)) {
			explicit_bzero(line, sizeof(line));
			return reply(s, P_ERR, "NUL byte in response");
		}
		initial = line;
	}
	if (!strcmp(initial, "*"))
		return reply(s, P_ERR, "Authentication cancelled");
	*len = sasl_decode64(initial, buf, size);
	explicit_bzero(line, sizeof(line));
	if (*len < 0)
		return reply(s, P_ERR, "Invalid base64 in response");
	return P_OK;
}

/*
 * Fills a password credential from a SASL identity and password: both
 * SASLprep'd (RFC 4616, RFC 6856). Either failing leaves the user name empty,
 * so that the authority fails it like a wrong password, delayed and counted.
 * Wipes pass.
 */
static void sasl_credential(struct credential *c, enum method m,
    const char *user, char *pass)
{
	char buf[MAX_SASL_LINE];
	int bad;

	memset(c, 0, sizeof(*c));
	c->method = m;
	snprintf(buf, sizeof(buf), "%s", user);
	if (!sasl_prep(buf, sizeof(buf)) && strlen(buf) <= MAX_USER &&
	    user_name_ok(buf))
		strcpy(c->user, buf);
	snprintf(buf, sizeof(buf), "%s", pass);
	explicit_bzero(pass, strlen(pass));
	bad = m == CRED_CRAM ? 0 : sasl_prep(buf, sizeof(buf));
	if (bad)
		c->user[0] = '\0';
	else
		snprintf(c->secret, sizeof(c->secret), "%s", buf);
	explicit_bzero(buf, sizeof(buf));
}

/* RFC 4616. The authorization identity may be empty or the user's own. */
static enum result auth_plain(struct session *s, const char *initial)
{
	char msg[MAX_SASL_LINE], *authzid, *authcid, *pass;
	struct credential c;
	enum result r;
	ssize_t len;

	if ((r = sasl_step(s, "", initial, msg, sizeof(msg), &len)) != P_OK)
		return r;
	if (sasl_plain(msg, len, &authzid, &authcid, &pass)) {
		explicit_bzero(msg, sizeof(msg));
		return reply(s, P_ERR, "Malformed PLAIN message");
	}
	if (*authzid && strcmp(authzid, authcid)) {
		explicit_bzero(msg, sizeof(msg));
		return reply(s, P_ERR, "[AUTH] Authorization identity refused");
	}
	sasl_credential(&c, CRED_PLAIN, authcid, pass);
	explicit_bzero(msg, sizeof(msg));
	return authenticate(s, &c);
}

/* The LOGIN mechanism (Outlook): "Username:", then "Password:". */
static enum result auth_login(struct session *s, const char *initial)
{
	char user[MAX_SASL_LINE], pass[MAX_SASL_LINE];
	struct credential c;
	enum result r;
	ssize_t ulen, plen;

	if ((r = sasl_step(s, "VXNlcm5hbWU6", initial, user, sizeof(user),
	    &ulen)) != P_OK)
		return r;
	if ((r = sasl_step(s, "UGFzc3dvcmQ6", NULL, pass, sizeof(pass),
	    &plen)) != P_OK)
		return r;
	if (strlen(user) != (size_t)ulen || strlen(pass) != (size_t)plen) {
		explicit_bzero(pass, sizeof(pass));
		return reply(s, P_ERR, "NUL byte in response");
	}
	sasl_credential(&c, CRED_LOGIN, user, pass);
	explicit_bzero(pass, sizeof(pass));
	return authenticate(s, &c);
}

/*
 * RFC 2195. The challenge is the one the root process made before the fork
 * (s->challenge); the response is "user digest".
 */
static enum result auth_cram_md5(struct session *s, const char *initial)
{
	char challenge[2 * sizeof(s->challenge)], msg[MAX_SASL_LINE], *digest;
	struct credential c;
	enum result r;
	ssize_t len;

	if (initial)
		return reply(s, P_ERR, "CRAM-MD5 takes no initial response");
	if (sasl_encode64(s->challenge, strlen(s->challenge), challenge,
	    sizeof(challenge)))
		return reply(s, P_ERR, "Internal error");
	if ((r = sasl_step(s, challenge, NULL, msg, sizeof(msg), &len)) != P_OK)
		return r;
	if ((size_t)len != strlen(msg) || !(digest = strrchr(msg, ' ')))
		return reply(s, P_ERR, "Malformed CRAM-MD5 response");
	*digest++ = '\0';
	sasl_credential(&c, CRED_CRAM, msg, digest);
	return authenticate(s, &c);
}

static int body_mechs(struct session *s)
{
	char list[64], *p, *tok;

	(void)s;
	for (tok = strtok_r(mech_list(list, sizeof(list)), " ", &p); tok;
	    tok = strtok_r(NULL, " ", &p))
		if (out_str(tok) || out_str("\r\n"))
			return -1;
	return 0;
}

/*
 * AUTH mechanism [initial-response]. A bare AUTH lists the mechanisms, as
 * many servers do for clients that probe with it (RFC 5034 leaves it open).
 */
static enum result cmd_auth(struct session *s, char *arg)
{
	char *initial;

	if (!arg) {
		s->body = body_mechs;
		return reply(s, P_OK, "Methods supported");
	}
	if ((initial = strchr(arg, ' '))) {
		*initial++ = '\0';
		if (!*initial || strchr(initial, ' '))
			return bad_input(s, "Syntax error");
	}
	if ((!strcasecmp(arg, "PLAIN") || !strcasecmp(arg, "LOGIN")) &&
	    !plaintext_allowed())
		return reply(s, P_ERR, "[AUTH] Plaintext authentication "
		    "disallowed on non-secure connections");
	if (!mech_offered(arg))
		return reply(s, P_ERR, "Unrecognized authentication type");
	if (!strcasecmp(arg, "PLAIN"))
		return auth_plain(s, initial);
	if (!strcasecmp(arg, "LOGIN"))
		return auth_login(s, initial);
	return auth_cram_md5(s, initial);
}

/* RFC 6856 §2: from now on, names and passwords are UTF-8. */
static enum result cmd_utf8(struct session *s, char *arg)
{
	if (arg)
		return bad_input(s, "Syntax error");
	s->utf8 = 1;
	return reply(s, P_OK, "UTF8 enabled");
}

static int body_lang(struct session *s)
{
	(void)s;
	return out_str("en English\r\n");
}

/* RFC 4647 language-range: "*", or 1*8ALPHA *("-" 1*8alphanum). */
static int lang_range_ok(const char *a)
{
	size_t n = 0;
	int first = 1;

	if (!strcmp(a, "*"))
		return 1;
	for (;; a++) {
		if (*a == '-' || !*a) {
			if (!n)
				return 0;
			if (!*a)
				return 1;
			n = 0;
			first = 0;
			continue;
		}
		if (!(first ? isalpha((unsigned char)*a) :
		    isalnum((unsigned char)*a)) || ++n > 8)
			return 0;
	}
}

/*
 * RFC 6856 §3. Only English is spoken: "en", a range under it ("en-GB"
 * falls back to "en" as RFC 4647 lookup does) and "*" select it.
 */
static enum result cmd_lang(struct session *s, char *arg)
{
	if (!arg) {
		s->body = body_lang;
		return reply(s, P_OK, "Language listing follows");
	}
	if (!lang_range_ok(arg))
		return bad_input(s, "Syntax error");
	if (strcmp(arg, "*") && (strncasecmp(arg, "en", 2) ||
	    (arg[2] && arg[2] != '-')))
		return reply(s, P_ERR, "en Unsupported language");
	return reply(s, P_OK, "en Language is English");
}

static int body_capa(struct session *s)
{
	char list[64];

	(void)s;
	if (plaintext_allowed() && out_str("USER\r\n"))
		return -1;
	if (mech_list(list, sizeof(list))[0] &&
	    (out_str("SASL ") || out_str(list) || out_str("\r\n")))
		return -1;
	if (!no_top && out_str("TOP\r\n"))
		return -1;
	if (login_delay >= 0) {
		snprintf(list, sizeof(list), "LOGIN-DELAY %ld\r\n", login_delay);
		if (out_str(list))
			return -1;
	}
	if (expire >= 0) {
		snprintf(list, sizeof(list), "EXPIRE %ld\r\n", expire);
		if (out_str(list))
			return -1;
	}
	return out_str("UIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	    "PIPELINING\r\nUTF8 USER\r\nLANG\r\n"
	    "IMPLEMENTATION " POP3_NAME " " POP3_VERSION "\r\n");
}

static enum result cmd_capa(struct session *s, char *arg)
{
	if (arg)
		return bad_input(s, "Syntax error");
	s->body = body_capa;
	return reply(s, P_OK, "Capability list follows");
}

/*
 * EXPIRE 0 (RFC 1939 §8, RFC 2449): a message retrieved with RETR is
 * deleted at QUIT as if DELE'd. Retrieved is retrieved: RSET does not undo it.
 */
static void expire_retrieved(struct session *s)
{
	size_t i;

	for (i = 0; i < s->md.count; i++)
		if ((s->md.msg[i].flags & (M_RETRIEVED | M_DELETED)) ==
		    M_RETRIEVED) {
			s->md.msg[i].flags |= M_DELETED;
			s->del.count++;
			s->del.octets += msg_size(s, &s->md.msg[i]);
		}
}

static enum result cmd_quit(struct session *s, char *arg)
{
	const char *err;
	unsigned long count;
	unsigned long long octets;

	if (arg)
		return bad_input(s, "Syntax error");
	if (s->state != TRANSACTION)
		return reply(s, P_QUIT, POP3_NAME " signing off");
	expire_retrieved(s);
	if (s->del.count && maildrop_commit(&s->md, &err) < 0)
		return reply(s, P_CLOSE, "%s", err);
	totals(s, &count, &octets);
	return reply(s, P_QUIT, POP3_NAME " signing off (%lu message%s left)",
	    count, count == 1 ? "" : "s");
}

static enum result cmd_stat(struct session *s, char *arg)
{
	unsigned long count;
	unsigned long long octets;

	if (arg)
		return bad_input(s, "Syntax error");
	totals(s, &count, &octets);
	return reply(s, P_OK, "%lu %llu", count, octets);
}

/* LIST and UIDL share their shape: one line a message, or one message. */
static int body_scan_listing(struct session *s, int uidl)
{
	char line[32 + MAX_UIDL];
	char uid[MAX_UIDL + 1];
	unsigned long i;

	for (i = 1; i <= s->md.visible; i++) {
		struct message *m = maildrop_get(&s->md, i);

		if (m->flags & M_DELETED)
			continue;
		if (uidl) {
			maildrop_uidl(&s->md, m, uid);
			snprintf(line, sizeof(line), "%lu %s\r\n", i, uid);
		} else
			snprintf(line, sizeof(line), "%lu %lld\r\n", i,
			    msg_size(s, m));
		if (out_str(line))
			return -1;
	}
	return 0;
}

static int body_list(struct session *s)
{
	return body_scan_listing(s, 0);
}

static int body_uidl(struct session *s)
{
	return body_scan_listing(s, 1);
}

static enum result cmd_list(struct session *s, char *arg)
{
	unsigned long n, count;
	unsigned long long octets;
	struct message *m;

	if (arg) {
		if (!(m = message_arg(s, arg, &n)))
			return P_ERR;
		return reply(s, P_OK, "%lu %lld", n, msg_size(s, m));
	}
	totals(s, &count, &octets);
	s->body = body_list;
	return reply(s, P_OK, "%lu message%s (%llu octets)", count,
	    count == 1 ? "" : "s", octets);
}

static enum result cmd_uidl(struct session *s, char *arg)
{
	char uid[MAX_UIDL + 1];
	unsigned long n;
	struct message *m;

	if (arg) {
		if (!(m = message_arg(s, arg, &n)))
			return P_ERR;
		maildrop_uidl(&s->md, m, uid);
		return reply(s, P_OK, "%lu %s", n, uid);
	}
	s->body = body_uidl;
	return reply(s, P_OK, "Unique-ID listing follows");
}

static int body_message(struct session *s)
{
	unsigned long long before = out_total();
	int r = maildrop_send(&s->md, s->msg, s->lines, &output);

	/* oe-ns-eoh: every line was a header (TOP sent them all too), so the
	 * blank line that ends the headers comes last. */
	if (!r && add_eoh && (s->msg->flags & M_NOEOH))
		r = out_str("\r\n");

	if (s->lines >= 0)
		s->top.octets += out_total() - before;
	return r;
}

/*
 * Another program rewrote the mailbox during the session (without holding
 * the maildrop, as a second session may): the table no longer describes the
 * file, so nothing more is sent from it and nothing is deleted.
 */
static enum result changed(struct session *s)
{
	return reply(s, P_CLOSE, "[SYS/TEMP] Maildrop changed by another "
	    "program; log in again");
}

static enum result cmd_retr(struct session *s, char *arg)
{
	unsigned long n;

	if (!(s->msg = message_arg(s, arg, &n)))
		return P_ERR;
	if (!maildrop_still(&s->md, s->msg))
		return changed(s);
	s->lines = -1;
	s->body = body_message;
	if (expire == 0)
		s->msg->flags |= M_RETRIEVED;
	s->retr.count++;
	s->retr.octets += msg_size(s, s->msg);
	return reply(s, P_OK, "%lld octets", msg_size(s, s->msg));
}

static enum result cmd_top(struct session *s, char *arg)
{
	char *count = arg ? strchr(arg, ' ') : NULL;
	unsigned long long lines;
	unsigned long n;

	if (!count)
		return bad_input(s, "Syntax error");
	*count++ = '\0';
	if (!(s->msg = message_arg(s, arg, &n)))
		return P_ERR;
	if (parse_number(count, LLONG_MAX, &lines))
		return bad_input(s, "Invalid line count");
	if (!maildrop_still(&s->md, s->msg))
		return changed(s);
	s->lines = lines;
	s->body = body_message;
	s->top.count++;
	return reply(s, P_OK, "Top of message %lu follows", n);
}

static enum result cmd_dele(struct session *s, char *arg)
{
	struct message *m;
	unsigned long n;

	if (!(m = message_arg(s, arg, &n)))
		return P_ERR;
	m->flags |= M_DELETED;
	s->del.count++;
	s->del.octets += msg_size(s, m);
	return reply(s, P_OK, "Message %lu deleted", n);
}

static enum result cmd_noop(struct session *s, char *arg)
{
	if (arg)
		return bad_input(s, "Syntax error");
	return reply(s, P_OK, "");
}

static enum result cmd_rset(struct session *s, char *arg)
{
	unsigned long i, count;
	unsigned long long octets;

	if (arg)
		return bad_input(s, "Syntax error");
	for (i = 0; i < s->md.count; i++)
		s->md.msg[i].flags &= ~M_DELETED;
	s->del.count = 0;
	s->del.octets = 0;
	totals(s, &count, &octets);
	return reply(s, P_OK, "maildrop has %lu message%s (%llu octets)",
	    count, count == 1 ? "" : "s", octets);
}

static const struct command {
	const char *name;
	enum result (*handler)(struct session *, char *);
	unsigned states;
} commands[] = {
	{ "USER", cmd_user, AUTHORIZATION },
	{ "PASS", cmd_pass, AUTHORIZATION },
	{ "APOP", cmd_apop, AUTHORIZATION },
	{ "AUTH", cmd_auth, AUTHORIZATION },
	{ "UTF8", cmd_utf8, AUTHORIZATION },
	{ "LANG", cmd_lang, AUTHORIZATION | TRANSACTION },
	{ "CAPA", cmd_capa, AUTHORIZATION | TRANSACTION },
	{ "QUIT", cmd_quit, AUTHORIZATION | TRANSACTION },
	{ "STAT", cmd_stat, TRANSACTION },
	{ "LIST", cmd_list, TRANSACTION },
	{ "RETR", cmd_retr, TRANSACTION },
	{ "DELE", cmd_dele, TRANSACTION },
	{ "NOOP", cmd_noop, TRANSACTION },
	{ "RSET", cmd_rset, TRANSACTION },
	{ "TOP", cmd_top, TRANSACTION },
	{ "UIDL", cmd_uidl, TRANSACTION },
	{ NULL, NULL, 0 }
};

/*
 * Writes a handler's reply: +OK or -ERR, the text, CRLF, and for +OK any
 * multi-line body with its final dot. Only here are these written. Returns
 * r, or P_CLOSE when the client can't be written to.
 */
static enum result respond(struct session *s, enum result r)
{
	if (out_str(r == P_OK || r == P_QUIT ? "+OK" : "-ERR") ||
	    (s->reply[0] && (out_str(" ") || out_str(s->reply))) ||
	    out_str("\r\n"))
		return P_CLOSE;
	if (r == P_OK && s->body && (s->body(s) || out_str(".\r\n")))
		return P_CLOSE;
	s->body = NULL;
	return r;
}

/* After MAX_BAD_COMMANDS bad ones, the reply to the last closes. */
static enum result limit(struct session *s, enum result r)
{
	if (r != P_ERR || s->bad < MAX_BAD_COMMANDS)
		return r;
	syslog(LOG_NOTICE, "host=%s: %d bad commands, closing", s->peer,
	    s->bad);
	return reply(s, P_CLOSE, "Too many bad commands");
}

/*
 * Splits "KEYWORD[ arg]" and finds the handler for the state we are in.
 * Returns the handler's result.
 */
static enum result dispatch(struct session *s, char *line)
{
	const struct command *c;
	char *arg = strchr(line, ' ');
	enum result r = P_ERR;
	size_t klen = arg ? (size_t)(arg - line) : strlen(line);

	if (arg)
		arg++;
	s->body = NULL;
	snprintf(s->reply, sizeof(s->reply), "Unknown command");
	for (c = commands; c->name; c++)
		if (strlen(c->name) == klen && !strncasecmp(c->name, line, klen))
			break;
	if (c->name && (c->states & s->state) &&
	    (c->handler != cmd_apop || s->timestamp[0]) &&
	    (c->handler != cmd_top || !no_top))
		r = c->handler(s, arg);
	else
		s->bad++;
	return respond(s, limit(s, r));
}

/* The address of the client: the socket's peer, or what the launcher says. */
static const char *peer_address(void)
{
	static char buf[INET6_ADDRSTRLEN + 1];
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	const char *env;

	if (!getpeername(STDIN_FILENO, (struct sockaddr *)&sa, &len)) {
		if (sa.ss_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr,
		    buf, sizeof(buf)))
			return buf;
		if (sa.ss_family == AF_INET6 &&
		    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr,
		    buf, sizeof(buf)))
			return buf;
	}
	if ((env = getenv("TCPREMOTEIP")) || (env = getenv("REMOTE_HOST"))) {
		char *p;

		snprintf(buf, sizeof(buf), "%s", env);
		for (p = buf; *p; p++)
			if (!strchr("0123456789abcdefABCDEF.:-"
			    "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ", *p))
				*p = '?';
		if (buf[0])
			return buf;
	}
	return "local";
}

/*
 * A msg-id style string, unique and unpredictable: the APOP timestamp and the
 * CRAM-MD5 challenge, each made once per session by the root process.
 */
/*
 * Behind a load balancer (-X): a connection from a trusted proxy starts with
 * a PROXY header, read here before the greeting, within PROXY_TIMEOUT
 * seconds and no further than the header's bound. What follows it stays in
 * the input buffer for the session. Returns the client's address (or the
 * proxy's own for a LOCAL header), or NULL: the connection is then closed
 * without a greeting.
 */
static const char *proxy_header(const char *peer)
{
	static char addr[INET6_ADDRSTRLEN];
	struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
	struct proxy_addr pa;
	time_t deadline = time(NULL) + PROXY_TIMEOUT;
	ssize_t n, got;

	for (;;) {
		got = proxy_parse((unsigned char *)inbuf, in_len, &pa);
		if (got > 0)
			break;
		if (got < 0) {
			syslog(LOG_NOTICE, "proxy %s: malformed PROXY header",
			    peer);
			return NULL;
		}
		if (time(NULL) >= deadline ||
		    poll(&pfd, 1, (deadline - time(NULL)) * 1000) <= 0) {
			syslog(LOG_NOTICE, "proxy %s: no PROXY header in "
			    "time", peer);
			return NULL;
		}
		n = read(STDIN_FILENO, inbuf + in_len, sizeof(inbuf) - in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			syslog(LOG_NOTICE, "proxy %s: connection closed in "
			    "the PROXY header", peer);
			return NULL;
		}
		in_len += n;
	}
	in_pos = got;
	if (pa.local)
		return peer;
	memcpy(addr, pa.addr, sizeof(addr));
	syslog(LOG_INFO, "proxy %s: client %s", peer, addr);
	return addr;
}

static void make_timestamp(char *buf, size_t size)
{
	char host[256];
	uint64_t r;

	if (gethostname(host, sizeof(host)) || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	random_bytes(&r, sizeof(r));
	snprintf(buf, size, "<%ld.%lld.%016" PRIx64
	    "@%s>", (long)getpid(), (long long)time(NULL), r, host);
}

/* -W: a comma-separated list of Dovecot's pop3_workarounds names. */
static int workarounds(char *list)
{
	char *w, *p;

	for (w = strtok_r(list, ",", &p); w; w = strtok_r(NULL, ",", &p))
		if (!strcmp(w, "outlook-no-nuls"))
			no_nuls = 1;
		else if (!strcmp(w, "oe-ns-eoh"))
			add_eoh = 1;
		else
			return -1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: " POP3_NAME " [-1dAPSTV] [-s service] "
	    "[-m mailbox-template] [-D state-template] [-a apop-secrets] "
	    "[-t timeout] [-l login-delay] [-e expire-days] "
	    "[-L login-timeout] [-F shared|local] "
	    "[-W workaround,...] [-X proxy-address,...] "
	    "[-v virtual-users [-U account]]\n"
	    "       " POP3_NAME " -H    (a yescrypt hash of the password on "
	    "stdin)\n");
	exit(2);
}

/*
 * No core dump from the start, and as root not dumpable either (no ptrace
 * but by CAP_SYS_PTRACE, /proc/PID's files root's): the root parent holds
 * passwords, APOP secrets and what PAM read. The kernel makes a process that
 * changed uid undumpable anyway, but not one that has not changed it yet.
 * Started as a user, we hold only what is the user's, and stay traceable
 * by the user (strace). Returns 0, or -1 with the reason logged.
 */
static int no_dumps(void)
{
	struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) ||
	    (geteuid() == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))) {
		syslog(LOG_CRIT, "no core dumps: %m");
		return -1;
	}
	return 0;
}

/* Runs the session, from the greeting if greet is set; returns the exit
 * status. */
static int session(struct session *s, int greet)
{
	char line[MAX_LINE + 1];
	size_t len;
	enum result r;
	const char *why;

	if (greet && (out_str("+OK " POP3_NAME " ready") ||
	    (s->timestamp[0] && (out_str(" ") || out_str(s->timestamp))) ||
	    out_str("\r\n")))
		return 1;
	for (;;) {
		enum line_status st = get_line(line, MAX_LINE, &len);

		switch (st) {
		case LINE:
		case LINE_LONG:
			break;
		case LINE_EOF:
			why = "EOF before QUIT";
			goto gone;
		case LINE_TIMEOUT:
			respond(s, time_up(s, &why));
			flush_output();
			goto gone;
		default:
			why = "I/O error";
			goto gone;
		}
		if (s->state == AUTHORIZATION &&
		    ++s->commands > MAX_PREAUTH_COMMANDS) {
			syslog(LOG_NOTICE, "host=%s: %d commands before login, "
			    "closing", s->peer, MAX_PREAUTH_COMMANDS);
			r = respond(s, reply(s, P_CLOSE, "Too many commands "
			    "before login"));
		} else if (st == LINE_LONG)
			r = respond(s, limit(s, bad_input(s, "Line too long")));
		else if (memchr(line, '\0', len))
			r = respond(s, limit(s, bad_input(s,
			    "NUL byte in command")));
		else
			r = dispatch(s, line);
		explicit_bzero(line, sizeof(line));
		if (r == P_QUIT)
			return flush_output() ? 1 : 0;
		if (r == P_CLOSE) {
			flush_output();
			return 1;
		}
	}
gone:
	syslog(LOG_INFO, "session ended without QUIT (%s): nothing deleted",
	    why);
	return 1;
}

/*
 * Lets the client go: it has had every reply, and what is left (removing a
 * used journal) need not keep it waiting. A shutdown ends the connection
 * however many descriptors share it (xinetd's stderr too); for a pipe or a
 * file, closing ours is all there is.
 */
static void hang_up(void)
{
	shutdown(STDOUT_FILENO, SHUT_RDWR);
	close(STDOUT_FILENO);
	close(STDIN_FILENO);
}

/* The exit status of a child that has ended (or been killed). */
static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* The pre-auth child while the login deadline is armed, else 0. */
static volatile sig_atomic_t preauth_pid;
static volatile sig_atomic_t login_expired;

/* SIGALRM in the root parent at the login deadline: the child goes, and
 * whatever the parent waits on from it (a request, the hand-over) ends. */
static void on_login_deadline(int sig)
{
	(void)sig;
	login_expired = 1;
	if (preauth_pid > 0)
		kill(preauth_pid, SIGKILL);
}

/* Arms the login deadline for the pre-auth child pid (0: disarms it, and
 * puts old back); from here on the child may be reaped. */
static void login_alarm(pid_t pid, struct sigaction *old)
{
	struct sigaction sa;

	if (!pid) {
		alarm(0);
		preauth_pid = 0;
		sigaction(SIGALRM, old, NULL);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_login_deadline;
	sa.sa_flags = SA_RESTART;	/* PAM is not cut short */
	sigaction(SIGALRM, &sa, old);
	preauth_pid = pid;
	alarm(login_timeout);
}

/*
 * Started as root: the pre-auth child runs AUTHORIZATION, and this process
 * only answers its credential requests until one is good. Then it takes over
 * the client input the child had read, logs in (becoming the user) and runs
 * TRANSACTION. The login deadline (-L) is kept here, by a timer, so that a
 * child that dawdles or hangs cannot stretch it: at the deadline the child
 * is killed and this process says why. Returns the session's exit status.
 */
static int separated(struct session *s)
{
	struct credential c;
	struct sigaction old;
	enum verdict v;
	ssize_t n;
	int fd, got;
	pid_t pid = privsep_fork(&fd);

	if (pid < 0)
		return 1;
	if (pid == 0) {
		channel = fd;
		exit(session(s, 1));
	}
	login_alarm(pid, &old);
	for (;;) {
		got = privsep_request(fd, &c);
		if (login_expired)
			break;
		if (got == 0) {	/* the session ended before a login */
			login_alarm(0, &old);
			return reap(pid);
		}
		if (got < 0) {
			syslog(LOG_CRIT, "pre-auth: malformed request");
			break;
		}
		v = authority(s, &c);
		if (login_expired || privsep_answer(fd, v))
			break;
		if (v == V_CLOSE) {
			login_alarm(0, &old);
			reap(pid);
			return 1;
		}
		if (v != V_OK)
			continue;
		n = privsep_take_over(fd, inbuf, sizeof(inbuf));
		login_alarm(0, &old);
		if (n < 0 || login_expired || reap(pid) != 0) {
			syslog(LOG_ERR, "pre-auth: hand-over failed");
			return 1;
		}
		close(fd);
		in_pos = 0;
		in_len = n;
		if (respond(s, login(s, method_names[c.method])) != P_OK) {
			flush_output();
			return 1;
		}
		return session(s, 0);
	}
	login_alarm(0, &old);
	kill(pid, SIGKILL);
	reap(pid);
	if (login_expired) {
		syslog(LOG_NOTICE, "pre-auth: no login within %d s, child "
		    "killed: host=%s", login_timeout, s->peer);
		respond(s, reply(s, P_CLOSE, "No login within %d seconds",
		    login_timeout));
		flush_output();
	}
	return 1;
}

int main(int argc, char **argv)
{
	static struct session s;
	struct sigaction sa;
	int c, logopt = LOG_PID | LOG_NDELAY, status, hash = 0;
	unsigned long long v;
	char name[MAX_USER + 1];

	while ((c = getopt(argc, argv, "1a:AdD:e:F:Hl:L:s:m:Pt:STU:v:VW:X:")) != -1)
		switch (c) {
		case 'a':
			apop_file = optarg;
			break;
		case 'A':
			apop_only = 1;
			break;
		case 'H':
			hash = 1;
			break;
		case 'F':
			if (!strcmp(optarg, "shared"))
				dotlock_set_share(DOTLOCK_SHARED);
			else if (!strcmp(optarg, "local"))
				dotlock_set_share(DOTLOCK_LOCAL);
			else
				usage();
			break;
		case 'v':
			vusers_file = optarg;
			break;
		case 'U':
			vusers_account = optarg;
			break;
		case '1':
			one_session = 1;
			break;
		case 'e':
			if (parse_number(optarg, 1000000, &v))
				usage();
			expire = v;
			break;
		case 'l':
			if (parse_number(optarg, 1000000, &v))
				usage();
			login_delay = v;
			break;
		case 'L':
			if (parse_number(optarg, MAX_LOGIN_TIMEOUT, &v) ||
			    v < 1)
				usage();
			login_timeout = v;
			break;
		case 'T':
			no_top = 1;
			break;
		case 'W':
			if (workarounds(optarg))
				usage();
			break;
		case 'X':
			if (proxy_trusted(optarg, "127.0.0.1") < 0)
				usage();
			proxies = optarg;
			break;
		case 'd':
			logopt |= LOG_PERROR;
			break;
		case 'D':
			state_template = optarg;
			break;
		case 's':
			pam_service = optarg;
			break;
		case 'S':
			secure = 1;
			break;
		case 'P':
			plaintext_needs_tls = 1;
			break;
		case 'm':
			mailbox_template = optarg;
			break;
		case 't':
			if (parse_number(optarg, 86400, &v) || v < 1)
				usage();
			timeout = v;
			break;
		case 'V':
			puts(POP3_NAME " " POP3_VERSION);
			return 0;
		default:
			usage();
		}
	if (hash && optind == argc)
		return vusers_hash(stdin, stdout) ? 1 : 0;
	if (vusers_file && !strcmp(state_template, DEFAULT_STATE))
		state_template = DEFAULT_VSTATE;
	if (vusers_file && (apop_file || !template_has_user(state_template)))
		fprintf(stderr, POP3_NAME ": -v takes no -a, and a -D that "
		    "names %%u\n");
	if (optind != argc || !template_ok(mailbox_template) ||
	    !template_ok(state_template) || !*pam_service || hash ||
	    (vusers_file && (apop_file || !template_has_user(state_template)))
	    || (vusers_account && !vusers_file))
		usage();
	openlog(POP3_NAME, logopt, LOG_MAIL);
	if (no_dumps())
		return 1;
	if (getuid() != geteuid() || getgid() != getegid()) {
		syslog(LOG_CRIT, "refusing to run set-uid or set-gid");
		return 1;
	}
	if (vusers_file && auth_virtual_account(vusers_account))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);	/* a write error is enough */
	sigaction(SIGXFSZ, &sa, NULL);	/* EFBIG, not death after UPDATE */
	sa.sa_handler = on_alarm;	/* no SA_RESTART: writes time out */
	sigaction(SIGALRM, &sa, NULL);
	timed_socket = time_socket_writes();

	s.state = AUTHORIZATION;
	s.md.fd = -1;
	s.lock = -1;
	s.peer = peer_address();
	if (proxies && proxy_trusted(proxies, s.peer) == 1 &&
	    !(s.peer = proxy_header(s.peer)))
		return 1;
	if (apop_file) {
		make_timestamp(s.timestamp, sizeof(s.timestamp));
		make_timestamp(s.challenge, sizeof(s.challenge));
	}
	if (geteuid() == 0)
		status = separated(&s);
	else {
		login_deadline = now_ms() + login_timeout * 1000LL;
		status = session(&s, 1);
	}
	if (s.state == TRANSACTION) {
		unsigned long count;
		unsigned long long octets;

		totals(&s, &count, &octets);
		syslog(LOG_INFO, "logout: user=%s host=%s: top=%lu/%llu, "
		    "retr=%lu/%llu, del=%lu/%llu, size=%llu",
		    printable(s.who.name, name, sizeof(name)), s.peer,
		    s.top.count, s.top.octets, s.retr.count, s.retr.octets, s.del.count,
		    s.del.octets, octets + s.del.octets);
		if (s.md.tidy) {
			hang_up();
			maildrop_tidy(&s.md);
		}
		maildrop_close(&s.md);
	}
	dotlock_done();
	if (s.lock >= 0)
		close(s.lock);
	return status;
}
