/*
 * Linked into fuzz-command in place of the handler's auth.o and vusers.o:
 * no PAM, no secrets file, no change of identity. Each stub checks that it
 * is handed only what the README's Design promises: user names that
 * user_name_ok() accepts, passwords of at most MAX_PASS octets, the
 * options' own files.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../auth.h"
#include "../params.h"
#include "../session.h"
#include "../text.h"
#include "../vusers.h"
#include "fuzz-command.h"

static const char *const users[] = {
	"alice", "bob", "carol", "dave", "erin", "nobody", NULL
};

static int known(const char *user)
{
	int i;

	for (i = 0; users[i]; i++)
		if (!strcmp(user, users[i]))
			return 1;
	return 0;
}

static void check_user(const char *user)
{
	CHECK(user != NULL && strlen(user) <= MAX_USER);
	CHECK(user_name_ok(user));
}

int auth_pam(const char *service, char *user, const char *password,
    const char *rhost)
{
	CHECK(service == opt.pam_service);
	check_user(user);
	CHECK(password != NULL && strlen(password) <= MAX_PASS);
	CHECK(rhost == NULL || !strcmp(rhost, "192.0.2.7"));
	if (!strcasecmp(user, "alice") && strcmp(user, "alice")) {
		/* PAM may settle on another spelling of the name. */
		strcpy(user, "alice");
	}
	return known(user) && !strcmp(password, "secret") ? 0 : -1;
}

int auth_apop(const char *file, const char *user, const char *timestamp,
    const char *digest)
{
	CHECK(file == opt.apop_file && file != NULL);
	check_user(user);
	CHECK(timestamp != NULL && timestamp[0] == '<');
	CHECK(digest != NULL && !strchr(digest, ' '));
	return known(user) &&
	    !strcasecmp(digest, "c4c9334bac560ecc979e58001b3e22fb") ? 0 : -1;
}

int auth_cram(const char *file, const char *user, const char *challenge,
    const char *digest)
{
	CHECK(file == opt.apop_file && file != NULL);
	check_user(user);
	CHECK(challenge != NULL && challenge[0] == '<');
	CHECK(digest != NULL);
	return known(user) &&
	    !strcasecmp(digest, "b913a602c7eda7a495b4e6e7334d3890") ? 0 : -1;
}

int auth_has_secret(const char *file, const char *user)
{
	CHECK(file == opt.apop_file && file != NULL);
	CHECK(user != NULL && user[0] && strlen(user) <= MAX_USER);
	if (!strcmp(user, "carol"))
		return -1;	/* as if the secrets file were refused */
	return !strcmp(user, "alice");
}

int auth_known(const char *user)
{
	CHECK(user != NULL && user[0] && strlen(user) <= MAX_USER);
	return strcmp(user, "nobody") != 0;
}

int auth_may_serve(const char *user)
{
	check_user(user);
	return strcmp(user, "nobody") ? 0 : -1;
}

int auth_lookup(const char *account, const char *name, struct auth_user *u)
{
	CHECK(name == NULL);	/* no virtual users here */
	check_user(account);
	if (!strcmp(account, "nobody"))
		return -1;
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", account);
	u->uid = geteuid();
	snprintf(u->home, sizeof(u->home), "%s", fuzz_home);
	return 0;
}

void auth_drop(const struct auth_user *u)
{
	CHECK(u->uid == geteuid());
}

/* Virtual users (-v): the harness never sets -v, so these may not be
 * reached; the -H hash and the -U check are main()'s, which is not linked. */
int vusers_check(const char *file, const char *user, const char *password,
    char *tmpl, size_t size)
{
	(void)file, (void)user, (void)password, (void)tmpl, (void)size;
	CHECK(0);
	return -1;
}

int auth_file_entry(const char *file, const char *user, char *buf,
    size_t size)
{
	(void)file, (void)user, (void)buf, (void)size;
	CHECK(0);
	return -1;
}
