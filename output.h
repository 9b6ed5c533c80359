/*
 * The client's output buffer: replies and messages are built in it and
 * handed to a flush function that sends them. maildrop_send writes a
 * message's wire form into it directly.
 */
#ifndef POP3_OUTPUT_H
#define POP3_OUTPUT_H

#include <stddef.h>

/* size is at least 64, and flush sends buf[0, len) and sets len to 0,
 * returning 0, or -1 to stop the send. */
struct output {
	char *buf;
	size_t len, size;
	int (*flush)(struct output *out);
};

/* Appends the n bytes at s to out, flushing it whenever it fills. Returns 0,
 * or -1 when flush did; out then holds what was put since that flush. */
int output_put(struct output *out, const char *s, size_t n);

#endif
