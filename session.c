/*
 * The protocol engine (session.h): the command table, which also makes the
 * CAPA list, the dispatcher, the one writer of +OK and -ERR, and the loop
 * that reads a session's commands.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "authorization.h"
#include "client.h"
#include "params.h"
#include "session.h"
#include "transaction.h"

struct options opt = {
	.pam_service = DEFAULT_PAM_SERVICE,
	.mailbox_template = DEFAULT_MAILBOX,
	.state_template = DEFAULT_STATE,
	.timeout = DEFAULT_TIMEOUT,
	.login_timeout = DEFAULT_LOGIN_TIMEOUT,
	.login_delay = -1,
	.expire = -1,
};

void session_init(struct session *s, const char *peer)
{
	s->state = AUTHORIZATION;
	s->md.fd = -1;
	s->lock = -1;
	s->peer = peer;
}

enum result reply(struct session *s, enum result r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->reply, sizeof(s->reply), fmt, ap);
	va_end(ap);
	return r;
}

enum result time_up(struct session *s, const char **why)
{
	int login = client_login_late();

	if (why)
		*why = login ? "no login in time" : "idle timeout";
	if (login)
		return reply(s, P_CLOSE, "No login within %d seconds",
		    opt.login_timeout);
	return reply(s, P_CLOSE, "Disconnected for inactivity");
}

/* Counted, since a client that sends nothing else is broken or probing. */
enum result bad_input(struct session *s, const char *text)
{
	s->bad++;
	return reply(s, P_ERR, "%s", text);
}

int plaintext_allowed(void)
{
	return opt.secure || !opt.plaintext_needs_tls;
}

/* Whether a command exists here: APOP only with a greeting's timestamp
 * (-a), TOP only without -T. */
static int apop_here(const struct session *s)
{
	return s->timestamp[0] != '\0';
}

static int top_here(const struct session *s)
{
	(void)s;
	return !opt.no_top;
}

/* The argument of a capability in CAPA, into buf (size bytes): "" for none;
 * NULL when it is not announced here. */
static const char *capa_user(char *buf, size_t size)
{
	(void)buf, (void)size;
	return plaintext_allowed() ? "" : NULL;
}

static const char *capa_sasl(char *buf, size_t size)
{
	return mechanisms_offered(buf, size)[0] ? buf : NULL;
}

static const char *capa_top(char *buf, size_t size)
{
	(void)buf, (void)size;
	return opt.no_top ? NULL : "";
}

static const char *capa_number(long n, char *buf, size_t size)
{
	if (n < 0)
		return NULL;
	snprintf(buf, size, "%ld", n);
	return buf;
}

static const char *capa_login_delay(char *buf, size_t size)
{
	return capa_number(opt.login_delay, buf, size);
}

static const char *capa_expire(char *buf, size_t size)
{
	return capa_number(opt.expire, buf, size);
}

static enum result cmd_capa(struct session *s, char *arg);

/*
 * The commands, matched case-insensitively, and the capabilities, in the
 * order CAPA lists them: a row names a command (name, with the states it is
 * taken in and, unless here is NULL, where it exists at all), a capability
 * (capa, with capa_arg making its argument or saying it is not announced),
 * or both. An unknown command, one in the wrong state and one that does not
 * exist here all get "-ERR Unknown command".
 */
