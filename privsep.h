/*
 * Privilege separation before login: started as root, the handler forks a
 * child that reads the client as an unprivileged user in an empty chroot.
 * The child sends only credentials up a socket; the root parent checks them
 * and answers with a verdict. After a good one the child hands over the
 * client input it has already read, and exits.
 */
#ifndef POP3_PRIVSEP_H
#define POP3_PRIVSEP_H

#include <sys/types.h>

#include "params.h"

/* What a credential's secret is, and so how it is checked. */
enum method {
	CRED_PASS,	/* USER/PASS: a password */
	CRED_APOP,	/* an APOP digest over the greeting's timestamp */
	CRED_PLAIN,	/* SASL PLAIN: a password */
	CRED_LOGIN,	/* SASL LOGIN: a password */
	CRED_CRAM	/* SASL CRAM-MD5: a digest over the root's challenge */
};

struct credential {
	enum method method;
	char user[MAX_USER + 1];	/* "" when the client's was unusable */
	char secret[MAX_LINE + 1];
};

enum verdict { V_OK = 1, V_FAIL, V_CLOSE };

/* Forks the pre-auth child. In the child: returns 0 with *fd its end of the
 * channel, chrooted to PREAUTH_ROOT and running as PREAUTH_USER (the child
 * exits if any step fails). In the parent: returns the child's pid with *fd
 * the parent's end. Returns -1 (reason logged) if the fork can't be done. */
pid_t privsep_fork(int *fd);

/* Child: sends c up and waits for the verdict. Returns it, or -1 when the
 * parent is gone. */
int privsep_ask(int fd, const struct credential *c);

/* Child, after V_OK: hands over the client input read but not yet used.
 * Returns 0 or -1. */
int privsep_hand_over(int fd, const char *buf, size_t len);

/* Parent: reads one request into c, checking every length. Returns 1, 0 when
 * the child has closed the channel, or -1 for a malformed request. */
int privsep_request(int fd, struct credential *c);

/* Parent: sends the verdict. Returns 0 or -1. */
int privsep_answer(int fd, enum verdict v);

/* Parent, after V_OK: takes the handed-over input into buf (size bytes).
 * Returns its length, or -1. */
ssize_t privsep_take_over(int fd, char *buf, size_t size);

#endif
