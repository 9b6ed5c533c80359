/*
 * One POP3 session: its options, its state (the fields grouped by the file
 * that owns them), the command table and the one writer of replies.
 */
#ifndef POP3_SESSION_H
#define POP3_SESSION_H

#include "auth.h"
#include "maildrop.h"
#include "params.h"

/* The options: pop3-handler.c sets them from the command line, and their
 * defaults are params.h's. */
struct options {
	const char *pam_service;	/* -s */
	const char *mailbox_template;	/* -m */
	const char *state_template;	/* -D */
	const char *apop_file;		/* -a */
	int apop_only;			/* -A */
	int secure;			/* -S: the connection is under TLS */
	int plaintext_needs_tls;	/* -P */
	int timeout;			/* -t */
	int login_timeout;		/* -L */
	long login_delay;		/* -l: LOGIN-DELAY seconds, or -1 */
	long expire;			/* -e: EXPIRE days, or -1; 0 deletes
					 * RETR'd */
	int no_top;			/* -T */
	int one_session;		/* -1: [IN-USE] for a second one */
	int no_nuls;			/* -W outlook-no-nuls */
	int add_eoh;			/* -W oe-ns-eoh */
	const char *vusers_file;	/* -v: only its users log in */
	const char *vusers_account;	/* -U: the account they map to */
	struct uidl_scheme ids;		/* -i: how unique-ids are made */
	const char *list_mailbox;	/* -M: print its UIDL listing, exit */
};

extern struct options opt;

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
	/* session.c: the state, the reply being made, what is counted */
	enum state state;
	char reply[512];	/* the text after +OK or -ERR */
	int (*body)(struct session *);	/* a multi-line body after +OK */
	int bad;			/* malformed or unknown commands */
	int commands;			/* commands read before login */
	const char *peer;		/* the client's address, for logs */
	/* authorization.c: AUTHORIZATION */
	char user[MAX_USER + 1];	/* from USER; "" before it */
	int user_ok;			/* the name could be a user's */
	int utf8;			/* UTF8 given: names and passwords
					 * are UTF-8, SASLprep'd */
	/* root.c: the authority and the login, as root where we are */
	char timestamp[128];		/* APOP, "" when not offered */
	char challenge[128];		/* CRAM-MD5, "" when not offered */
	int failures[2];		/* by what they guessed at: the
					 * password, the secrets file */
	char vmailbox[MAX_SECRET_LINE + 1];	/* the virtual user's mailbox
						 * template, "" for -m's */
	struct auth_user who;		/* who the login became */
	/* transaction.c: TRANSACTION */
	struct maildrop md;
	struct message *msg;		/* RETR's or TOP's message */
	long long lines;		/* TOP's count, -1 for RETR */
	struct counter top, retr, del;
	unsigned long long octets;	/* of every message at login */
	int lock;			/* the session lock (-1), or -1 */
};

/* A session in AUTHORIZATION for the client at peer, nothing read yet. */
void session_init(struct session *s, const char *peer);

/* Runs the session, from the greeting when greet is set, until QUIT, a
 * closing reply, EOF or a timeout. Returns the exit status: 0 after QUIT,
 * else 1. */
int session_run(struct session *s, int greet);

/* Sets the reply text from fmt. Returns r. */
enum result reply(struct session *s, enum result r, const char *fmt, ...);

/* A malformed command: counted as bad, text the reply. Returns P_ERR. */
enum result bad_input(struct session *s, const char *text);

/* A line did not come in time (the login deadline, or -t): sets the closing
 * reply and *why (unless NULL) for the log. Returns P_CLOSE. */
enum result time_up(struct session *s, const char **why);

/* Writes +OK or -ERR, the reply text, CRLF, and after +OK any body with its
 * final dot. Returns r, or P_CLOSE when the client can't be written to. */
enum result respond(struct session *s, enum result r);

/* Whether a password may cross this connection in the clear (-P, -S). */
int plaintext_allowed(void);

#endif
