/*
 * Authentication (PAM, APOP, the virtual users' file checks) and the one
 * place that changes identity.
 */
#ifndef POP3_AUTH_H
#define POP3_AUTH_H

#include <limits.h>
#include <sys/types.h>

#include "params.h"

struct auth_user {
	char name[MAX_USER + 1];
	uid_t uid;
	char home[PATH_MAX];
	gid_t gid;
	char account[MAX_USER + 1];	/* as root: the one to become */
};

/* Runs pam_authenticate and pam_acct_mgmt for user with password under the
 * PAM service, with PAM_RHOST set to rhost (or left unset when NULL) and
 * PAM's own failure delay suppressed (the caller times failures). Returns
 * 0 and rewrites user (MAX_USER + 1 bytes) to the name PAM settled on, or -1
 * with the reason logged. */
int auth_pam(const char *service, char *user, const char *password,
    const char *rhost);

/* Checks an APOP digest (32 hex digits, any case) against
 * MD5(timestamp secret) with user's secret from the secrets file, in constant
 * time. Returns 0, or -1 with the reason logged; the secret is wiped. */
int auth_apop(const char *file, const char *user, const char *timestamp,
    const char *digest);

/* Checks a CRAM-MD5 digest (32 hex digits, any case) against
 * HMAC-MD5(secret, challenge) with user's secret from the secrets file, in
 * constant time (RFC 2195). Returns 0, or -1 with the reason logged; the
 * secret is wiped. */
int auth_cram(const char *file, const char *user, const char *challenge,
    const char *digest);

/* Whether the secrets file holds a secret for user: 1, 0, or -1 when the file
 * is refused (reason logged). */
int auth_has_secret(const char *file, const char *user);

/* Finds user's line ("user:rest") in a secrets or virtual users file, which
 * must be a regular file owned by root or by us with no access for group or
 * others (opened without following a link). Returns 1 with rest in buf (size
 * bytes), 0 when user has no line, or -1 when the file is refused (reason
 * logged). Every line read is wiped. */
int auth_file_entry(const char *file, const char *user, char *buf,
    size_t size);

/* Whether user names an account: as root, one in the password database
 * (uid 0 too); as anyone else, always, since PAM may know names the
 * database does not. Logs nothing. */
int auth_known(const char *user);

/* Whether account (-U, or NULL when not given) can stand for virtual users:
 * as root it must be given, and auth_may_serve it; as anyone else, it must
 * be ourselves. Returns 0, or -1 with the reason logged. */
int auth_virtual_account(const char *account);

/* Whether user could be served: as root, an account in the password
 * database with a uid other than 0; as anyone else, always. Returns 0, or -1
 * with the reason logged. */
int auth_may_serve(const char *user);

/* Who a login becomes: fills *u with name (account's own when name is NULL,
 * a virtual user's otherwise) and account's uid, gid and home; not root, we
 * stay ourselves, named name or account. Changes nothing, so that what the
 * maildrop needs of root (dotlock.c) can be done before auth_drop. Returns
 * 0, or -1 with the reason logged (no such account, or uid 0). */
int auth_lookup(const char *account, const char *name, struct auth_user *u);

/* Becomes u, as auth_lookup filled it, for the rest of the session. As root:
 * initgroups, setgid and setuid, each checked, and never uid 0; a failure
 * exits, since a half-changed identity has no way back. As anyone else:
 * stays who we are and serves only our own files. */
void auth_drop(const struct auth_user *u);

#endif
