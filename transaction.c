/*
 * The TRANSACTION state (transaction.h), run as the user: entering it, the
 * message commands, UPDATE at QUIT, and the logout.
 */
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "maildrop.h"
#include "params.h"
#include "session.h"
#include "text.h"
#include "timing.h"
#include "transaction.h"
#include "userstate.h"

/* Seconds that opening the maildrop may take: the idle timeout, the client's
 * wait, but never so few that a busy lock is not answered [IN-USE]. */
static unsigned open_deadline(void)
{
	return opt.timeout > OPEN_TIMEOUT_MIN ? (unsigned)opt.timeout :
	    OPEN_TIMEOUT_MIN;
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
	return m->size + (s->noeoh && s->noeoh[m - s->md.msg] ? 2 : 0);
}

/* The count and octets of the messages not marked deleted: those at login
 * less what del counts, every message marked since. */
static void totals(struct session *s, unsigned long *count,
    unsigned long long *octets)
{
	*count = s->md.visible - s->del.count;
	*octets = s->octets - s->del.octets;
}

/* Watches a message's head for an empty line (CRLF at the start, or CRLF
 * CRLF), and stops the send once it has seen one. */
struct eoh_watch {
	struct maildrop_out out;	/* first: eoh_flush is handed this */
	char buf[4096];
	char last[2];
	unsigned long long seen;
	int found;
};

static int eoh_flush(struct maildrop_out *o)
{
	struct eoh_watch *w = (struct eoh_watch *)o;
	size_t i, n = o->len;

	o->len = 0;
	for (i = 0; i < n; i++) {
		if (o->buf[i] == '\n' && w->last[1] == '\r' &&
		    (w->seen == 1 || w->last[0] == '\n')) {
			w->found = 1;
			return -1;	/* enough: stop reading */
		}
		w->last[0] = w->last[1];
		w->last[1] = o->buf[i];
		w->seen++;
	}
	return 0;
}

/*
 * The oe-ns-eoh workaround needs to know, before LIST, which messages have
 * no blank line after their headers: it reads each message's head the way
 * TOP n 0 sends it (headers only, or the whole message when there is no
 * blank line) until it sees an empty line. maildrop.c's scanner could note
 * this for free (a flag M_NOBODY); until it does, this costs one read of
 * the headers per message, and only with -W oe-ns-eoh. Returns 0 or -1.
 */
