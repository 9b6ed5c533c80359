/*
 * The client's side of a session (client.h): the line reader and its
 * deadlines, the output buffer and the writes that send it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "maildrop.h"
#include "params.h"
#include "privsep.h"
#include "proxy.h"
#include "session.h"
#include "timing.h"

/* The descriptors the client is read from and written to. */
static int in_fd = STDIN_FILENO, out_fd = STDOUT_FILENO;
static char inbuf[INPUT_BUFFER];
static size_t in_pos, in_len;
static char outbuf[OUTPUT_BUFFER];
static int send_output(struct output *o);
/* Replies and messages, which maildrop_send writes into directly. */
static struct output output = { outbuf, 0, sizeof(outbuf), send_output };
static unsigned long long out_sent;	/* octets written to the client */
static volatile sig_atomic_t alarmed;
static int timed_socket;		/* SO_SNDTIMEO bounds our writes */
/* Without privilege separation: when AUTHORIZATION runs out (-L), in
 * milliseconds on the monotonic clock; 0 after a login, and always 0 in the
 * pre-auth child, whose root parent keeps the deadline instead. */
static long long login_deadline;

static void on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

/*
 * Writes buf to the client whole, within the timeout. On a socket the
 * kernel keeps the time (SO_SNDTIMEO, set once: a write that sends nothing
 * for that long fails with EAGAIN); elsewhere (a pipe, by hand) an alarm
 * does, and two alarm calls a write were 5 % of RETR's time on a socket.
 * Returns 0 or -1.
 */
