/*
 * libFuzzer harness for the PROXY protocol parser (proxy.c: proxy_parse,
 * proxy_trusted).
 *
 * Input: the octets a trusted proxy sends before the POP3 dialogue. Checks:
 *   - proxy_parse returns -1, 0 or a length no greater than the input and
 *     no greater than the header's bound (PROXY_V1_MAX for text,
 *     PROXY_V2_MAX for binary);
 *   - 0 ("need more") only for an input shorter than that bound: the reader
 *     never waits for more than a header can hold;
 *   - a parsed header fed again with any number of octets of it cut off is
 *     0 (incomplete), and with more input after it has the same length and
 *     address: what follows the header is never part of it;
 *   - a non-local result is an address that inet_pton reads back in its own
 *     family, and proxy_trusted finds it in a list made of itself and not
 *     in a list of an address of the other family (an IPv4-mapped IPv6
 *     address, ::ffff:a.b.c.d, counts as IPv4, as proxy_trusted reads it).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../params.h"
#include "../proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) fail(#cond, __LINE__); } while (0)

static void fail(const char *what, int line)
{
	fprintf(stderr, "fuzz-proxy: invariant violated at line %d: %s\n",
	    line, what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_addr pa, pb;
	unsigned char a[16], *more;
	ssize_t n, m;
	size_t cut;
	int v2 = size >= 1 && data[0] == 0x0d;

	n = proxy_parse(data, size, &pa);
	CHECK(n >= -1 && n <= (ssize_t)size);
	CHECK(n <= (v2 ? PROXY_V2_MAX : PROXY_V1_MAX));
	if (n == 0)
		CHECK(size < (size_t)(v2 ? PROXY_V2_MAX : PROXY_V1_MAX));
	if (n <= 0)
		return 0;
	for (cut = 1; cut <= 3 && cut <= (size_t)n; cut++)
		CHECK(proxy_parse(data, n - cut, &pb) == 0);
	more = malloc(n + 8);
	CHECK(more != NULL);
	memcpy(more, data, n);
	memcpy(more + n, "USER x\r\n", 8);
	m = proxy_parse(more, n + 8, &pb);
	free(more);
	CHECK(m == n && pb.local == pa.local && !strcmp(pb.addr, pa.addr));
	if (pa.local)
		return 0;
	if (strchr(pa.addr, ':')) {
		/* ::ffff:a.b.c.d is the IPv4 address a.b.c.d to proxy_trusted
		 * (an IPv4 peer on an IPv6 socket), so an IPv4 list holds it */
		CHECK(inet_pton(AF_INET6, pa.addr, a) == 1);
		CHECK(proxy_trusted("192.0.2.1", pa.addr) ==
		    !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\0\2\1", 16));
	} else {
		CHECK(inet_pton(AF_INET, pa.addr, a) == 1);
		CHECK(proxy_trusted("2001:db8::1", pa.addr) == 0);
	}
	CHECK(proxy_trusted(pa.addr, pa.addr) == 1);
	return 0;
}
