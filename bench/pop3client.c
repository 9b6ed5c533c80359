/*
 * pop3client: the benchmark's client.  One pipelined POP3 session over
 * loopback TCP: connect, send the whole command file while reading, read to
 * EOF, and report the wall time from before connect() to EOF.
 *
 *   pop3client PORT [CMDFILE]
 *
 * Prints "SECONDS BYTES ok|err LINE": LINE is the last reply line, or for err
 * the first -ERR line.  Exits 0 when no reply line was -ERR and the last one
 * was +OK, 1 otherwise, 2 on a usage or socket error.  With no CMDFILE it
 * sends nothing and only reads (the floor: a server that just sends a file).
 *
 * C rather than Python so that the client is not what limits RETR of a
 * 180 MB mailbox: the floor is this same read loop on a raw file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)

static char buf[BUF + 8];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "pop3client: %s: %s\n", what, strerror(errno));
	exit(2);
}

int main(int argc, char **argv)
{
	char *cmd = NULL, tail[512], err[201], carry[16];
	size_t cmdlen = 0, off = 0, taillen = 0, carrylen = 0;
	long long total = 0;
	int haveerr = 0;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: pop3client PORT [CMDFILE]\n");
		return 2;
	}
	if (argc == 3) {
		int fd = open(argv[2], O_RDONLY);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0)
			die(argv[2]);
		cmdlen = st.st_size;
		cmd = malloc(cmdlen + 1);
		if (!cmd)
			die("malloc");
		for (size_t got = 0; got < cmdlen;) {
			ssize_t n = read(fd, cmd + got, cmdlen - got);
			if (n <= 0)
				die(argv[2]);
			got += n;
		}
		close(fd);
	}

	double t0 = now();
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");
	if (fcntl(s, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl");

	/* The first line is checked as if a newline came before it. */
	carry[0] = '\n';
	carrylen = 1;
	for (;;) {
		struct pollfd p = { s, POLLIN | (off < cmdlen ? POLLOUT : 0), 0 };

		if (poll(&p, 1, 900000) <= 0)
			die("poll (timeout)");
		if (off < cmdlen && (p.revents & (POLLOUT | POLLERR))) {
			size_t want = cmdlen - off > 262144 ? 262144 : cmdlen - off;
			ssize_t n = write(s, cmd + off, want);

			if (n < 0 && errno != EAGAIN)
				die("write");
			if (n > 0)
				off += n;
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = read(s, buf, BUF);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			die("read");
		}
		if (n == 0)
			break;
		total += n;
		if (!haveerr) {
			/* "\n-ERR" across the boundary: the carry plus 4 bytes. */
			char edge[32];
			size_t k = n < 4 ? (size_t)n : 4;
			const char *e = NULL;

			memcpy(edge, carry, carrylen);
			memcpy(edge + carrylen, buf, k);
			if (memmem(edge, carrylen + k, "\n-ERR", 5))
				e = "-ERR (at a read boundary)";
			else if ((e = memmem(buf, n, "\n-ERR", 5)) != NULL)
				e++;
			if (e) {
				size_t m = 0;

				while (m < 200 && e + m < buf + n && e[m] != '\r' && e[m] != '\n')
					m++;
				memcpy(err, e, m);
				err[m] = 0;
				haveerr = 1;
			}
		}
		carrylen = n < 4 ? (size_t)n : 4;
		memcpy(carry, buf + n - carrylen, carrylen);
		if ((size_t)n >= sizeof tail) {
			memcpy(tail, buf + n - sizeof tail, sizeof tail);
			taillen = sizeof tail;
		} else {
			size_t keep = taillen + n > sizeof tail ? sizeof tail - n : taillen;

			memmove(tail, tail + taillen - keep, keep);
			memcpy(tail + keep, buf, n);
			taillen = keep + n;
		}
	}
	double dt = now() - t0;
	close(s);

	/* The last line. */
	while (taillen && (tail[taillen - 1] == '\n' || tail[taillen - 1] == '\r'))
		taillen--;
	size_t b = taillen;
	while (b && tail[b - 1] != '\n')
		b--;
	char last[513];
	memcpy(last, tail + b, taillen - b);
	last[taillen - b] = 0;
	if (haveerr) {
		printf("%.6f %lld err %s\n", dt, total, err);
		return 1;
	}
	if (argc == 3 && strncmp(last, "+OK", 3) != 0) {
		printf("%.6f %lld err last line: %s\n", dt, total, last);
		return 1;
	}
	printf("%.6f %lld ok %s\n", dt, total, last);
	return 0;
}
