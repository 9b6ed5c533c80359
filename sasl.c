/*
 * SASL message handling: everything here parses what a client sent and
 * trusts none of it. Base64 is nettle's and SASLprep is libidn's; only the
 * checks around them, which those libraries leave lax, are written here.
 */
#include <nettle/base64.h>
#include <stdint.h>
#include <string.h>
#include <stringprep.h>

#include "sasl.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * nettle's decoder skips white space and takes a missing pad: check the
 * canonical form first, so that one message has one spelling.
 */
static int strict_base64(const char *text, size_t len)
{
	size_t pad = 0;

	if (len % 4)
		return 0;
	while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
		pad++;
	return strspn(text, b64) == len - pad;
}

ssize_t sasl_decode64(const char *text, char *buf, size_t size)
{
	struct base64_decode_ctx ctx;
	size_t len = strlen(text), out;

	if (!strcmp(text, "=")) {	/* RFC 5034: an empty response */
		if (size < 1)
			return -1;
		buf[0] = '\0';
		return 0;
	}
	if (!strict_base64(text, len) || BASE64_DECODE_LENGTH(len) >= size)
		return -1;
	out = size - 1;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &out, (uint8_t *)buf, len, text) ||
	    !base64_decode_final(&ctx)) {
		explicit_bzero(buf, size);
		return -1;
	}
	buf[out] = '\0';
	return out;
}

int sasl_encode64(const void *data, size_t len, char *buf, size_t size)
{
	if (BASE64_ENCODE_RAW_LENGTH(len) >= size)
		return -1;
	base64_encode_raw(buf, len, data);
	buf[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return 0;
}

int sasl_plain(char *msg, size_t len, char **authzid, char **authcid,
    char **passwd)
{
	char *a = memchr(msg, '\0', len), *b;

	if (!a || !(b = memchr(a + 1, '\0', len - (a + 1 - msg))) ||
	    memchr(b + 1, '\0', len - (b + 1 - msg)))
		return -1;
	*authzid = msg;
	*authcid = a + 1;
	*passwd = b + 1;
	return **authcid && **passwd ? 0 : -1;
}

/* Whether the len octets at s are well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF) without NUL: 1 or 0. */
static int utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p, n, i;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;	/* continuation, 0xc0/0xc1, 0xf5.. */
		if ((size_t)(end - p) <= n)
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

int sasl_prep(char *s, size_t size)
{
	if (!utf8_valid(s, strlen(s)) ||
	    stringprep(s, size, 0, stringprep_saslprep) != STRINGPREP_OK) {
		explicit_bzero(s, size);
		return -1;
	}
	return 0;
}
