/*
 * PROXY protocol parser (HAProxy's proxy-protocol.txt, versions 1 and 2).
 * Strict: a header is either exactly right or refused, and the caller
 * closes the connection for a refused one.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "proxy.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A v1 port: 0 to 65535 in decimal, no sign or leading zero. */
static int port_ok(const char *p)
{
	size_t n = strlen(p);

	return n >= 1 && n <= 5 && strspn(p, "0123456789") == n &&
	    (n == 1 || p[0] != '0') && atol(p) <= 65535;
}

/* "PROXY TCP4|TCP6 src dst sport dport" or "PROXY UNKNOWN[ ...]". */
static ssize_t parse_v1(const unsigned char *buf, size_t len,
    struct proxy_addr *pa)
{
	char line[PROXY_V1_MAX + 1], *f[7], *p, *save;
	unsigned char a[16];
	const unsigned char *cr;
	size_t n, i;
	int af;

	/* The CR LF must end by octet PROXY_V1_MAX; before it, only
	 * printable ASCII, so that junk is refused as soon as it is seen. */
	n = len < PROXY_V1_MAX - 1 ? len : PROXY_V1_MAX - 1;
	cr = memchr(buf, '\r', n);
	for (i = 0; i < (cr ? (size_t)(cr - buf) : n); i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return -1;
	if (!cr)
		return len < PROXY_V1_MAX - 1 ? 0 : -1;
	n = cr - buf;
	if (n + 1 >= len)
		return 0;	/* the LF is still to come */
	if (buf[n + 1] != '\n')
		return -1;
	memcpy(line, buf, n);
	line[n] = '\0';
	if (!strncmp(line, "PROXY UNKNOWN", 13) &&
	    (line[13] == '\0' || line[13] == ' ')) {
		pa->local = 1;
		return n + 2;
	}
	/* exactly single spaces between six fields */
	if (strstr(line, "  ") || line[n - 1] == ' ')
		return -1;
	for (i = 0, p = strtok_r(line, " ", &save); p && i < 7;
	    p = strtok_r(NULL, " ", &save))
		f[i++] = p;
	if (i != 6 || p || strcmp(f[0], "PROXY"))
		return -1;
	if (!strcmp(f[1], "TCP4"))
		af = AF_INET;
	else if (!strcmp(f[1], "TCP6"))
		af = AF_INET6;
	else
		return -1;
	if (inet_pton(af, f[2], a) != 1 || inet_pton(af, f[3], a) != 1 ||
	    !port_ok(f[4]) || !port_ok(f[5]))
		return -1;
	inet_pton(af, f[2], a);
	if (!inet_ntop(af, a, pa->addr, sizeof(pa->addr)))
		return -1;
	pa->local = 0;
	return n + 2;
}

static ssize_t parse_v2(const unsigned char *buf, size_t len,
    struct proxy_addr *pa)
{
	size_t body, need;
	unsigned cmd, fam;

	if (len < 16)
		return 0;
	if ((buf[12] >> 4) != 2 || (cmd = buf[12] & 15) > 1)
		return -1;
	fam = buf[13];
	body = (size_t)buf[14] << 8 | buf[15];
	if (16 + body > PROXY_V2_MAX)
		return -1;
	if (len < 16 + body)
		return 0;
	pa->local = 1;
	if (cmd == 0)		/* LOCAL: the proxy's own health check */
		return 16 + body;
	switch (fam) {
	case 0x00:		/* UNSPEC */
	case 0x31:		/* a Unix stream socket */
		return 16 + body;
	case 0x11:		/* TCP over IPv4 */
		need = 12;
		break;
	case 0x21:		/* TCP over IPv6 */
		need = 36;
		break;
	default:		/* UDP, or unknown: not for POP3 */
		return -1;
	}
	if (body < need ||
	    !inet_ntop(fam == 0x11 ? AF_INET : AF_INET6, buf + 16, pa->addr,
	    sizeof(pa->addr)))
		return -1;
	pa->local = 0;
	return 16 + body;
}

ssize_t proxy_parse(const unsigned char *buf, size_t len, struct proxy_addr *pa)
{
	size_t n;

	memset(pa, 0, sizeof(*pa));
	n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	if (!memcmp(buf, v2_sig, n))
		return n < sizeof(v2_sig) ? 0 : parse_v2(buf, len, pa);
	n = len < 6 ? len : 6;
	if (!memcmp(buf, "PROXY ", n))
		return n < 6 ? 0 : parse_v1(buf, len, pa);
	return -1;
}

/* Parses "addr[/prefix]" into family, 16 octets and prefix length. */
static int parse_net(const char *s, size_t len, int *af, unsigned char *a,
    unsigned *bits)
{
	char buf[INET6_ADDRSTRLEN + 5], *slash;
	unsigned long v;
	char *end;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if ((slash = strchr(buf, '/')))
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, a) == 1)
		*af = AF_INET, *bits = 32;
	else if (inet_pton(AF_INET6, buf, a) == 1)
		*af = AF_INET6, *bits = 128;
	else
		return -1;
	if (slash) {
		if (!*slash || strspn(slash, "0123456789") != strlen(slash) ||
		    strlen(slash) > 3 || (v = strtoul(slash, &end, 10)) > *bits)
			return -1;
		*bits = v;
	}
	/* an IPv4 address on an IPv6 socket, ::ffff:a.b.c.d, is IPv4 */
	if (*af == AF_INET6 && *bits >= 96 &&
	    !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {
		memmove(a, a + 12, 4);
		*af = AF_INET;
		*bits -= 96;
	}
	return 0;
}

int proxy_trusted(const char *list, const char *addr)
{
	unsigned char a[16], n[16];
	unsigned bits, abits, i;
	int af, naf, found = 0;
	const char *p, *comma;

	if (parse_net(addr, strlen(addr), &af, a, &abits))
		return 0;
	for (p = list; ; p = comma + 1) {
		comma = strchr(p, ',');
		if (parse_net(p, comma ? (size_t)(comma - p) : strlen(p), &naf,
		    n, &bits))
			return -1;
		if (naf == af) {
			for (i = 0; i < bits / 8 && a[i] == n[i]; i++)
				;
			if (i == bits / 8 && (bits % 8 == 0 ||
			    !((a[i] ^ n[i]) & (0xff00 >> (bits % 8)))))
				found = 1;
		}
		if (!comma)
			break;
	}
	return found;
}
