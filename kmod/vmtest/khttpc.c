// SPDX-License-Identifier: MIT
/*
 * khttpc - exact-bytes HTTP test client for the khttpd VM test.
 *
 *   khttpc [-p port] [-T seconds] [-L n] STEP...
 *
 * Connects to 127.0.0.1:port (8081) and runs the steps in order on one
 * connection:
 *   send:BYTES    send BYTES (C escapes \r \n \t \\ \xHH; "@L@" expands to
 *                 "/" followed by n-1 'a', see -L)
 *   expect:BYTES  read exactly that many bytes and compare
 *   eof           the server closes next, sending nothing more
 *   open          the connection stays open and quiet for 300 ms
 *   shut          shutdown(SHUT_WR): the request stops here
 *   idle:S        wait up to S seconds for the server to close, with no
 *                 data (a client that connected and never spoke); prints
 *                 "# idle: closed by the server after X s"
 *   mark:PATH     create the file PATH: tells the test script, which runs
 *                 this client in the background, that the steps before held
 * -T bounds every read (default 10 s).  Exit 0 when every step held, 1
 * otherwise, with "# " lines on stdout saying what differed.
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
#include <time.h>
#include <unistd.h>

static int timeout_ms = 10000;
static int long_len = 4096;

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode escapes and @L@ into a new buffer; returns its length. */
static size_t decode(const char *s, char **out)
{
	size_t cap = strlen(s) + 1;
	size_t n = 0;
	const char *at;
	char *buf;

	/* room for every @L@, each of which grows by long_len - 3 bytes */
	for (at = strstr(s, "@L@"); at; at = strstr(at + 3, "@L@"))
		cap += long_len;
	buf = malloc(cap);
	if (!buf) {
		perror("malloc");
		exit(2);
	}
	while (*s) {
		if (!strncmp(s, "@L@", 3)) {
			buf[n++] = '/';
			memset(buf + n, 'a', long_len - 1);
			n += long_len - 1;
			s += 3;
			continue;
		}
		if (*s != '\\' || !s[1]) {
			buf[n++] = *s++;
			continue;
		}
		s++;
		switch (*s) {
		case 'r':
			buf[n++] = '\r';
			break;
		case 'n':
			buf[n++] = '\n';
			break;
		case 't':
			buf[n++] = '\t';
			break;
		case 'x':
			if (hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
				buf[n++] = hexval(s[1]) * 16 + hexval(s[2]);
				s += 2;
				break;
			}
			buf[n++] = 'x';
			break;
		default:
			buf[n++] = *s;
			break;
		}
		s++;
	}
	*out = buf;
	return n;
}

/* print bytes with escapes, on "# " lines */
static void show(const char *label, const char *buf, size_t len)
{
	size_t i;
	int col = 0;

	printf("# %s (%zu bytes): \"", label, len);
	for (i = 0; i < len; i++) {
		unsigned char c = buf[i];

		if (col > 100) {
			printf("\"\n#   \"");
			col = 0;
		}
		if (c == '\r')
			col += printf("\\r");
		else if (c == '\n')
			col += printf("\\n");
		else if (c == '\\' || c == '"')
			col += printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			col += printf("\\x%02x", c);
		else
			col += printf("%c", c);
	}
	printf("\"\n");
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Read up to @want bytes within @ms milliseconds.  Returns the count read;
 * *eof is set when the peer closed, *err on a socket error.
 */
static size_t read_for(int fd, char *buf, size_t want, int ms, int *eof,
		       int *err)
{
	long long deadline = now_ms() + ms;
	size_t got = 0;

	*eof = 0;
	*err = 0;
	while (got < want) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			break;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		n = recv(fd, buf + got, want - got, 0);
		if (n == 0) {
			*eof = 1;
			break;
		}
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			*err = errno;
			break;
		}
		got += n;
	}
	return got;
}

