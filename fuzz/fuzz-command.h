/*
 * What fuzz-command.c shares with the stub objects linked in place of the
 * handler's auth.o, vusers.o and timing.o (stub-auth.c, stub-timing.c).
 */
#ifndef POP3_FUZZ_COMMAND_H
#define POP3_FUZZ_COMMAND_H

/* Reports a violated check and aborts. */
void fuzz_fail(const char *what, int line) __attribute__((noreturn));

#define CHECK(cond) do { if (!(cond)) fuzz_fail(#cond, __LINE__); } while (0)

/* The scratch spool, every user's home. */
extern char fuzz_home[256];

/* Whether the client has sent all it will and the session has read it all
 * while the client stays connected (byte 0, bit 6): 1 or 0. Waits while the
 * client is still sending but nothing is queued yet. */
int fuzz_client_idle(void);

#endif
