/*
 * The maildrop: one mbox file read into a table of message offsets, sizes and
 * unique-ids; messages streamed out on request; deletions committed on QUIT.
 * What transaction.c calls, and the lister (-M, pop3-handler.c) its part of
 * it. Defined in maildrop.c, but maildrop_uidl and uidl_format_ok
 * (uidl.c), maildrop_fresh (remap.c), maildrop_commit (commit.c) and
 * maildrop_tidy (journal.c).
 */
#ifndef POP3_MAILDROP_H
#define POP3_MAILDROP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "output.h"
#include "params.h"

struct message {
	off_t from;		/* the From_ line */
	off_t data;		/* first header byte */
	off_t end;		/* end of the message, before any separator line */
	off_t size;		/* octets on the wire, every line end as CRLF */
	unsigned char uid[16];	/* XXH3-128, or what the scheme keeps (-i):
				 * see "Unique-ids" in README */
	union {
		uint32_t suffix;	/* without M_XUIDL: ".n" after the
					 * hash (0: none) */
		uint32_t xuidl;		/* with M_XUIDL: the pool offset of
					 * the X-UIDL value */
	} uidl;
	uint16_t flags;
	uint16_t from_id;	/* XXH3 of the From_ line, its low 16 bits:
				 * what tells a message edited in place
				 * from mail that came (remap.c) */
};

/* A stretch of the file, [previous end, end), and the XXH3 of its bytes. */
struct segment {
	off_t end;
	uint64_t digest;
};

/* Set by the scanner (mbox.c), and kept in the cache: */
#define M_XUIDL		0x02	/* the unique-id is an X-UIDL value */
#define M_NOEOL		0x04	/* the last line has no newline */
#define M_HIDDEN	0x08	/* the UW-IMAP pseudo-message: never listed */
#define M_NOEOH		0x10	/* no empty line ends the headers: every
				 * line is one (-W oe-ns-eoh adds it) */
#define M_STAMPED	0x40	/* -i dovecot, uw: uid holds the X-UID and
				 * the UIDVALIDITY, not a hash */
#define M_DEMOTED	0x100	/* an X-UIDL value that gave way to an
				 * earlier message's (mbox_unique) */
/* Set by the session, never cached: */
#define M_DELETED	0x01	/* DELE'd in this session */
#define M_RETRIEVED	0x20	/* RETR'd in this session (EXPIRE 0) */
#define M_GONE		0x80	/* removed by another client or program
				 * since the session began (remap.c) */

/* How unique-ids are made, for the whole session (-i; README "Unique-ids").
 * The scanner keeps in the table what the kind needs (its "table"): dovecot
 * and uw keep the same, and only print it differently. */
enum uidl_kind {
	UIDL_NATIVE,	/* the X-UIDL value, else XXH3 of the message ("xuidl" too) */
	UIDL_POPA3D,	/* popa3d 1.0.3: MD5 of a few header lines */
	UIDL_DOVECOT,	/* X-UID and UIDVALIDITY, as Dovecot's pop3_uidl_format */
	UIDL_UW		/* X-UID and UIDVALIDITY, as UW ipop3d prints them */
};

struct uidl_scheme {
	enum uidl_kind kind;
	const char *format;	/* UIDL_DOVECOT: a pop3_uidl_format of %u, %v
				 * and %% (uidl_format_ok), or NULL for
				 * Dovecot's default, %08Xu%08Xv */
};

/* The maildrop's state, each group owned by the file named. */
struct maildrop {
	/* The file, opened, locked and read (maildrop.c). */
	char *path;
	int fd;			/* open for the session; -1 when there is no file */
	uid_t uid;		/* the owner of the file and the state dir */
	dev_t dev;
	ino_t ino;
	char *rbuf;		/* MAILBOX_CHUNK bytes: the scan's, then a */
	off_t win_off;		/* window on the file, [win_off, win_off + */
	size_t win_len;		/* win_len), that RETR reads ahead into */

	/* The message table (mbox.c; cache.c reads it from the cache). */
	struct message *msg;	/* every message, the hidden one included */
	size_t count;		/* entries in msg */
	size_t alloc;		/* room in msg */
	size_t visible;		/* messages numbered in the session */
	size_t first;		/* index of message 1: 0, or 1 after a hidden one */
	char *pool;		/* X-UIDL values, NUL-terminated */
	size_t pool_len, pool_size;
	struct uidl_scheme scheme;	/* how the ids are made and printed */
	uint32_t validity;	/* dovecot, uw: the first message's
				 * UIDVALIDITY (X-IMAPbase, X-IMAP), else
				 * the one saved in the state directory
				 * (UIDVALIDITY_FILE), or 0 */

