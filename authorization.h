/*
 * The AUTHORIZATION commands: USER, PASS, APOP, AUTH with its SASL
 * mechanisms, UTF8 and LANG. They parse what the client sends and put a
 * credential to the authority (root.c); in the pre-auth child they run
 * unprivileged. Each handler takes the argument after the keyword (NULL for
 * none), sets the reply text and returns what the dispatcher is to do.
 */
#ifndef POP3_AUTHORIZATION_H
#define POP3_AUTHORIZATION_H

#include <stddef.h>

#include "session.h"

/* USER name: remembered for PASS, never refused for the name itself. */
enum result cmd_user(struct session *s, char *arg);

/* PASS password: the password is wiped from arg. */
enum result cmd_pass(struct session *s, char *arg);

/* APOP name digest. */
enum result cmd_apop(struct session *s, char *arg);

/* AUTH [mechanism [initial-response]] (RFC 5034): bare, the mechanisms. */
enum result cmd_auth(struct session *s, char *arg);

/* UTF8 (RFC 6856 §2). */
enum result cmd_utf8(struct session *s, char *arg);

/* LANG [range] (RFC 6856 §3). */
enum result cmd_lang(struct session *s, char *arg);

/* The SASL mechanisms on offer here, space-separated, into buf (size
 * bytes; "" for none). Returns buf. */
char *mechanisms_offered(char *buf, size_t size);

#endif
