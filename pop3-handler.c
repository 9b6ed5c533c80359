/*
 * pop3-handler: one POP3 session (RFC 1939, RFC 2449, RFC 3206) on stdin and
 * stdout. This file starts it: the options, the client's address, the
 * greeting's timestamp and the process's hardening, then the session, in
 * the one process or privilege-separated (root.c); README's "Source map"
 * says where the rest is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <pwd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "client.h"
#include "dotlock.h"
#include "maildrop.h"
#include "params.h"
#include "proxy.h"
#include "root.h"
#include "session.h"
#include "text.h"
#include "timing.h"
#include "transaction.h"
#include "vusers.h"

static const char *proxies;		/* -X: who may send a PROXY header */
static int logopt = LOG_PID | LOG_NDELAY;	/* -d adds LOG_PERROR */

/* The address of the client: the socket's peer, or what the launcher says. */
static const char *peer_address(void)
{
	static char buf[INET6_ADDRSTRLEN + 1];
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	const char *env;

	if (!getpeername(STDIN_FILENO, (struct sockaddr *)&sa, &len)) {
		if (sa.ss_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr,
		    buf, sizeof(buf)))
			return buf;
		if (sa.ss_family == AF_INET6 &&
		    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr,
		    buf, sizeof(buf)))
			return buf;
	}
	if ((env = getenv("TCPREMOTEIP")) || (env = getenv("REMOTE_HOST"))) {
		char *p;

		snprintf(buf, sizeof(buf), "%s", env);
		for (p = buf; *p; p++)
			if (!strchr("0123456789abcdefABCDEF.:-"
			    "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ", *p))
				*p = '?';
		if (buf[0])
			return buf;
	}
	return "local";
}

static void random_bytes(void *buf, size_t len)
{
	if (getrandom(buf, len, 0) != (ssize_t)len) {
		syslog(LOG_CRIT, "getrandom: %m");
		exit(1);
	}
}

/*
 * A msg-id style string, unique and unpredictable: the APOP timestamp and the
 * CRAM-MD5 challenge, each made once per session by the root process.
 */
static void make_timestamp(char *buf, size_t size)
{
	char host[256];
	uint64_t r;

	if (gethostname(host, sizeof(host)) || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	random_bytes(&r, sizeof(r));
	snprintf(buf, size, "<%ld.%lld.%016" PRIx64
	    "@%s>", (long)getpid(), (long long)time(NULL), r, host);
}

/* -W: a comma-separated list of Dovecot's pop3_workarounds names. */
static int workarounds(char *list)
{
	char *w, *p;

	for (w = strtok_r(list, ",", &p); w; w = strtok_r(NULL, ",", &p))
		if (!strcmp(w, "outlook-no-nuls"))
			opt.no_nuls = 1;
		else if (!strcmp(w, "oe-ns-eoh"))
			opt.add_eoh = 1;
		else
			return -1;
	return 0;
}

/* -i: native, xuidl (the same ids), popa3d, dovecot[:format], uw.
 * Returns 0, or -1 for a name or format we do not know. */
static int uidl_scheme(const char *arg, struct uidl_scheme *ids)
{
	ids->format = NULL;
	if (!strcmp(arg, "native") || !strcmp(arg, "xuidl"))
		ids->kind = UIDL_NATIVE;
	else if (!strcmp(arg, "popa3d"))
		ids->kind = UIDL_POPA3D;
	else if (!strcmp(arg, "uw"))
		ids->kind = UIDL_UW;
	else if (!strcmp(arg, "dovecot"))
		ids->kind = UIDL_DOVECOT;
	else if (!strncmp(arg, "dovecot:", 8) && uidl_format_ok(arg + 8)) {
		ids->kind = UIDL_DOVECOT;
		ids->format = arg + 8;
	} else
		return -1;
	return 0;
}

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: " POP3_NAME " [-1dAPSTV] [-s service] "
	    "[-m mailbox-template] [-D state-template] [-a apop-secrets] "
	    "[-t timeout] [-l login-delay] [-e expire-days] "
	    "[-L login-timeout] [-F shared|local] "
	    "[-W workaround,...] [-X proxy-address,...] "
	    "[-v virtual-users [-U account]] "
	    "[-i native|xuidl|popa3d|dovecot[:format]|uw]\n"
	    "       " POP3_NAME " -H    (a yescrypt hash of the password on "
	    "stdin)\n"
	    "       " POP3_NAME " [-i scheme] -M mailbox    (its UIDL listing)"
	    "\n");
	exit(2);
}

/* An option's value that is wrong: says which and what it takes, then the
 * usage. */
