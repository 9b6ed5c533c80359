/*
 * Virtual users: the hashes in the -v file, checked with libxcrypt's crypt_r
 * after crypt_checksalt has accepted their method; and -H, which makes a new
 * yescrypt hash. The file itself is found and checked (owner, mode, no link)
 * by auth_file_entry, as the APOP secrets file is.
 */
#include <crypt.h>
#include <nettle/memops.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "auth.h"
#include "params.h"
#include "vusers.h"

/* The setting a user with no entry is checked against: yescrypt at the
 * default cost, as -H makes, drawn once per process. NULL if none can be. */
static const char *dummy_setting(void)
{
	static char setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (!setting[0] && !crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    sizeof(setting))) {
		syslog(LOG_ERR, "crypt_gensalt_rn: %m");
		setting[0] = '\0';
		return NULL;
	}
	return setting;
}

/* Why crypt_checksalt refused a hash, for the log. */
static const char *salt_problem(int r)
{
	switch (r) {
	case CRYPT_SALT_INVALID:
		return "not a hash libxcrypt knows (or a locked entry)";
	case CRYPT_SALT_METHOD_DISABLED:
		return "method disabled";
	case CRYPT_SALT_METHOD_LEGACY:
		return "legacy method (DES, MD5, ...): make a new hash with -H";
	case CRYPT_SALT_TOO_CHEAP:
		return "cost too low";
	default:
		return "unknown result";
	}
}

int vusers_check(const char *file, const char *user, const char *password,
    char *tmpl, size_t size)
{
	char entry[MAX_SECRET_LINE + 1], *hash = entry, *rest = NULL;
	struct crypt_data *cd;
	const char *setting, *got;
	int found, r, ok = 0;

	tmpl[0] = '\0';
	found = auth_file_entry(file, user, entry, sizeof(entry));
	if (found < 0)
		return -1;	/* refused, logged; no user gets in */
	if (found) {
		if ((rest = strchr(entry, ':')))
			*rest++ = '\0';
		if ((r = crypt_checksalt(hash)) != CRYPT_SALT_OK) {
			syslog(LOG_ERR, "%s: %s: hash refused by "
			    "crypt_checksalt: %s", file, user,
			    salt_problem(r));
			found = -1;
		} else if (rest && strlen(rest) >= size) {
			syslog(LOG_ERR, "%s: %s: mailbox template too long",
			    file, user);
			found = -1;
		}
	}
	/* The same work whether or not the user is known. */
	setting = found == 1 ? hash : dummy_setting();
	if (!setting || !(cd = calloc(1, sizeof(*cd)))) {
		explicit_bzero(entry, sizeof(entry));
		syslog(LOG_ERR, "virtual users: out of memory");
		return -1;
	}
	got = crypt_r(password, setting, cd);
	if (found == 1 && got && got[0] != '*' && strlen(got) == strlen(hash))
		ok = memeql_sec(got, hash, strlen(hash));
	if (ok && rest)
		strcpy(tmpl, rest);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	explicit_bzero(entry, sizeof(entry));
	if (found == 0)
		syslog(LOG_NOTICE, "virtual users: no such user");
	else if (found == 1 && !ok)
		syslog(LOG_NOTICE, "virtual users: wrong password");
	return ok ? 1 : found == 0 ? 0 : -1;
}

int vusers_hash(FILE *in, FILE *out)
{
	char pass[MAX_PASS + 2], setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	const char *hash, *why = NULL;
	size_t len = 0;

	setvbuf(in, NULL, _IONBF, 0);	/* no copy left in a stdio buffer */
	if (!fgets(pass, sizeof(pass), in))
		why = "no password on standard input";
	else if ((len = strlen(pass)) && pass[len - 1] == '\n') {
		pass[--len] = '\0';
		if (len && pass[len - 1] == '\r')
			pass[--len] = '\0';
	} else if (!feof(in))
		why = "password too long";
	if (!why && (!len || len > MAX_PASS || strlen(pass) != len))
		why = len ? "password too long, or with a NUL byte" :
		    "empty password";
	if (!why && !crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    sizeof(setting)))
		why = "crypt_gensalt_rn failed";
	if (!why && !(cd = calloc(1, sizeof(*cd))))
		why = "out of memory";
	if (!why) {
		hash = crypt_r(pass, setting, cd);
		if (!hash || hash[0] != '$')
			why = "crypt_r failed";
		else if (fprintf(out, "%s\n", hash) < 0 || fflush(out))
			why = "cannot write the hash";
	}
	explicit_bzero(pass, sizeof(pass));
	if (cd) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	if (why) {
		fprintf(stderr, POP3_NAME " -H: %s\n", why);
		return -1;
	}
	return 0;
}