	/* What the table was made from (mbox.c, cache.c), which the cache
	 * and the proof at QUIT check the file against. */
	off_t length;		/* bytes read at open */
	int ends_at_boundary;	/* the file ends where a From_ line may
				 * follow: mail appended starts a message */
	struct segment seg[MAX_SEGMENTS];	/* XXH3 of those bytes, in */
	int segs;		/* segments: one a scan (full or appended) */

	/* The state directory (cache.c, commit.c, journal.c). */
	int state;		/* open, or -1 */
	char *state_path;	/* its name, to make it at the first write */

	/* The update (commit.c, journal.c). */
	struct timespec mtime, ctime;	/* the file's, once read */
	off_t noted_size;	/* its size then: md->length, or more when
				 * mail came after the part remapped */
	int quick;		/* their sameness at QUIT proves it unchanged */
	unsigned remaps;	/* times the table was remapped (remap.c) */
	int tidy;		/* a used journal waits for maildrop_tidy */
};

/* Locks, reads and unlocks the mailbox at path, which must be a regular file
 * owned by uid (or missing, for an empty maildrop). state names the state
 * directory for the update journal (made at the first UPDATE; NULL: none).
 * ids says how the unique-ids are made (NULL: UIDL_NATIVE). An
 * update that a crash cut short is finished first. Returns 0, or -1 with *err
 * set to "[IN-USE] ...", "[SYS/PERM] ..." or "[SYS/TEMP] ..." and the reason
 * logged, and md closed (as by maildrop_close); the file is never modified
 * but to finish an interrupted update. */
int maildrop_open(struct maildrop *md, const char *path, const char *state,
    uid_t uid, const struct uidl_scheme *ids, const char **err);

/* Reads the mailbox at path as maildrop_open would, for the offline lister
 * (-M): under a read lock (fcntl F_RDLCK) only, with no cache, no journal,
 * no dotlock, so that nothing is written; of the state directory state (or
 * NULL), if it exists, only the saved UIDVALIDITY is read. Returns 0, or -1
 * with *err set as maildrop_open sets it, and md closed. */
int maildrop_read(struct maildrop *md, const char *path, const char *state,
    uid_t uid, const struct uidl_scheme *ids, const char **err);

/* Whether fmt is a pop3_uidl_format we can print: %u (which it must hold),
 * %v, each with an optional zero-padded width and X (hex, which Dovecot
 * prints in lower case), and %%; at most MAX_UIDL - 11 octets printed, so
 * that a suffix fits. 1 or 0. */
int uidl_format_ok(const char *fmt);

/* The message numbered n (1-based, hidden one skipped), or NULL. */
struct message *maildrop_get(struct maildrop *md, unsigned long n);

/* Whether the file still has m's From_ line where the table says: a cheap
 * sign that nobody rewrote the mailbox since it was read. 1 or 0 (logged).
 * The bytes come from a window read ahead from there, which maildrop_send
 * then sends m from. */
int maildrop_still(struct maildrop *md, const struct message *m);

/* Makes the table describe the file as it is now, when another session or
 * program rewrote it since it was read (remap.c): under the locks the file
 * is read again and each message found in it by its content; one that is
 * no longer there is marked M_GONE, mail that came meanwhile is kept out of
 * the table. Returns 0 when the file had not changed, 1 when the table was
 * remapped, -1 when it cannot be (a message edited in place, say), or -2
 * when the locks are busy ("try again"): both with *err set ("[IN-USE]
 * ...", "[SYS/TEMP] ...", logged) and the table as it was. */
int maildrop_fresh(struct maildrop *md, const char **err);

/* Writes the unique-id of m, NUL-terminated, into buf (MAX_UIDL + 1 bytes);
 * returns its length. */
size_t maildrop_uidl(const struct maildrop *md, const struct message *m,
    char *buf);

/* Writes m in wire form into out: CRLF line ends, dot-stuffed, without the
 * final ".CRLF". With lines >= 0 only the headers, the blank line and that
 * many body lines. Returns 0, or -1 when a read failed (logged) or flush
 * did; out then holds whatever was written since its last flush. */
int maildrop_send(struct maildrop *md, const struct message *m, long long lines,
    struct output *out);

/* Rewrites the mailbox without the messages marked M_DELETED, keeping any mail
 * appended since it was read, through the journal in the state directory;
 * a file another session rewrote meanwhile is remapped first
 * (maildrop_fresh), and messages it removed are not deleted twice.
 * Returns the number of messages deleted, or -1 with *err set ("[SYS/TEMP]
 * ...", reason logged) and the file as it was, or with the journal left to
 * finish the update at the next open. */
long maildrop_commit(struct maildrop *md, const char **err);

/* Removes what the last UPDATE left to remove later: the journal it used,
 * whose blocks take a while to free (30 ms for 178 MB). For after the client
 * has had its answer and gone. */
void maildrop_tidy(struct maildrop *md);

/* Frees the table and closes the file. */
void maildrop_close(struct maildrop *md);

#endif
