/*
 * Text from the client: strict numbers, user names we would look up, and
 * strings made safe to log. Pure functions on buffers.
 */
#ifndef POP3_TEXT_H
#define POP3_TEXT_H

#include <stddef.h>

/* Reads a strict number: decimal digits only, at most max, no sign, space or
 * trailing junk. Returns 0 with *value set, or -1 (arg NULL or empty too),
 * leaving *value alone. */
int parse_number(const char *arg, unsigned long long max,
    unsigned long long *value);

/* Whether name is one we would look up: 1 to MAX_USER octets, not "." or
 * "..", without control characters, spaces, DEL or slashes. 1 or 0. */
int user_name_ok(const char *name);

/* Copies s into buf (size bytes, NUL-terminated, cut at a character) with
 * each control character (C0, DEL, C1) and each byte that is not valid UTF-8
 * as '?'. Returns buf. */
const char *printable(const char *s, char *buf, size_t size);

#endif
