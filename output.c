/*
 * The client's output buffer (output.h): a fixed buffer that its owner
 * flushes, filled here a piece at a time.
 */
#include <string.h>

#include "output.h"

int output_put(struct output *out, const char *s, size_t n)
{
	while (n > out->size - out->len) {
		size_t fit = out->size - out->len;

		memcpy(out->buf + out->len, s, fit);
		out->len += fit;
		if (out->flush(out))
			return -1;
		s += fit;
		n -= fit;
	}
	memcpy(out->buf + out->len, s, n);
	out->len += n;
	return 0;
}
