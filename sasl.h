/*
 * SASL (RFC 4422, RFC 5034) message handling for the pre-auth side: base64
 * through nettle, the PLAIN message (RFC 4616), strict UTF-8 and SASLprep
 * (RFC 4013) through libidn. Pure functions on buffers: no I/O, no state.
 */
#ifndef POP3_SASL_H
#define POP3_SASL_H

#include <stddef.h>
#include <sys/types.h>

/* Decodes strict base64 (RFC 4648 alphabet, padded, no spaces; "=" alone or
 * "" is the empty message) into buf (size bytes; a NUL is added after the
 * data). Returns the decoded length, or -1 for bad base64 or a message that
 * does not fit; buf is wiped on failure. */
ssize_t sasl_decode64(const char *text, char *buf, size_t size);

/* Encodes len octets as base64 into buf (size bytes, NUL-terminated).
 * Returns 0, or -1 when it does not fit. */
int sasl_encode64(const void *data, size_t len, char *buf, size_t size);

/* Splits a PLAIN message "authzid NUL authcid NUL passwd" of len octets
 * (NUL-terminated at msg[len]) in place. Returns 0 with the three pointers
 * set, or -1 when there are not exactly two NULs or authcid or passwd is
 * empty. */
int sasl_plain(char *msg, size_t len, char **authzid, char **authcid,
    char **passwd);

/* Prepares the NUL-terminated UTF-8 string s in place with the SASLprep
 * profile of stringprep (queries: unassigned code points allowed), in size
 * bytes. Returns 0, or -1 for bad UTF-8, prohibited output or no room, with s
 * wiped. */
int sasl_prep(char *s, size_t size);

#endif
