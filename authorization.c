/*
 * The AUTHORIZATION commands (authorization.h), with the one table of SASL
 * mechanisms. What they make of the client's lines goes to the authority as
 * a struct credential (root.c); none of it runs with root's rights.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "authorization.h"
#include "client.h"
#include "params.h"
#include "privsep.h"
#include "root.h"
#include "sasl.h"
#include "session.h"
#include "text.h"

enum result cmd_user(struct session *s, char *arg)
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

/* Puts a credential to the authority and answers as it decides; after a
 * good one the pre-auth child goes, and elsewhere the login follows. */
static enum result authenticate(struct session *s, struct credential *c)
{
	int v = root_ask(s, c);

	explicit_bzero(c->secret, sizeof(c->secret));
	switch (v) {
	case V_OK:
		root_hand_over();
		return login(s, c->method);
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

enum result cmd_pass(struct session *s, char *arg)
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

enum result cmd_apop(struct session *s, char *arg)
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
		if (client_put("+ ") || client_put(challenge) ||
		    client_put("\r\n"))
			return reply(s, P_CLOSE, "Write failed");
		switch (client_get_line(line, MAX_SASL_LINE, &n)) {
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

/*
 * The SASL mechanisms (RFC 5034), in the order they are offered. PLAIN and
 * LOGIN carry a password, so they go where USER goes (-P); CRAM-MD5 needs
 * the secrets file (-a).
 */
static const struct mechanism {
	const char *name;
	enum result (*run)(struct session *, const char *initial);
	int plaintext;		/* carries a password */
} mechanisms[] = {
	{ "PLAIN", auth_plain, 1 },
	{ "LOGIN", auth_login, 1 },
	{ "CRAM-MD5", auth_cram_md5, 0 },
};

#define NMECHANISMS (sizeof(mechanisms) / sizeof(mechanisms[0]))

static int offered(const struct mechanism *m)
{
	return m->plaintext ? plaintext_allowed() : opt.apop_file != NULL;
}

char *mechanisms_offered(char *buf, size_t size)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < NMECHANISMS; i++)
		if (offered(&mechanisms[i]))
			snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
			    buf[0] ? " " : "", mechanisms[i].name);
	return buf;
}

static int body_mechs(struct session *s)
{
	size_t i;

	(void)s;
	for (i = 0; i < NMECHANISMS; i++)
		if (offered(&mechanisms[i]) &&
		    (client_put(mechanisms[i].name) || client_put("\r\n")))
			return -1;
	return 0;
}

/*
 * A bare AUTH lists the mechanisms, as many servers do for clients that
 * probe with it (RFC 5034 leaves it open).
 */
enum result cmd_auth(struct session *s, char *arg)
{
	const struct mechanism *m = NULL;
	char *initial;
	size_t i;

	if (!arg) {
		s->body = body_mechs;
		return reply(s, P_OK, "Methods supported");
	}
	if ((initial = strchr(arg, ' '))) {
		*initial++ = '\0';
		if (!*initial || strchr(initial, ' '))
			return bad_input(s, "Syntax error");
	}
	for (i = 0; i < NMECHANISMS && !m; i++)
		if (!strcasecmp(arg, mechanisms[i].name))
			m = &mechanisms[i];
	if (m && m->plaintext && !plaintext_allowed())
		return reply(s, P_ERR, "[AUTH] Plaintext authentication "
		    "disallowed on non-secure connections");
	if (!m || !offered(m))
		return reply(s, P_ERR, "Unrecognized authentication type");
	return m->run(s, initial);
}

/* RFC 6856 §2: from now on, names and passwords are UTF-8. */
enum result cmd_utf8(struct session *s, char *arg)
{
	if (arg)
		return bad_input(s, "Syntax error");
	s->utf8 = 1;
	return reply(s, P_OK, "UTF8 enabled");
}

static int body_lang(struct session *s)
{
	(void)s;
	return client_put("en English\r\n");
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
enum result cmd_lang(struct session *s, char *arg)
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

