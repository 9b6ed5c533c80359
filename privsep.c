/*
 * The pre-auth child and its channel to the root parent. The parent trusts
 * nothing that comes up the channel: every length is checked before a byte
 * is read into a buffer, and a malformed message ends the session.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "privsep.h"

/* The header of a request; the user name and the secret follow. */
struct request {
	uint8_t method;
	uint8_t user_len;
	uint16_t secret_len;
};

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* Reads exactly len bytes: 1, 0 at a clean EOF before the first, -1. */
static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = recv(fd, p + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && done == 0)
			return 0;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 1;
}

/*
 * The child's jail: an empty root directory that only root may write, and
 * the pre-auth user's identity with no supplementary groups. Exits on any
 * failure: a child that is not jailed must not read the client.
 */
static void jail(void)
{
	struct passwd *pw = getpwnam(PREAUTH_USER);
	struct stat st;

	if (!pw) {
		syslog(LOG_WARNING, "no user " PREAUTH_USER " for the pre-auth "
		    "process; using " PREAUTH_FALLBACK " (see README)");
		pw = getpwnam(PREAUTH_FALLBACK);
	}
	if (!pw || pw->pw_uid == 0) {
		syslog(LOG_CRIT, "no unprivileged user for the pre-auth process");
		_exit(1);
	}
	if (mkdir(PREAUTH_ROOT, 0755) && errno != EEXIST) {
		syslog(LOG_CRIT, PREAUTH_ROOT ": %m");
		_exit(1);
	}
	if (lstat(PREAUTH_ROOT, &st) || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022)) {
		syslog(LOG_CRIT, PREAUTH_ROOT ": must be a directory owned by "
		    "root and writable by no one else");
		_exit(1);
	}
	if (chroot(PREAUTH_ROOT) || chdir("/") || setgroups(0, NULL) ||
	    setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		syslog(LOG_CRIT, "pre-auth jail: %m");
		_exit(1);
	}
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid ||
	    getegid() != pw->pw_gid || setuid(0) == 0) {
		syslog(LOG_CRIT, "pre-auth jail: privileges not dropped");
		_exit(1);
	}
}

pid_t privsep_fork(int *fd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		syslog(LOG_ERR, "socketpair: %m");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		syslog(LOG_ERR, "fork: %m");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		jail();
		*fd = sv[1];
		return 0;
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

int privsep_ask(int fd, const struct credential *c)
{
	struct request r;
	uint8_t v;

	r.method = c->method;
	r.user_len = strlen(c->user);
	r.secret_len = strlen(c->secret);
	if (send_all(fd, &r, sizeof(r)) || send_all(fd, c->user, r.user_len) ||
	    send_all(fd, c->secret, r.secret_len) || recv_all(fd, &v, 1) != 1)
		return -1;
	return v;
}

int privsep_hand_over(int fd, const char *buf, size_t len)
{
	uint32_t n = len;

	return send_all(fd, &n, sizeof(n)) || send_all(fd, buf, len) ? -1 : 0;
}

int privsep_request(int fd, struct credential *c)
{
	struct request r;
	int got = recv_all(fd, &r, sizeof(r));

	if (got <= 0)
		return got;
	if (r.method > CRED_CRAM || r.user_len > MAX_USER ||
	    r.secret_len > MAX_LINE ||
	    recv_all(fd, c->user, r.user_len) < 0 ||
	    recv_all(fd, c->secret, r.secret_len) < 0)
		return -1;
	c->method = r.method;
	c->user[r.user_len] = '\0';
	c->secret[r.secret_len] = '\0';
	if (strlen(c->user) != r.user_len || strlen(c->secret) != r.secret_len)
		return -1;	/* a NUL inside: not from our child */
	return 1;
}

int privsep_answer(int fd, enum verdict v)
{
	uint8_t b = v;

	return send_all(fd, &b, 1);
}

ssize_t privsep_take_over(int fd, char *buf, size_t size)
{
	uint32_t n;

	if (recv_all(fd, &n, sizeof(n)) != 1 || n > size ||
	    recv_all(fd, buf, n) < 0)
		return -1;
	return n;
}
