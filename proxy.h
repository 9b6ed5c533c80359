/*
 * The PROXY protocol, versions 1 and 2 (HAProxy): the header a load
 * balancer sends before the client's first byte, naming the client. Pure
 * functions on buffers, so that they can be fuzzed alone.
 */
#ifndef POP3_PROXY_H
#define POP3_PROXY_H

#include <arpa/inet.h>
#include <stddef.h>
#include <sys/types.h>

struct proxy_addr {
	int local;	/* LOCAL, UNKNOWN, UNSPEC or a Unix socket: the
			 * connection is the proxy's own; keep its address */
	char addr[INET6_ADDRSTRLEN];	/* else the client's address */
};

/* Parses the PROXY header at the start of buf (len octets): v1 text (at
 * most PROXY_V1_MAX octets with its CRLF) or v2 binary (at most
 * PROXY_V2_MAX). Returns the header's length with *pa filled, 0 when buf is
 * a correct but incomplete start of one, or -1 for anything else. */
ssize_t proxy_parse(const unsigned char *buf, size_t len, struct proxy_addr *pa);

/* Whether the address addr (text) is in list: comma-separated IPv4 or IPv6
 * addresses, each with an optional /prefix. Returns 1, 0, or -1 when list is
 * malformed. */
int proxy_trusted(const char *list, const char *addr);

#endif
