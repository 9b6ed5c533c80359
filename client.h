/*
 * The client's side of a session: the bounded line reader with its
 * deadlines, the output buffer and its writes, and the client input that
 * crosses from the pre-auth child to the root parent. Every byte to or from
 * the client goes through here.
 */
#ifndef POP3_CLIENT_H
#define POP3_CLIENT_H

#include <sys/types.h>

#include "maildrop.h"

enum line_status { LINE, LINE_EOF, LINE_LONG, LINE_FAIL, LINE_TIMEOUT };

/* Serves the client on in (read) and out (written): both buffers empty,
 * SIGALRM caught so that a write to a pipe can time out (opt.timeout), and
 * SO_SNDTIMEO set on out when it is a socket. */
void client_open(int in, int out);

/* Reads one line of at most max octets with its LF into line (max + 1
 * bytes), without the CR LF, NUL-terminated, *len its length with any NULs,
 * first flushing the output. Returns LINE; LINE_LONG once for a longer line,
 * read to its LF and thrown away; LINE_TIMEOUT when the whole line did not
 * come within -t of the first wait or before the login deadline; LINE_EOF
 * (a line cut off by EOF too) or LINE_FAIL (logged). */
enum line_status client_get_line(char *line, size_t max, size_t *len);

/* Sets the login deadline that client_get_line keeps besides -t, in
 * timing_now_ms milliseconds; 0: none. */
void client_set_login_deadline(long long ms);

/* Whether the login deadline is set and has passed: 1 or 0. */
int client_login_late(void);

/* Queues s for the client, writing out what is queued when the buffer
 * fills. Returns 0, or -1 when a write failed (logged). */
int client_put(const char *s);

/* Writes out what is queued, within -t. Returns 0, or -1 (logged). */
int client_flush(void);

/* The output buffer, for maildrop_send to write a message into. */
struct output *client_out(void);

/* Octets queued for the client so far, written or not. */
unsigned long long client_sent(void);

/* Behind a trusted proxy (-X): reads the PROXY header before the greeting,
 * within PROXY_TIMEOUT seconds, leaving what follows it as client input.
 * Returns the client's address (peer for a LOCAL header), or NULL (logged):
 * the connection is then to be closed without a greeting. */
const char *client_proxy_header(const char *peer);

/* Pre-auth child, after a good login: flushes the output and sends the
 * client input not yet read up the channel fd, then wipes the input buffer.
 * Returns 0 or -1. */
int client_hand_over(int fd);

/* Root parent, after a good login: takes the child's unread client input
 * from the channel fd as the input to read next. Returns its length, or -1
 * with the input buffer as it was. */
ssize_t client_take_over(int fd);

/* Lets the client go: shuts down and closes both descriptors. */
void client_hang_up(void);

#endif
