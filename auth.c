/*
 * Authentication through Linux-PAM or an APOP secrets file, and the drop to
 * the user's identity. Secrets are wiped as soon as they have been used.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <md5.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "auth.h"

struct conv_data {
	const char *user;
	const char *password;
};

/*
 * Answers PAM's prompts: the password to a hidden prompt, the user name to
 * an echoed one (PAM knows the user already, so that one rarely comes).
 */
static int conversation(int n, const struct pam_message **msg,
    struct pam_response **resp, void *appdata)
{
	struct conv_data *d = appdata;
	struct pam_response *r;
	int i;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if (!(r = calloc(n, sizeof(*r))))
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			r[i].resp = strdup(d->password);
			break;
		case PAM_PROMPT_ECHO_ON:
			r[i].resp = strdup(d->user);
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			continue;
		default:
			goto fail;
		}
		if (!r[i].resp)
			goto fail;
	}
	*resp = r;
	return PAM_SUCCESS;

fail:
	for (i = 0; i < n; i++)
		if (r[i].resp) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	free(r);
	return PAM_CONV_ERR;
}

/*
 * Stands in for Linux-PAM's failure delay (PAM_FAIL_DELAY), which would
 * otherwise sleep a random time after a failure. Its length is seeded with the
 * second the run began and comes only where a module asked for it (pam_unix
 * does, pam_acct_mgmt's failures do not), so two runs in the same second tell
 * a known user from an unknown one, or a disabled account's right password
 * from a wrong one. The authority answers every failure at one fixed time
 * after the credential arrived instead.
 */
static void no_fail_delay(int status, unsigned usec, void *appdata)
{
	(void)status;
	(void)usec;
	(void)appdata;
}

/*
 * Wipes every copy of user's password hash left in the heap: the buffers of
 * getspnam and pam_modutil_getspnam that pam_unix read it into, which are
 * freed (or kept for the next call) without being cleared, and would stay
 * in the session's memory. The hash is looked up once more into a buffer of
 * ours, searched for in [heap], and wiped there and here.
 */
static void wipe_hash(const char *user)
{
	char buf[MAX_SECRET_LINE * 2], line[256], *p, *at;
	struct spwd sp, *res = NULL;
	unsigned long lo, hi;
	size_t len;
	FILE *maps;

	if (geteuid() != 0 || getspnam_r(user, &sp, buf, sizeof(buf), &res) ||
	    !res || !sp.sp_pwdp || (len = strlen(sp.sp_pwdp)) < 8)
		goto done;
	if (!(maps = fopen("/proc/self/maps", "re")))
		goto done;
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "[heap]") &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			break;
		else
			lo = hi = 0;
	fclose(maps);
	for (p = (char *)lo; hi > lo && p < (char *)hi &&
	    (at = memmem(p, (char *)hi - p, sp.sp_pwdp, len)); p = at + len)
		if (at < buf || at >= buf + sizeof(buf))
			explicit_bzero(at, len);
done:
	explicit_bzero(buf, sizeof(buf));
}

int auth_pam(const char *service, char *user, const char *password,
    const char *rhost)
{
	struct conv_data d = { user, password };
	struct pam_conv conv = { conversation, &d };
	pam_handle_t *pamh;
	const void *item;
	int status;

	/* What PAM frees is cleared as it goes: the stdio buffer that held
	 * the shadow file's lines, hashes of other users among them. */
	mallopt(M_PERTURB, 0xa5);
	status = pam_start(service, user, &conv, &pamh);
	if (status != PAM_SUCCESS) {
		syslog(LOG_ERR, "pam_start(%s): %s", service,
		    pam_strerror(NULL, status));
		mallopt(M_PERTURB, 0);
		return -1;
	}
	status = pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_fail_delay);
	if (status == PAM_SUCCESS && rhost)
		status = pam_set_item(pamh, PAM_RHOST, rhost);
	if (status == PAM_SUCCESS)
		status = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	if (status == PAM_SUCCESS)
		status = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	if (status == PAM_SUCCESS &&
	    pam_get_item(pamh, PAM_USER, &item) == PAM_SUCCESS && item) {
		if (strlen(item) > MAX_USER)
			status = PAM_USER_UNKNOWN;
		else
			strcpy(user, item);
	}
	if (status != PAM_SUCCESS)
		syslog(LOG_NOTICE, "PAM (%s): %s", service,
		    pam_strerror(pamh, status));
	pam_end(pamh, status);
	wipe_hash(user);
	mallopt(M_PERTURB, 0);
	return status == PAM_SUCCESS ? 0 : -1;
}