static int step(int fd, const char *arg)
{
	char extra[256];
	int eof, err;
	size_t n;

	if (!strncmp(arg, "send:", 5)) {
		char *data;
		size_t len = decode(arg + 5, &data);
		size_t done = 0;

		while (done < len) {
			ssize_t w = send(fd, data + done, len - done,
					 MSG_NOSIGNAL);

			if (w < 0) {
				printf("# send failed: %s\n", strerror(errno));
				free(data);
				return 1;
			}
			done += w;
		}
		free(data);
		return 0;
	}
	if (!strncmp(arg, "expect:", 7)) {
		char *want, *got;
		size_t len = decode(arg + 7, &want);

		got = malloc(len + 1);
		if (!got) {
			perror("malloc");
			exit(2);
		}
		n = read_for(fd, got, len, timeout_ms, &eof, &err);
		if (n != len || memcmp(got, want, len)) {
			size_t i = 0;

			while (i < n && i < len && got[i] == want[i])
				i++;
			printf("# response differs at byte %zu%s%s%s\n", i,
			       eof ? " (server closed)" : "",
			       err ? ", socket error: " : "",
			       err ? strerror(err) : "");
			show("expected", want, len);
			show("got", got, n);
			free(want);
			free(got);
			return 1;
		}
		free(want);
		free(got);
		return 0;
	}
	if (!strcmp(arg, "eof")) {
		n = read_for(fd, extra, sizeof(extra), timeout_ms, &eof, &err);
		if (n || !eof) {
			printf("# expected the server to close%s\n",
			       err ? " (socket error instead)" : "");
			if (n)
				show("extra bytes", extra, n);
			return 1;
		}
		return 0;
	}
	if (!strcmp(arg, "open")) {
		n = read_for(fd, extra, sizeof(extra), 300, &eof, &err);
		if (n || eof || err) {
			printf("# expected the connection to stay open and quiet%s\n",
			       eof ? "; the server closed it" : "");
			if (n)
				show("extra bytes", extra, n);
			return 1;
		}
		return 0;
	}
	if (!strncmp(arg, "mark:", 5)) {
		int mfd = open(arg + 5, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (mfd < 0) {
			printf("# cannot create %s: %s\n", arg + 5, strerror(errno));
			return 1;
		}
		close(mfd);
		return 0;
	}
	if (!strcmp(arg, "shut")) {
		if (shutdown(fd, SHUT_WR)) {
			printf("# shutdown failed: %s\n", strerror(errno));
			return 1;
		}
		return 0;
	}
	if (!strncmp(arg, "idle:", 5)) {
		int ms = atoi(arg + 5) * 1000;
		long long t0 = now_ms();

		n = read_for(fd, extra, sizeof(extra), ms, &eof, &err);
		printf("# idle: %s after %.1f s\n",
		       eof ? "closed by the server" :
		       err ? "socket error" : "still open",
		       (now_ms() - t0) / 1000.0);
		if (n || (!eof && !err)) {
			printf("# idle client: the server did not close within %s s\n",
			       arg + 5);
			if (n)
				show("unexpected bytes", extra, n);
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "khttpc: unknown step %s\n", arg);
	exit(2);
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	int port = 8081;
	int opt, fd, i;

	while ((opt = getopt(argc, argv, "p:T:L:")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'T':
			timeout_ms = atoi(optarg) * 1000;
			break;
		case 'L':
			long_len = atoi(optarg);
			if (long_len < 1)
				long_len = 1;
			break;
		default:
			fprintf(stderr,
				"usage: khttpc [-p port] [-T s] [-L n] STEP...\n");
			return 2;
		}
	}
	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		printf("# connect to 127.0.0.1:%d failed: %s\n", port,
		       strerror(errno));
		return 1;
	}
	for (i = optind; i < argc; i++) {
		if (step(fd, argv[i])) {
			printf("# failing step %d: %.200s\n", i - optind + 1,
			       argv[i]);
			close(fd);
			return 1;
		}
	}
	close(fd);
	return 0;
}