static int find_noeoh(struct session *s)
{
	unsigned long i;

	if (!s->md.count)
		return 0;
	if (!(s->noeoh = calloc(s->md.count, 1)))
		return -1;
	for (i = 1; i <= s->md.visible; i++) {
		struct message *m = maildrop_get(&s->md, i);
		struct eoh_watch w;
		int r;

		memset(&w, 0, sizeof(w));
		w.out.buf = w.buf;
		w.out.size = sizeof(w.buf);
		w.out.flush = eoh_flush;
		if (!(r = maildrop_send(&s->md, m, 0, &w.out)))
			eoh_flush(&w.out);	/* what is left in the buffer */
		if (r && !w.found)
			return -1;	/* a read error, logged */
		s->noeoh[m - s->md.msg] = !w.found;
	}
	return 0;
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
	if (opt.one_session && (s->lock = userstate_lock(dir)) < 0) {
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
	if (opt.login_delay > 0) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		wait = userstate_login_delay(dir, opt.login_delay, &now);
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
 * What a login does as the user: a maildrop that can't be opened ends the
 * session, since the identity has already changed.
 */
enum result transaction_start(struct session *s, const char *path,
    const char *state, const char *method)
{
	char name[MAX_USER + 1];
	const char *err;
	unsigned long count, n;
	unsigned long long octets;
	struct sigaction late, prev;
	enum result r;
	int failed;

	if ((opt.login_delay > 0 || opt.one_session) &&
	    (r = user_state(s, state)) != P_OK)
		return r;
	memset(&late, 0, sizeof(late));
	late.sa_handler = open_late;
	sigaction(SIGALRM, &late, &prev);
	timing_alarm(open_deadline());
	failed = maildrop_open(&s->md, path, state, s->who.uid, &err);
	timing_alarm(0);
	sigaction(SIGALRM, &prev, NULL);
	if (failed) {
		syslog(LOG_NOTICE, "login refused: user=%s host=%s: %s",
		    printable(s->who.name, name, sizeof(name)), s->peer, err);
		return reply(s, P_CLOSE, "%s", err);
	}
	if (opt.add_eoh && find_noeoh(s))
		return reply(s, P_CLOSE, "[SYS/TEMP] Cannot read the maildrop");
	if (opt.expire == 0 && s->md.count &&
	    !(s->retrieved = calloc(s->md.count, 1))) {
		syslog(LOG_ERR, "out of memory");
		return reply(s, P_CLOSE, "[SYS/TEMP] Out of memory");
	}
	for (n = 1; n <= s->md.visible; n++)
		s->octets += msg_size(s, maildrop_get(&s->md, n));
	s->state = TRANSACTION;
	client_set_login_deadline(0);
	totals(s, &count, &octets);
	syslog(LOG_INFO, "login: user=%s host=%s method=%s messages=%lu "
	    "octets=%llu", printable(s->who.name, name, sizeof(name)), s->peer,
	    method, count, octets);
	return reply(s, P_OK, "maildrop has %lu message%s (%llu octets)",
	    count, count == 1 ? "" : "s", octets);
}

/*
 * EXPIRE 0 (RFC 1939 §8, RFC 2449): a message retrieved with RETR is
 * deleted at QUIT as if DELE'd. Retrieved is retrieved: RSET does not undo it.
 */
static void expire_retrieved(struct session *s)
{
	size_t i;

	if (!s->retrieved)
		return;
	for (i = 0; i < s->md.count; i++)
		if (s->retrieved[i] && !(s->md.msg[i].flags & M_DELETED)) {
			s->md.msg[i].flags |= M_DELETED;
			s->del.count++;
			s->del.octets += msg_size(s, &s->md.msg[i]);
		}
}

enum result cmd_quit(struct session *s, char *arg)
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

enum result cmd_stat(struct session *s, char *arg)
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
		if (client_put(line))
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

enum result cmd_list(struct session *s, char *arg)
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

enum result cmd_uidl(struct session *s, char *arg)
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
	unsigned long long before = client_sent();
	int r = maildrop_send(&s->md, s->msg, s->lines, client_out());

	/* oe-ns-eoh: every line was a header (TOP sent them all too), so the
	 * blank line that ends the headers comes last. */
	if (!r && s->noeoh && s->noeoh[s->msg - s->md.msg])
		r = client_put("\r\n");

	if (s->lines >= 0)
		s->top.octets += client_sent() - before;
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

enum result cmd_retr(struct session *s, char *arg)
{
	unsigned long n;

	if (!(s->msg = message_arg(s, arg, &n)))
		return P_ERR;
	if (!maildrop_still(&s->md, s->msg))
		return changed(s);
	s->lines = -1;
	s->body = body_message;
	if (s->retrieved)
		s->retrieved[s->msg - s->md.msg] = 1;
	s->retr.count++;
	s->retr.octets += msg_size(s, s->msg);
	return reply(s, P_OK, "%lld octets", msg_size(s, s->msg));
}

enum result cmd_top(struct session *s, char *arg)
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

enum result cmd_dele(struct session *s, char *arg)
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

enum result cmd_noop(struct session *s, char *arg)
{
	if (arg)
		return bad_input(s, "Syntax error");
	return reply(s, P_OK, "");
}

enum result cmd_rset(struct session *s, char *arg)
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

void transaction_logout(struct session *s)
{
	char name[MAX_USER + 1];
	unsigned long count;
	unsigned long long octets;

	totals(s, &count, &octets);
	syslog(LOG_INFO, "logout: user=%s host=%s: top=%lu/%llu, "
	    "retr=%lu/%llu, del=%lu/%llu, size=%llu",
	    printable(s->who.name, name, sizeof(name)), s->peer,
	    s->top.count, s->top.octets, s->retr.count, s->retr.octets,
	    s->del.count, s->del.octets, octets + s->del.octets);
	if (s->md.tidy) {
		client_hang_up();
		maildrop_tidy(&s->md);
	}
	maildrop_close(&s->md);
}

void transaction_free(struct session *s)
{
	free(s->retrieved);
	free(s->noeoh);
	if (s->lock >= 0)
		close(s->lock);
}
