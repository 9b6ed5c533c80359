/*
 * The TRANSACTION state: entering it once the user is logged in (the
 * session lock, LOGIN-DELAY, the maildrop), its commands, and leaving it.
 * All of it runs as the user. Each handler takes the argument after the
 * keyword (NULL for none), sets the reply text and returns what the
 * dispatcher is to do.
 */
#ifndef POP3_TRANSACTION_H
#define POP3_TRANSACTION_H

#include "session.h"

/* As the user, after a good login by method: takes the session lock (-1),
 * checks LOGIN-DELAY (-l), opens the maildrop at path with its state
 * directory state, and enters TRANSACTION. Returns P_OK with the login's
 * reply, or P_CLOSE with the reason (logged). */
enum result transaction_start(struct session *s, const char *path,
    const char *state, const char *method);

/* Logs the logout, hangs up on the client when the maildrop has tidying to
 * do, tidies and closes it. */
void transaction_logout(struct session *s);

/* Frees what a session held (in either state) and lets the session lock
 * go. */
void transaction_free(struct session *s);

/* QUIT: in TRANSACTION the UPDATE state, the deletions written (P_CLOSE
 * when they could not be). */
enum result cmd_quit(struct session *s, char *arg);

/* STAT: the count and octets of the messages not deleted. */
enum result cmd_stat(struct session *s, char *arg);

/* LIST [n]: one message's size, or every one's as a body. */
enum result cmd_list(struct session *s, char *arg);

/* UIDL [n]: one message's unique-id, or every one's as a body. */
enum result cmd_uidl(struct session *s, char *arg);

/* RETR n: the message as the body; P_CLOSE when the mailbox changed. */
enum result cmd_retr(struct session *s, char *arg);

/* TOP n lines: the headers and lines body lines; P_CLOSE as RETR. */
enum result cmd_top(struct session *s, char *arg);

/* DELE n: marks the message deleted, for QUIT to remove. */
enum result cmd_dele(struct session *s, char *arg);

/* NOOP: +OK. */
enum result cmd_noop(struct session *s, char *arg);

/* RSET: unmarks every deleted message. */
enum result cmd_rset(struct session *s, char *arg);

#endif
