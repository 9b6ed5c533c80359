/*
 * Virtual users (-v): a passwd-style file of "user:hash[:mailbox-template]"
 * lines, the hashes checked with libxcrypt. They all map to one system
 * account (-U); that part is auth.c's.
 */
#ifndef POP3_VUSERS_H
#define POP3_VUSERS_H

#include <stddef.h>
#include <stdio.h>

/* Checks user's password against the virtual users file, which must pass
 * auth_file_entry's checks, and whose hash must pass crypt_checksalt. Returns
 * 1 on a match, with the entry's mailbox template (or "" for none) in tmpl
 * (size bytes); 0 when user has no entry; -1 for a wrong password or a
 * refused hash, template or file; the reason is logged unless 1. A user with
 * no entry costs one crypt_r with a dummy yescrypt setting, as one with an
 * entry does. */
int vusers_check(const char *file, const char *user, const char *password,
    char *tmpl, size_t size);

/* -H: reads one password line from in (unbuffered) and writes a new yescrypt
 * hash and a newline to out. Returns 0, or -1 with the reason on stderr; the
 * password is wiped either way. */
int vusers_hash(FILE *in, FILE *out);

#endif
