/*
 * Text from the client (text.h): strict numbers, user names, and strings made
 * safe to log.
 */
#include <string.h>

#include "params.h"
#include "text.h"

/*
 * The length of the UTF-8 sequence at s (1 to 4), or 0 when it is not one:
 * a stray continuation byte, a truncated or overlong sequence, a surrogate,
 * or more than U+10FFFF.
 */
static size_t utf8_length(const unsigned char *s)
{
	size_t n, i;
	unsigned long cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/*
 * Makes a string from the client or the system safe to log: a control
 * character (C0, DEL, or a C1 code point, U+0080 to U+009F, which some
 * terminals obey) and each byte that is not part of valid UTF-8 become '?'.
 * UTF-8 user names pass as they are.
 */
const char *printable(const char *s, char *buf, size_t size)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;

	while (*u && i + 1 < size) {
		n = utf8_length(u);
		if (n == 0 || u[0] < 0x20 || u[0] == 0x7f ||
		    (u[0] == 0xc2 && u[1] < 0xa0)) {
			buf[i++] = '?';
			u += n ? n : 1;
			continue;
		}
		if (i + n >= size)
			break;
		memcpy(buf + i, u, n);
		i += n;
		u += n;
	}
	buf[i] = '\0';
	return buf;
}

/*
 * Strict numbers: decimal digits only, at most max, no sign, space or
 * trailing junk. Returns 0 or -1.
 */
int parse_number(const char *arg, unsigned long long max,
    unsigned long long *value)
{
	unsigned long long v = 0;

	if (!arg || !*arg)
		return -1;
	for (; *arg; arg++) {
		if (*arg < '0' || *arg > '9')
			return -1;
		if (v > (max - (*arg - '0')) / 10)
			return -1;
		v = v * 10 + (*arg - '0');
	}
	*value = v;
	return 0;
}

int user_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len < 1 || len > MAX_USER || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return 0;
	for (; *name; name++)
		if ((unsigned char)*name <= ' ' || *name == 0x7f || *name == '/')
			return 0;
	return 1;
}