/*
 * Reads one line of f into line (size bytes) without its LF. Returns 1 for a
 * line, 0 at the end of the file, or -1 for a line of size - 1 octets or
 * more, or holding a NUL byte, which is read to its end and dropped.
 */
static int secret_line(FILE *f, char *line, size_t size, size_t *len)
{
	size_t n = 0;
	int c, bad = 0;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0' || n + 2 >= size)
			bad = 1;
		else
			line[n++] = c;
	}
	if (c == EOF && n == 0 && !bad)
		return 0;
	line[n] = '\0';
	*len = n;
	return bad ? -1 : 1;
}

/*
 * Finds user's secret in the secrets file. The file must be a regular file
 * owned by root or by us, with no access for group or others. Returns 1 with
 * the secret in buf, 0 when the user has none, or -1 when the file is
 * refused. Every line read is wiped.
 */
static int find_secret(const char *file, const char *user, char *buf,
    size_t size)
{
	char line[MAX_SECRET_LINE + 1], iobuf[BUFSIZ];
	size_t len, ulen = strlen(user);
	struct stat st;
	FILE *f;
	int fd, r, found = 0, lineno = 0;

	fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		syslog(LOG_ERR, "%s: %m", file);
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & 077)) {
		syslog(LOG_ERR, "%s: refused: it must be a regular file "
		    "owned by root or uid %lu, mode 600 or less",
		    file, (unsigned long)geteuid());
		close(fd);
		return -1;
	}
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return -1;
	}
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));	/* ours, to wipe */
	while (!found && (r = secret_line(f, line, sizeof(line), &len))) {
		lineno++;
		if (r < 0) {
			syslog(LOG_WARNING, "%s:%d: line too long or holding "
			    "a NUL byte, ignored", file, lineno);
			continue;
		}
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (!strncmp(line, user, ulen) && line[ulen] == ':' &&
		    len - ulen - 1 < size) {
			strcpy(buf, line + ulen + 1);
			found = 1;
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	explicit_bzero(iobuf, sizeof(iobuf));
	return found;
}

int auth_file_entry(const char *file, const char *user, char *buf,
    size_t size)
{
	return find_secret(file, user, buf, size);
}

int auth_has_secret(const char *file, const char *user)
{
	char secret[MAX_SECRET_LINE + 1];
	int found = find_secret(file, user, secret, sizeof(secret));

	explicit_bzero(secret, sizeof(secret));
	return found;
}

int auth_apop(const char *file, const char *user, const char *timestamp,
    const char *digest)
{
	static const char hex[] = "0123456789abcdef";
	char secret[MAX_SECRET_LINE + 1];
	unsigned char md[MD5_DIGEST_LENGTH];
	unsigned char diff = 0;
	MD5_CTX ctx;
	int found, i;

	found = find_secret(file, user, secret, sizeof(secret));
	if (found != 1)		/* the same work for a user with no secret */
		strcpy(secret, "no secret for this user");
	MD5Init(&ctx);
	MD5Update(&ctx, (const uint8_t *)timestamp, strlen(timestamp));
	MD5Update(&ctx, (const uint8_t *)secret, strlen(secret));
	MD5Final(md, &ctx);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(&ctx, sizeof(ctx));
	if (strlen(digest) != 2 * MD5_DIGEST_LENGTH ||
	    strspn(digest, "0123456789abcdefABCDEF") != 2 * MD5_DIGEST_LENGTH)
		diff = 1;	/* only hex: 0x10 | 0x20 must not pass for '0' */
	else
		for (i = 0; i < MD5_DIGEST_LENGTH; i++) {
			diff |= (digest[2 * i] | 0x20) ^ hex[md[i] >> 4];
			diff |= (digest[2 * i + 1] | 0x20) ^ hex[md[i] & 15];
		}
	explicit_bzero(md, sizeof(md));
	if (found != 1) {
		if (found == 0)
			syslog(LOG_NOTICE, "APOP: no secret for this user");
		return -1;
	}
	if (diff)
		syslog(LOG_NOTICE, "APOP: wrong digest");
	return diff ? -1 : 0;
}

int auth_cram(const char *file, const char *user, const char *challenge,
    const char *digest)
{
	static const char hex[] = "0123456789abcdef";
	char secret[MAX_SECRET_LINE + 1], want[2 * MD5_DIGEST_SIZE], got[2 *
	    MD5_DIGEST_SIZE];
	uint8_t md[MD5_DIGEST_SIZE];
	struct hmac_md5_ctx ctx;
	int found, i, same;

	found = find_secret(file, user, secret, sizeof(secret));
	if (found != 1)		/* the same work for a user with no secret */
		strcpy(secret, "no secret for this user");
	hmac_md5_set_key(&ctx, strlen(secret), (const uint8_t *)secret);
	hmac_md5_update(&ctx, strlen(challenge), (const uint8_t *)challenge);
	hmac_md5_digest(&ctx, sizeof(md), md);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(&ctx, sizeof(ctx));
	for (i = 0; i < MD5_DIGEST_SIZE; i++) {
		want[2 * i] = hex[md[i] >> 4];
		want[2 * i + 1] = hex[md[i] & 15];
	}
	explicit_bzero(md, sizeof(md));
	/* Only hex digits, lowered: 0x10 | 0x20 must not pass for '0'. */
	memset(got, 0, sizeof(got));
	if (strlen(digest) == sizeof(got) &&
	    strspn(digest, "0123456789abcdefABCDEF") == sizeof(got))
		for (i = 0; i < (int)sizeof(got); i++)
			got[i] = digest[i] | 0x20;
	same = memeql_sec(want, got, sizeof(got));
	explicit_bzero(want, sizeof(want));
	if (found != 1) {
		if (found == 0)
			syslog(LOG_NOTICE, "CRAM-MD5: no secret for this user");
		return -1;
	}
	if (!same)
		syslog(LOG_NOTICE, "CRAM-MD5: wrong digest");
	return same ? 0 : -1;
}

/* Fills u with the user's name, uid and home. */
static void describe(struct auth_user *u, const char *name, uid_t uid,
    const char *home)
{
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->uid = uid;
	snprintf(u->home, sizeof(u->home), "%s", home ? home : "/");
}

int auth_may_serve(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (!(pw = getpwnam(user))) {
		syslog(LOG_ERR, "%s: not in the password database", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		syslog(LOG_ERR, "%s: refused: uid 0 is never served", user);
		return -1;
	}
	return 0;
}

int auth_known(const char *user)
{
	return geteuid() != 0 || getpwnam(user) != NULL;
}

int auth_virtual_account(const char *account)
{
	struct passwd *pw;

	if (geteuid() == 0) {
		if (!account) {
			syslog(LOG_ERR, "virtual users (-v) need a system "
			    "account to map to (-U) when started as root");
			return -1;
		}
		return auth_may_serve(account);
	}
	if (account && (!(pw = getpwnam(account)) ||
	    pw->pw_uid != geteuid())) {
		syslog(LOG_ERR, "-U %s: not started as root, so virtual users "
		    "can only be served as ourselves, uid %lu", account,
		    (unsigned long)geteuid());
		return -1;
	}
	return 0;
}

int auth_lookup(const char *account, const char *name, struct auth_user *u)
{
	struct passwd *pw;
	const char *user = name ? name : account;

	memset(u, 0, sizeof(*u));
	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		describe(u, user, geteuid(), pw ? pw->pw_dir : getenv("HOME"));
		u->gid = getegid();
		return 0;
	}
	if (!account || !(pw = getpwnam(account))) {
		syslog(LOG_ERR, "%s: authenticated, but not in the password "
		    "database", account ? account : user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		syslog(LOG_ERR, "%s: refused: uid 0 is never served", account);
		return -1;
	}
	if (snprintf(u->account, sizeof(u->account), "%s", pw->pw_name) >=
	    (int)sizeof(u->account)) {
		syslog(LOG_ERR, "%s: account name too long", account);
		return -1;
	}
	describe(u, name ? name : pw->pw_name, pw->pw_uid, pw->pw_dir);
	u->gid = pw->pw_gid;
	return 0;
}

void auth_drop(const struct auth_user *u)
{
	if (geteuid() != 0) {
		syslog(LOG_INFO, "not started as root: serving %s from files "
		    "of uid %lu only", u->name, (unsigned long)u->uid);
		return;
	}
	if (!u->account[0] || u->uid == 0 || initgroups(u->account, u->gid) ||
	    setgid(u->gid) || setuid(u->uid)) {
		syslog(LOG_CRIT, "%s: cannot drop privileges: %m", u->name);
		_exit(1);	/* half-changed identity: no way back */
	}
	if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid ||
	    getegid() != u->gid || setuid(0) == 0) {
		syslog(LOG_CRIT, "%s: privileges not dropped", u->name);
		_exit(1);
	}
}