static const struct command {
	const char *name;
	enum result (*handler)(struct session *, char *);
	unsigned states;
	int (*here)(const struct session *);
	const char *capa;
	const char *(*capa_arg)(char *buf, size_t size);
} commands[] = {
	{ "USER", cmd_user, AUTHORIZATION, NULL, "USER", capa_user },
	{ "AUTH", cmd_auth, AUTHORIZATION, NULL, "SASL", capa_sasl },
	{ "TOP", cmd_top, TRANSACTION, top_here, "TOP", capa_top },
	{ NULL, NULL, 0, NULL, "LOGIN-DELAY", capa_login_delay },
	{ NULL, NULL, 0, NULL, "EXPIRE", capa_expire },
	{ "UIDL", cmd_uidl, TRANSACTION, NULL, "UIDL", NULL },
	{ NULL, NULL, 0, NULL, "RESP-CODES", NULL },
	{ NULL, NULL, 0, NULL, "AUTH-RESP-CODE", NULL },
	{ NULL, NULL, 0, NULL, "PIPELINING", NULL },
	{ "UTF8", cmd_utf8, AUTHORIZATION, NULL, "UTF8 USER", NULL },
	{ "LANG", cmd_lang, AUTHORIZATION | TRANSACTION, NULL, "LANG", NULL },
	{ NULL, NULL, 0, NULL, "IMPLEMENTATION " POP3_NAME " " POP3_VERSION,
	    NULL },
	{ "PASS", cmd_pass, AUTHORIZATION, NULL, NULL, NULL },
	{ "APOP", cmd_apop, AUTHORIZATION, apop_here, NULL, NULL },
	{ "CAPA", cmd_capa, AUTHORIZATION | TRANSACTION, NULL, NULL, NULL },
	{ "QUIT", cmd_quit, AUTHORIZATION | TRANSACTION, NULL, NULL, NULL },
	{ "STAT", cmd_stat, TRANSACTION, NULL, NULL, NULL },
	{ "LIST", cmd_list, TRANSACTION, NULL, NULL, NULL },
	{ "RETR", cmd_retr, TRANSACTION, NULL, NULL, NULL },
	{ "DELE", cmd_dele, TRANSACTION, NULL, NULL, NULL },
	{ "NOOP", cmd_noop, TRANSACTION, NULL, NULL, NULL },
	{ "RSET", cmd_rset, TRANSACTION, NULL, NULL, NULL },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The CAPA list: a line for each capability announced here. */
static int body_capa(struct session *s)
{
	char arg[64];
	const char *a;
	size_t i;

	(void)s;
	for (i = 0; i < NCOMMANDS; i++) {
		if (!commands[i].capa)
			continue;
		a = commands[i].capa_arg ? commands[i].capa_arg(arg,
		    sizeof(arg)) : "";
		if (a && (client_put(commands[i].capa) ||
		    (a[0] && (client_put(" ") || client_put(a))) ||
		    client_put("\r\n")))
			return -1;
	}
	return 0;
}

static enum result cmd_capa(struct session *s, char *arg)
{
	if (arg)
		return bad_input(s, "Syntax error");
	s->body = body_capa;
	return reply(s, P_OK, "Capability list follows");
}

/* Only here are +OK, -ERR and a body's final dot written. */
enum result respond(struct session *s, enum result r)
{
	if (client_put(r == P_OK || r == P_QUIT ? "+OK" : "-ERR") ||
	    (s->reply[0] && (client_put(" ") || client_put(s->reply))) ||
	    client_put("\r\n"))
		return P_CLOSE;
	if (r == P_OK && s->body && (s->body(s) || client_put(".\r\n")))
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
	const struct command *c = NULL;
	char *arg = strchr(line, ' ');
	enum result r = P_ERR;
	size_t klen = arg ? (size_t)(arg - line) : strlen(line), i;

	if (arg)
		arg++;
	s->body = NULL;
	snprintf(s->reply, sizeof(s->reply), "Unknown command");
	for (i = 0; i < NCOMMANDS && !c; i++)
		if (commands[i].name && strlen(commands[i].name) == klen &&
		    !strncasecmp(commands[i].name, line, klen))
			c = &commands[i];
	if (c && (c->states & s->state) && (!c->here || c->here(s)))
		r = c->handler(s, arg);
	else
		s->bad++;
	return respond(s, limit(s, r));
}

int session_run(struct session *s, int greet)
{
	char line[MAX_LINE + 1];
	size_t len;
	enum result r;
	const char *why;

	if (greet && (client_put("+OK " POP3_NAME " ready") ||
	    (s->timestamp[0] && (client_put(" ") ||
	    client_put(s->timestamp))) || client_put("\r\n")))
		return 1;
	for (;;) {
		enum line_status st = client_get_line(line, MAX_LINE, &len);

		switch (st) {
		case LINE:
		case LINE_LONG:
			break;
		case LINE_EOF:
			why = "EOF before QUIT";
			goto gone;
		case LINE_TIMEOUT:
			respond(s, time_up(s, &why));
			client_flush();
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
			return client_flush() ? 1 : 0;
		if (r == P_CLOSE) {
			client_flush();
			return 1;
		}
	}
gone:
	syslog(LOG_INFO, "session ended without QUIT (%s): nothing deleted",
	    why);
	return 1;
}

