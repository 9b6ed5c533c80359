/*
 * What is done with root's rights, when the handler is started as root: the
 * privilege-separated root parent with its login deadline, the authority
 * that checks every credential, and the login up to the drop to the user.
 * Not started as root, the same code runs as the user in the one process.
 */
#ifndef POP3_ROOT_H
#define POP3_ROOT_H

#include "privsep.h"
#include "session.h"

/* Started as root: forks the pre-auth child for AUTHORIZATION, answers its
 * credentials, and after a good one logs in and runs TRANSACTION here; keeps
 * the login deadline (-L). Returns the session's exit status. */
int root_parent(struct session *s);

/* Puts credential c to the authority: the root parent's, over the channel,
 * in the pre-auth child; else here. Returns a verdict, or -1 when the root
 * parent is gone. */
int root_ask(struct session *s, struct credential *c);

/* In the pre-auth child, after V_OK: hands the client over to the root
 * parent and exits. Elsewhere returns at once. */
void root_hand_over(void);

/* After a good credential for s->user: becomes the user, opens the maildrop
 * and enters TRANSACTION. Returns the reply to the login: P_OK, or P_CLOSE
 * (logged), since the identity may have changed already. */
enum result login(struct session *s, enum method method);

/* Expands a path template for u into buf (size bytes): %u its name, %h its
 * home, %% a percent sign. Returns 0, or -1 when it does not fit. */
int template_expand(const char *tmpl, const struct auth_user *u, char *buf,
    size_t size);

/* Whether a path template uses only %u, %h and %%: 1 or 0. */
int template_ok(const char *tmpl);

/* Whether a template names the user (%u): 1 or 0. */
int template_has_user(const char *tmpl);

#endif
