/*
 * The TRANSACTION state (transaction.h), run as the user: entering it, the
 * message commands, UPDATE at QUIT, and the logout.
 */
#include <limits.h>
#include <malloc.h>
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

/* Finds the message an argument names; on failure says why in s->reply. A
 * message another session removed (M_GONE) is found only when gone_ok. */
static struct message *message_arg(struct session *s, const char *arg,
    unsigned long *n, int gone_ok)
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
	if ((m->flags & M_GONE) && !gone_ok) {
		reply(s, P_ERR, "Message %lu was removed by another session",
		    *n);
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
	return m->size + (opt.add_eoh && (m->flags & M_NOEOH) ? 2 : 0);
}

/* The count and octets of the messages not marked deleted: those at login
 * less what del counts, every message marked since, and less those that
 * another session removed meanwhile. */
static void totals(struct session *s, unsigned long *count,
    unsigned long long *octets)
{
	unsigned long n;

	*count = s->md.visible - s->del.count;
	*octets = s->octets - s->del.octets;
	if (!s->md.remaps)
		return;
	for (n = 1; n <= s->md.visible; n++) {
		struct message *m = maildrop_get(&s->md, n);

		if ((m->flags & (M_GONE | M_DELETED)) == M_GONE) {
			(*count)--;
			*octets -= msg_size(s, m);
		}
	}
}

/*
 * Before a command that reports on the file or reads from it: the table
 * remapped if another session or program rewrote the file meanwhile
 * (maildrop_fresh). Returns P_OK, or the reply that ends the command: busy
 * locks are an -ERR to try again after, a change that cannot be followed
 * ends the session, since the table no longer describes the file.
 */
static enum result fresh(struct session *s)
{
	const char *err;
	int r = maildrop_fresh(&s->md, &err);

	if (r == -2)
		return reply(s, P_ERR, "%s", err);
	if (r < 0)
		return reply(s, P_CLOSE, "%s", err);
	return P_OK;
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
	struct sigaction prev;
	enum result r;
	int failed;

	if ((opt.login_delay > 0 || opt.one_session) &&
	    (r = user_state(s, state)) != P_OK)
		return r;
	timing_catch_alarm(open_late, &prev);
	timing_alarm(open_deadline());
	failed = maildrop_open(&s->md, path, state, s->who.uid, &opt.ids,
	    &err);
	timing_alarm(0);
	timing_restore_alarm(&prev);
	if (failed) {
		syslog(LOG_NOTICE, "login refused: user=%s host=%s: %s",
		    printable(s->who.name, name, sizeof(name)), s->peer, err);
		return reply(s, P_CLOSE, "%s", err);
	}
	for (n = 1; n <= s->md.visible; n++)
		s->octets += msg_size(s, maildrop_get(&s->md, n));
	s->state = TRANSACTION;
	client_set_login_deadline(0);
	totals(s, &count, &octets);
	syslog(LOG_INFO, "login: user=%s host=%s method=%s messages=%lu "
	    "octets=%llu", printable(s->who.name, name, sizeof(name)), s->peer,
	    method, count, octets);
	malloc_trim(0);	/* what PAM freed, kept dirty while we idle */
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

	for (i = 0; i < s->md.count; i++)
		if ((s->md.msg[i].flags & (M_RETRIEVED | M_DELETED)) ==
		    M_RETRIEVED) {
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
	enum result r;

	if (arg)
		return bad_input(s, "Syntax error");
	if ((r = fresh(s)) != P_OK)
		return r;
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

		if (m->flags & (M_DELETED | M_GONE))
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
	enum result r;

	if ((r = fresh(s)) != P_OK)
		return r;
	if (arg) {
		if (!(m = message_arg(s, arg, &n, 0)))
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
	enum result r;

	if ((r = fresh(s)) != P_OK)
		return r;
	if (arg) {
		if (!(m = message_arg(s, arg, &n, 0)))
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
	if (!r && opt.add_eoh && (s->msg->flags & M_NOEOH))
		r = client_put("\r\n");

	if (s->lines >= 0)
		s->top.octets += client_sent() - before;
	return r;
}

/*
 * The file no longer has m's From_ line where the remapped table says,
 * though its times did not move (a network file system's clock, say): the
 * table no longer describes the file, so nothing more is sent from it and
 * nothing is deleted.
 */
static enum result changed(struct session *s)
{
	return reply(s, P_CLOSE, "[SYS/TEMP] Maildrop changed by another "
	    "program; log in again");
}

enum result cmd_retr(struct session *s, char *arg)
{
	unsigned long n;
	enum result r;

	if ((r = fresh(s)) != P_OK)
		return r;
	if (!(s->msg = message_arg(s, arg, &n, 0)))
		return P_ERR;
	if (!maildrop_still(&s->md, s->msg))
		return changed(s);
	s->lines = -1;
	s->body = body_message;
	if (opt.expire == 0)
		s->msg->flags |= M_RETRIEVED;
	s->retr.count++;
	s->retr.octets += msg_size(s, s->msg);
	return reply(s, P_OK, "%lld octets", msg_size(s, s->msg));
}

enum result cmd_top(struct session *s, char *arg)
{
	char *count = arg ? strchr(arg, ' ') : NULL;
	unsigned long long lines;
	unsigned long n;
	enum result r;

	if (!count)
		return bad_input(s, "Syntax error");
	*count++ = '\0';
	if ((r = fresh(s)) != P_OK)
		return r;
	if (!(s->msg = message_arg(s, arg, &n, 0)))
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

/* DELE of a message that another session removed meanwhile succeeds: it is
 * gone, as the client wants, and QUIT has nothing to do for it. */
enum result cmd_dele(struct session *s, char *arg)
{
	struct message *m;
	unsigned long n;

	if (!(m = message_arg(s, arg, &n, 1)))
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
	if (s->lock >= 0)
		close(s->lock);
}