static void __attribute__((noreturn, format(printf, 3, 4)))
bad_value(int c, const char *arg, const char *want, ...)
{
	va_list ap;

	fprintf(stderr, POP3_NAME ": -%c %s: ", c, arg);
	va_start(ap, want);
	vfprintf(stderr, want, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage();
}

/* The number optarg of -c, from min to max (in units), or a usage error. */
static unsigned long long number(int c, unsigned long long min,
    unsigned long long max, const char *units)
{
	unsigned long long v;

	if (parse_number(optarg, max, &v) || v < min)
		bad_value(c, optarg, "%s, %llu to %llu", units, min, max);
	return v;
}

/*
 * No core dump from the start, and as root not dumpable either (no ptrace
 * but by CAP_SYS_PTRACE, /proc/PID's files root's): the root parent holds
 * passwords, APOP secrets and what PAM read. The kernel makes a process that
 * changed uid undumpable anyway, but not one that has not changed it yet.
 * Started as a user, we hold only what is the user's, and stay traceable
 * by the user (strace). Returns 0, or -1 with the reason logged.
 */
static int no_dumps(void)
{
	struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) ||
	    (geteuid() == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))) {
		syslog(LOG_CRIT, "no core dumps: %m");
		return -1;
	}
	return 0;
}

/*
 * Reads the options into opt (and proxies). Returns 0 to go on, 1 for -H
 * (a hash of the password on stdin), or 2 after -V; usage() exits for a bad
 * one.
 */
static int options(int argc, char **argv)
{
	int c, hash = 0;

	while ((c = getopt(argc, argv,
	    "1a:AdD:e:F:Hi:l:L:M:s:m:Pt:STU:v:VW:X:")) != -1)
		switch (c) {
		case 'i':
			if (uidl_scheme(optarg, &opt.ids))
				bad_value(c, optarg, "native, xuidl, popa3d, "
				    "dovecot, dovecot:FORMAT (one we can "
				    "print as Dovecot would) or uw");
			break;
		case 'M':
			opt.list_mailbox = optarg;
			break;
		case 'a':
			opt.apop_file = optarg;
			break;
		case 'A':
			opt.apop_only = 1;
			break;
		case 'H':
			hash = 1;
			break;
		case 'F':
			if (!strcmp(optarg, "shared"))
				dotlock_set_share(DOTLOCK_SHARED);
			else if (!strcmp(optarg, "local"))
				dotlock_set_share(DOTLOCK_LOCAL);
			else
				bad_value(c, optarg, "shared or local");
			break;
		case 'v':
			opt.vusers_file = optarg;
			break;
		case 'U':
			opt.vusers_account = optarg;
			break;
		case '1':
			opt.one_session = 1;
			break;
		case 'e':
			opt.expire = number(c, 0, 1000000, "days");
			break;
		case 'l':
			opt.login_delay = number(c, 0, 1000000, "seconds");
			break;
		case 'L':
			opt.login_timeout = number(c, 1, MAX_LOGIN_TIMEOUT,
			    "seconds");
			break;
		case 'T':
			opt.no_top = 1;
			break;
		case 'W':
			if (workarounds(optarg))
				bad_value(c, optarg, "outlook-no-nuls, "
				    "oe-ns-eoh, or both with a comma");
			break;
		case 'X':
			if (proxy_trusted(optarg, "127.0.0.1") < 0)
				bad_value(c, optarg, "IPv4 or IPv6 addresses, "
				    "each with an optional /prefix, "
				    "comma-separated");
			proxies = optarg;
			break;
		case 'd':
			logopt |= LOG_PERROR;
			break;
		case 'D':
			opt.state_template = optarg;
			break;
		case 's':
			opt.pam_service = optarg;
			break;
		case 'S':
			opt.secure = 1;
			break;
		case 'P':
			opt.plaintext_needs_tls = 1;
			break;
		case 'm':
			opt.mailbox_template = optarg;
			break;
		case 't':
			opt.timeout = number(c, 1, 86400, "seconds");
			break;
		case 'V':
			puts(POP3_NAME " " POP3_VERSION);
			return 2;
		default:
			usage();
		}
	return hash;
}

/*
 * The options together: -v wants a per-user -D and no -a, -U wants -v, the
 * templates only %u, %h and %%, and no operand is taken. Returns 0, or -1
 * when the usage is wrong (what is wrong said on stderr).
 */
