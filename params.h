/*
 * Every limit and default of pop3-handler, in one place (popa3d's params.h).
 */
#ifndef POP3_PARAMS_H
#define POP3_PARAMS_H

#define POP3_NAME		"pop3-handler"
#define POP3_VERSION		"0.1"

/* Defaults that options override. */
#define DEFAULT_PAM_SERVICE	"pop3"
#define DEFAULT_MAILBOX		"/var/mail/%u"
#define DEFAULT_STATE		"%h/.pop3-handler"	/* the update journal */
/* With virtual users (-v), who share one home: a state directory each. */
#define DEFAULT_VSTATE		"%h/.pop3-handler.%u"
#define DEFAULT_TIMEOUT		600	/* seconds for a whole command line */
/* Seconds from the greeting to a login (-L, at most MAX_LOGIN_TIMEOUT):
 * Dovecot's 3 minutes. RFC 1939's 10-minute autologout is a bound on
 * inactivity, which -t keeps; this one is on the AUTHORIZATION state, where
 * an honest client spends a second or two, and a human at a terminal with
 * three wrong passwords (1 + 2 + 3 s of delays) a minute. */
#define DEFAULT_LOGIN_TIMEOUT	180
#define MAX_LOGIN_TIMEOUT	3600

/* RFC 2449: a command line is at most 255 octets with its CRLF (or LF). */
#define MAX_LINE		255
/* A SASL response line (RFC 5034 bounds commands, not responses): up to
 * 1024 octets with its CRLF, the base64 of 765 octets, more than the longest
 * PLAIN message we accept (two names and a password). */
#define MAX_SASL_LINE		1024

/* The longest user name, password and APOP digest we take. */
#define MAX_USER		64
#define MAX_PASS		200

/* Privilege separation: the user and the empty root of the pre-auth child.
 * Without that user, "nobody" serves (and a warning is logged). */
#define PREAUTH_USER		"pop3-handler"
#define PREAUTH_FALLBACK	"nobody"
#define PREAUTH_ROOT		"/var/empty"

/* Authentication: failures before we hang up, and when each -ERR goes out:
 * FAIL_DELAY_MS times the failures so far (the password's and the secrets
 * file's counted apart) after the credential arrived,
 * whatever the check took. PAM's own delay is suppressed, and a PAM run must
 * end within it (pam_unix's yescrypt takes some 30 ms), or the failure is
 * late by the overrun and a warning logged. */
#define MAX_AUTH_FAILURES	3
#define FAIL_DELAY_MS		1000
/* Malformed or unknown commands before we hang up. */
#define MAX_BAD_COMMANDS	20
/* Commands before login, whatever they are (CAPA, a cancelled AUTH): the
 * next is refused and we hang up. A client that fumbles (CAPA, AUTH, UTF8,
 * LANG and three tries of USER and PASS) needs 10; as many as the bad ones
 * allowed, so that 20 bad commands still end with "Too many bad commands". */
#define MAX_PREAUTH_COMMANDS	20

/* In the state directory: the session lock (-1) and the last-login record
 * (-l), beside the update journal. */
#define SESSION_LOCK		"session.lock"
#define LAST_LOGIN		"last-login"
/* -i dovecot, uw: the mailbox's UIDVALIDITY, kept for when the message that
 * carried it (X-IMAPbase in the first one) has been deleted. */
#define UIDVALIDITY_FILE	"uidvalidity"
/* The last UPDATES_KEPT UPDATEs of the mailbox: where each began to rewrite
 * it, and when, so that another session's remap takes what lies past that
 * for rewritten, not for a message of its own edited in place (remap.c). */
#define UPDATES_FILE		"updates"
#define UPDATES_KEPT		16

/* PROXY protocol (-X): a v1 line is at most 107 octets with its CRLF (the
 * spec's bound); a v2 header at most 16 + 1008 octets, addresses and TLVs,
 * which our input buffer holds with room to spare. It must arrive within
 * PROXY_TIMEOUT seconds. */
#define PROXY_V1_MAX		107
#define PROXY_V2_MAX		1024
#define PROXY_TIMEOUT		10

/* Client I/O buffers. The output buffer is what RETR builds the wire form
 * in: at 32 KiB it stays closer to the core with the bytes it is made from,
 * and RETR of 178 MB took 7 % and 2 % less time than at 64 KiB in two series
 * of interleaved runs (bench/). */
#define INPUT_BUFFER		4096
#define OUTPUT_BUFFER		32768

/* Body bytes in a unique-id: with the headers and the body's length, enough
 * to tell messages apart, and the scan need not hash every body byte. */
#define UID_BODY		1024

/* Mailbox scanning and copying chunk. fuzz/Makefile builds the mailbox
 * files a second time with -DFUZZ_CHUNK=8, so that small inputs reach the
 * code for lines longer than the buffer and for CRs at chunk ends. */
#ifdef FUZZ_CHUNK
#define MAILBOX_CHUNK		FUZZ_CHUNK
#else
#define MAILBOX_CHUNK		(1 << 17)
#endif
/* What an UPDATE writes before it starts writeback of it, so that its
 * fsync finds most of the bytes on their way to the disk. */
#define WRITEBACK_CHUNK		(8 << 20)
/* The cache's checks: From_ lines sampled, and bytes read at each and at
 * the old end. */
#define CACHE_SAMPLES		32
#define CACHE_PROBE		64
#define CACHE_TAIL		4096
/* Appended scans the cache may chain before the next full scan. */
#define MAX_SEGMENTS		16
/* liblockfile's set-group-ID helper: the dotlock keeper (dotlock.c) takes
 * its group. */
#define DOTLOCK_HELPER		"/usr/bin/dotlockfile"
/* On a shared spool (-F), where liblockfile takes a dotlock untouched for
 * 300 s as stale: how often a held one is touched, in seconds. */
#define DOTLOCK_TOUCH		60
/* How long to wait for the fcntl lock and the dotlock, in seconds. */
#define LOCK_TIMEOUT		10
/* Opening the maildrop (locks, journal, cache, scan) ends the session after
 * the idle timeout (-t), but not before this many seconds. */
#define OPEN_TIMEOUT_MIN	(2 * LOCK_TIMEOUT)
/* Milliseconds to wait, at most, for the clock to pass the ctime of a file
 * just changed (commit_note_read): a tick is 4 ms at HZ=250. */
#define CTIME_WAITS		20

/* APOP secrets file: longest line. */
#define MAX_SECRET_LINE		1024

/* RFC 1939: a unique-id is 1 to 70 characters in 0x21..0x7E. */
#define MAX_UIDL		70

#endif
