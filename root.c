/*
 * What runs with root's rights (root.h). Started as root, this file's code
 * is the root parent: it checks credentials (PAM, the secrets file, the
 * virtual users), delays and counts failures, keeps the login deadline,
 * expands the mailbox path and drops to the user. Everything the client says
 * before that is read by the pre-auth child, which reaches this file only
 * through the channel (privsep.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "dotlock.h"
#include "params.h"
#include "privsep.h"
#include "root.h"
#include "session.h"
#include "text.h"
#include "timing.h"
#include "transaction.h"
#include "vusers.h"

/* In the pre-auth child: the channel to the root parent; else -1. */
static int channel = -1;

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

	client_flush();
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
	timing_sleep_until(&until);
}

/*
 * Expands the mailbox template: %u the user, %h the home directory, %% a
 * percent sign. Returns 0, or -1 when the result would not fit.
 */
int template_expand(const char *tmpl, const struct auth_user *u, char *buf,
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
int template_has_user(const char *tmpl)
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
int template_ok(const char *tmpl)
{
	for (; *tmpl; tmpl++)
		if (*tmpl == '%') {
			tmpl++;
			if (*tmpl != 'u' && *tmpl != 'h' && *tmpl != '%')
				return 0;
		}
	return 1;
}

/* For logs, by enum method. */
static const char *const method_names[] = {
	"PASS", "APOP", "PLAIN", "LOGIN", "CRAM-MD5"
};

/*
 * As root where we are: who the user is, the paths the templates make for
 * them, and the dotlock keeper; then we are the user for good, and
 * transaction_start goes on as the user.
 */
enum result login(struct session *s, enum method method)
{
	char path[PATH_MAX], state[PATH_MAX];

	if (opt.vusers_file ? auth_lookup(opt.vusers_account, s->user,
	    &s->who) : auth_lookup(s->user, NULL, &s->who))
		return reply(s, P_CLOSE, "[AUTH] Authentication failed");
	if (template_expand(s->vmailbox[0] ? s->vmailbox :
	    opt.mailbox_template, &s->who, path, sizeof(path)) ||
	    template_expand(opt.state_template, &s->who, state,
	    sizeof(state))) {
		syslog(LOG_ERR, "%s: mailbox or state path too long",
		    s->who.name);
		return reply(s, P_CLOSE, "[SYS/PERM] Mailbox path too long");
	}
	/* The one thing done for the maildrop with root's help (see
	 * dotlock.c); then we are the user for good. */
	dotlock_keeper(path, s->who.uid);
	auth_drop(&s->who);
	return transaction_start(s, path, state, method_names[method]);
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
	if (opt.vusers_file) {
		found = auth_file_entry(opt.vusers_file, user, buf,
		    sizeof(buf));
		explicit_bzero(buf, sizeof(buf));
		return found == 1;
	}
	return auth_known(user) ||
	    (opt.apop_file && auth_has_secret(opt.apop_file, user) == 1);
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
		if (!opt.apop_file || auth_apop(opt.apop_file, c->user,
		    s->timestamp, c->secret))
			why = "APOP refused";
	} else if (c->method == CRED_CRAM) {
		if (!opt.apop_file || auth_cram(opt.apop_file, c->user,
		    s->challenge, c->secret))
			why = "CRAM-MD5 refused";
	} else if (!plaintext_allowed())
		why = "plaintext password refused (-P)";
	else if (strlen(c->secret) > MAX_PASS)
		why = "password too long";
	else if (opt.apop_file && opt.apop_only &&
	    auth_has_secret(opt.apop_file, c->user) != 0)
		why = "password refused: APOP user (-A)";
	else if (opt.vusers_file) {	/* never PAM: see README, Design */
		if (vusers_check(opt.vusers_file, c->user, c->secret,
		    s->vmailbox, sizeof(s->vmailbox)) != 1)
			why = "virtual user refused";
		else if (!template_ok(s->vmailbox))
			why = "bad mailbox template in the virtual users file";
	} else if (auth_pam(opt.pam_service, c->user, c->secret,
	    strcmp(s->peer, "local") ? s->peer : NULL))
		why = "PAM refused";
	if (!why && !opt.vusers_file && auth_may_serve(c->user))
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

int root_ask(struct session *s, struct credential *c)
{
	return channel >= 0 ? privsep_ask(channel, c) : (int)authority(s, c);
}

/*
 * Pre-auth child, after a good login: what we have said goes out, what the
 * client sent ahead goes to the parent, which carries on as the user.
 */
void root_hand_over(void)
{
	if (channel >= 0)
		_exit(client_hand_over(channel));
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
		timing_alarm(0);
		preauth_pid = 0;
		sigaction(SIGALRM, old, NULL);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_login_deadline;
	sa.sa_flags = SA_RESTART;	/* PAM is not cut short */
	sigaction(SIGALRM, &sa, old);
	preauth_pid = pid;
	timing_alarm(opt.login_timeout);
}

/*
 * Started as root: the pre-auth child runs AUTHORIZATION, and this process
 * only answers its credential requests until one is good. Then it takes over
 * the client input the child had read, logs in (becoming the user) and runs
 * TRANSACTION. The login deadline (-L) is kept here, by a timer, so that a
 * child that dawdles or hangs cannot stretch it: at the deadline the child
 * is killed and this process says why. Returns the session's exit status.
 */
int root_parent(struct session *s)
{
	struct credential c;
	struct sigaction old;
	enum verdict v;
	ssize_t n;
	int fd, got;
	pid_t pid;

	/* The keeper's program found for the login, or without it the
	 * keeper forked now, while this process is small: a copy holds the
	 * original of every page that we write later (see dotlock.c). */
	dotlock_standby();
	if ((pid = privsep_fork(&fd)) < 0)
		return 1;
	if (pid == 0) {
		dotlock_forget();
		channel = fd;
		exit(session_run(s, 1));
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
		n = client_take_over(fd);
		login_alarm(0, &old);
		if (n < 0 || login_expired || reap(pid) != 0) {
			syslog(LOG_ERR, "pre-auth: hand-over failed");
			return 1;
		}
		close(fd);
		if (respond(s, login(s, c.method)) != P_OK) {
			client_flush();
			return 1;
		}
		return session_run(s, 0);
	}
	login_alarm(0, &old);
	kill(pid, SIGKILL);
	reap(pid);
	if (login_expired) {
		syslog(LOG_NOTICE, "pre-auth: no login within %d s, child "
		    "killed: host=%s", opt.login_timeout, s->peer);
		respond(s, reply(s, P_CLOSE, "No login within %d seconds",
		    opt.login_timeout));
		client_flush();
	}
	return 1;
}