static int options_ok(int argc, char **argv)
{
	const char *why = NULL;

	if (opt.vusers_file && !strcmp(opt.state_template, DEFAULT_STATE))
		opt.state_template = DEFAULT_VSTATE;
	if (optind != argc)
		fprintf(stderr, POP3_NAME ": %s: no operand is taken\n",
		    argv[optind]);
	else if (!template_ok(opt.mailbox_template))
		why = "-m";
	else if (!template_ok(opt.state_template))
		why = "-D";
	else if (!*opt.pam_service)
		fprintf(stderr, POP3_NAME ": -s: the PAM service is empty\n");
	else if (opt.vusers_file && (opt.apop_file ||
	    !template_has_user(opt.state_template)))
		fprintf(stderr, POP3_NAME ": -v takes no -a, and a -D that "
		    "names %%u\n");
	else if (opt.vusers_account && !opt.vusers_file)
		fprintf(stderr, POP3_NAME ": -U is for -v\n");
	else
		return 0;
	if (why)
		fprintf(stderr, POP3_NAME ": %s %s: a template takes only %%u, "
		    "%%h and %%%%\n", why, why[1] == 'm' ?
		    opt.mailbox_template : opt.state_template);
	return -1;
}

/*
 * -M: the UIDL listing of a mailbox file, "n uid" lines, as a session with
 * the same -i would list it, for an admin to compare with the old server's
 * before switching. Started as root, it becomes the file's owner first, as
 * a session becomes the user before it opens the mailbox (auth_lookup and
 * auth_drop: never uid 0). Nothing is written (maildrop_read). Returns the
 * exit status.
 */
static int list_mailbox(const char *path)
{
	struct maildrop md;
	struct auth_user u;
	struct stat st;
	struct passwd *pw;
	const char *err;
	char id[MAX_UIDL + 1], state[PATH_MAX];
	size_t n;

	if (geteuid() == 0) {
		if (lstat(path, &st)) {
			syslog(LOG_ERR, "%s: %m", path);
			return 1;
		}
		if (!(pw = getpwuid(st.st_uid))) {
			syslog(LOG_ERR, "%s: owned by uid %lu, who has no "
			    "account", path, (unsigned long)st.st_uid);
			return 1;
		}
		if (auth_lookup(pw->pw_name, NULL, &u))
			return 1;
		auth_drop(&u);
	} else if (auth_lookup((pw = getpwuid(getuid())) ? pw->pw_name : "",
	    NULL, &u))
		return 1;
	/* The state directory the owner's sessions use (-D, %u the owner),
	 * for the UIDVALIDITY saved there. */
	if (maildrop_read(&md, path, template_expand(opt.state_template, &u,
	    state, sizeof(state)) ? NULL : state, u.uid, &opt.ids, &err)) {
		fprintf(stderr, POP3_NAME ": %s: %s\n", path, err);
		return 1;
	}
	if (md.fd < 0) {
		fprintf(stderr, POP3_NAME ": %s: no such file (a session "
		    "would find an empty maildrop)\n", path);
		maildrop_close(&md);
		return 1;
	}
	for (n = 1; n <= md.visible; n++) {
		maildrop_uidl(&md, maildrop_get(&md, n), id);
		printf("%zu %s\n", n, id);
	}
	maildrop_close(&md);
	return fflush(stdout) || ferror(stdout) ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct session s;
	struct sigaction sa;
	int status, hash;

	if ((hash = options(argc, argv)) == 2)
		return 0;
	if (hash && optind == argc)
		return vusers_hash(stdin, stdout) ? 1 : 0;
	if (options_ok(argc, argv))
		usage();
	if (opt.list_mailbox)
		logopt |= LOG_PERROR;	/* the admin reads why */
	openlog(POP3_NAME, logopt, LOG_MAIL);
	if (no_dumps())
		return 1;
	if (getuid() != geteuid() || getgid() != getegid()) {
		syslog(LOG_CRIT, "refusing to run set-uid or set-gid");
		return 1;
	}
	if (opt.list_mailbox)
		return list_mailbox(opt.list_mailbox);
	if (opt.vusers_file && auth_virtual_account(opt.vusers_account))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);	/* a write error is enough */
	sigaction(SIGXFSZ, &sa, NULL);	/* EFBIG, not death after UPDATE */
	client_open(STDIN_FILENO, STDOUT_FILENO);

	session_init(&s, peer_address());
	if (proxies && proxy_trusted(proxies, s.peer) == 1 &&
	    !(s.peer = client_proxy_header(s.peer)))
		return 1;
	if (opt.apop_file) {
		make_timestamp(s.timestamp, sizeof(s.timestamp));
		make_timestamp(s.challenge, sizeof(s.challenge));
	}
	if (geteuid() == 0)
		status = root_parent(&s);
	else {
		client_set_login_deadline(timing_now_ms() +
		    opt.login_timeout * 1000LL);
		status = session_run(&s, 1);
	}
	if (s.state == TRANSACTION)
		transaction_logout(&s);
	dotlock_done();
	transaction_free(&s);
	return status;
}