static int write_client(const char *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	alarmed = 0;
	if (!timed_socket)
		timing_alarm(opt.timeout);
	while (done < len) {
		n = write(out_fd, buf + done, len - done);
		if (n < 0 && errno == EINTR && !alarmed)
			continue;
		if (n <= 0)
			break;
		done += n;
	}
	if (!timed_socket)
		timing_alarm(0);
	if (done < len) {
		syslog(LOG_INFO, "write to client failed: %s",
		    alarmed || errno == EAGAIN ? "timed out" : strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether the client is a socket that now times its writes itself. */
static int time_socket_writes(void)
{
	struct timeval tv = { opt.timeout, 0 };

	return !setsockopt(out_fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv));
}

void client_open(int in, int out)
{
	in_fd = in;
	out_fd = out;
	in_pos = in_len = 0;
	output.len = 0;
	out_sent = 0;
	alarmed = 0;
	timing_catch_alarm(on_alarm, NULL);	/* writes time out */
	timed_socket = time_socket_writes();
}

/*
 * Sends what is queued. The outlook-no-nuls workaround turns each NUL into
 * 0x80 here, which keeps every size as it was: only message bytes can hold
 * a NUL, since no reply of ours does.
 */
static int send_output(struct output *o)
{
	size_t n = o->len, i;

	o->len = 0;
	if (opt.no_nuls)
		for (i = 0; i < n; i++)
			if (!o->buf[i])
				o->buf[i] = (char)0x80;
	out_sent += n;
	return n ? write_client(o->buf, n) : 0;
}

int client_flush(void)
{
	return send_output(&output);
}

struct output *client_out(void)
{
	return &output;
}

unsigned long long client_sent(void)
{
	return out_sent + output.len;
}

int client_put(const char *s)
{
	return output_put(&output, s, strlen(s));
}

/*
 * Refills the input buffer before deadline (timing_now_ms's), first
 * flushing what we have to say: the client has been answered for
 * everything it sent before it waits on us.
 */
static enum line_status fill_input(long long deadline)
{
	struct pollfd pfd = { in_fd, POLLIN, 0 };
	long long left;
	ssize_t n;
	int r;

	if (output.len && client_flush())
		return LINE_FAIL;
	do
		r = (left = deadline - timing_now_ms()) > 0 ?
		    poll(&pfd, 1, (int)left) : 0;
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return LINE_TIMEOUT;
	do
		n = read(in_fd, inbuf, sizeof(inbuf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		syslog(LOG_INFO, "read from client failed: %m");
		return LINE_FAIL;
	}
	if (n == 0)
		return LINE_EOF;
	in_pos = 0;
	in_len = n;
	return LINE;
}

/*
 * Reads one line of at most max octets with its LF into line (which holds
 * max + 1 bytes), without the CR LF, NUL-terminated; *len gets its length,
 * NULs included. A longer line is read to its LF and thrown away: LINE_LONG,
 * once. A line cut off by EOF is not a command. The whole line must come
 * within -t seconds of our first wait for it, and before the login deadline:
 * a byte now and then does not keep a session open (LINE_TIMEOUT).
 */
enum line_status client_get_line(char *line, size_t max, size_t *len)
{
	size_t n = 0, total = 0;
	enum line_status st;
	long long deadline = 0;

	for (;;) {
		char *nl;
		size_t take;

		if (in_pos == in_len) {
			if (!deadline) {
				deadline = timing_now_ms() +
				    opt.timeout * 1000LL;
				if (login_deadline && login_deadline < deadline)
					deadline = login_deadline;
			}
			if ((st = fill_input(deadline)) != LINE)
				return st;
		}
		nl = memchr(inbuf + in_pos, '\n', in_len - in_pos);
		take = (nl ? (size_t)(nl - inbuf) : in_len) - in_pos;
		total += take + (nl != NULL);
		if (n < max) {
			size_t room = max - n;
			memcpy(line + n, inbuf + in_pos, take < room ? take : room);
			n += take < room ? take : room;
		}
		in_pos += take + (nl != NULL);
		if (nl)
			break;
	}
	if (total > max)
		return LINE_LONG;
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	*len = n;
	return LINE;
}

void client_set_login_deadline(long long ms)
{
	login_deadline = ms;
}

int client_login_late(void)
{
	return login_deadline && timing_now_ms() >= login_deadline;
}
/*
 * Behind a load balancer (-X): a connection from a trusted proxy starts with
 * a PROXY header, read here before the greeting, within PROXY_TIMEOUT
 * seconds and no further than the header's bound. What follows it stays in
 * the input buffer for the session. Returns the client's address (or the
 * proxy's own for a LOCAL header), or NULL: the connection is then closed
 * without a greeting.
 */
const char *client_proxy_header(const char *peer)
{
	static char addr[INET6_ADDRSTRLEN];
	struct pollfd pfd = { in_fd, POLLIN, 0 };
	struct proxy_addr pa;
	time_t deadline = time(NULL) + PROXY_TIMEOUT;
	ssize_t n, got;

	for (;;) {
		got = proxy_parse((unsigned char *)inbuf, in_len, &pa);
		if (got > 0)
			break;
		if (got < 0) {
			syslog(LOG_NOTICE, "proxy %s: malformed PROXY header",
			    peer);
			return NULL;
		}
		if (time(NULL) >= deadline ||
		    poll(&pfd, 1, (deadline - time(NULL)) * 1000) <= 0) {
			syslog(LOG_NOTICE, "proxy %s: no PROXY header in "
			    "time", peer);
			return NULL;
		}
		n = read(in_fd, inbuf + in_len, sizeof(inbuf) - in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			syslog(LOG_NOTICE, "proxy %s: connection closed in "
			    "the PROXY header", peer);
			return NULL;
		}
		in_len += n;
	}
	in_pos = got;
	if (pa.local)
		return peer;
	memcpy(addr, pa.addr, sizeof(addr));
	syslog(LOG_INFO, "proxy %s: client %s", peer, addr);
	return addr;
}

int client_hand_over(int fd)
{
	int bad = client_flush() ||
	    privsep_hand_over(fd, inbuf + in_pos, in_len - in_pos);

	explicit_bzero(inbuf, sizeof(inbuf));
	return bad;
}

ssize_t client_take_over(int fd)
{
	ssize_t n = privsep_take_over(fd, inbuf, sizeof(inbuf));

	if (n >= 0) {
		in_pos = 0;
		in_len = n;
	}
	return n;
}

/*
 * Lets the client go: it has had every reply, and what is left (removing a
 * used journal) need not keep it waiting. A shutdown ends the connection
 * however many descriptors share it (xinetd's stderr too); for a pipe or a
 * file, closing ours is all there is.
 */
void client_hang_up(void)
{
	shutdown(out_fd, SHUT_RDWR);
	close(out_fd);
	close(in_fd);
}

