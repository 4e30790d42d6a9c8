// SPDX-License-Identifier: MIT
/*
 * htstress - an HTTP load generator for khttpd.
 *
 * Same command line and result block as the course's htstress (which is
 * based on Roman Arutyunyan's tool), written anew for this project:
 *
 *   htstress [-n N] [-c C] [-t T] [-u path] [-h host] [-d] [-4|-6] [-k]
 *            [http://]host[:port][/path]
 *
 * T threads each keep C connections busy with epoll and non-blocking
 * connects.  By default every request is "GET <path> HTTP/1.0" on its own
 * TCP connection and is complete when the server closes it.  With -k the
 * requests are HTTP/1.1 and a connection carries request after request
 * (keep-alive); a response is then complete after Content-Length bytes.
 *
 * Counting: "requests" is the number of finished attempts, each of which
 * is exactly one of good (a response with status 1xx-3xx), bad (status
 * 4xx/5xx or no parsable status line) or socket error (connect, send or
 * receive failed, or the connection closed before a response).  With -n N,
 * exactly N attempts are made.  requests/sec = requests / seconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define HEAD_MAX 4096		/* response head kept for parsing */
#define RECV_CHUNK 16384

enum outcome { GOOD, BAD, SOCKET_ERROR };

enum conn_state {
	C_OFF,			/* no socket */
	C_SENDING,		/* connecting or writing the request */
	C_RECEIVING,		/* reading the response */
};

struct conn {
	int fd;
	enum conn_state state;
	size_t sent;		/* request bytes written */
	size_t got;		/* response bytes read */
	size_t head_len;
	bool head_done;
	int status;		/* 0 until the status line is parsed */
	bool server_close;	/* the server closes after this response */
	long long body_left;	/* -1: body runs until the server closes */
	char head[HEAD_MAX];
};

/* options */
static uint64_t max_requests;	/* 0: until SIGINT */
static int concurrency = 1;
static int num_threads = 1;
static const char *udaddr;
static const char *host_header;
static bool debug;
static int family = AF_UNSPEC;
static bool keep_alive;

static struct sockaddr_storage server_addr;
static socklen_t server_addr_len;
static char *request;
static size_t request_len;

static atomic_uint_fast64_t issued;
static atomic_uint_fast64_t completed;
static atomic_uint_fast64_t good_requests;
static atomic_uint_fast64_t bad_requests;
static atomic_uint_fast64_t socket_errors;
static uint64_t ticks;
static volatile sig_atomic_t stop;

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: htstress [options] [http://]hostname[:port][/path]\n"
		"Options:\n"
		"   -n, --number       total number of requests (0 for infinite, Ctrl-C to abort)\n"
		"   -c, --concurrency  number of concurrent connections (per thread)\n"
		"   -t, --threads      number of threads (set this to the number of CPU cores)\n"
		"   -u, --udaddr       path to unix domain socket\n"
		"   -h, --host         host to use for http request\n"
		"   -d, --debug        debug HTTP request and response (to stderr)\n"
		"   -4, -6             use IPv4 / IPv6 only\n"
		"   -k, --keep-alive   HTTP/1.1 keep-alive: many requests per connection\n"
		"   --help             display this message\n");
}

/*
 * Parse the value of -n, -c or -t: decimal digits only, at most max.
 * strtoull() and atoi() alone take "abc" as 0 (for -n: run until Ctrl-C),
 * wrap "-5" to 2^64 - 5 and stop at the 'x' of "5x", so a typo would start
 * a different run from the one asked for instead of being reported.
 */
static bool parse_count(const char *s, unsigned long long max,
			unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')	/* no sign, no blanks, not empty */
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Take the right to make one more request. */
static bool claim_request(void)
{
	if (stop)
		return false;
	if (!max_requests)
		return true;
	return atomic_fetch_add(&issued, 1) < max_requests;
}

static void request_done(enum outcome outcome)
{
	uint64_t n;

	if (outcome == GOOD)
		atomic_fetch_add(&good_requests, 1);
	else if (outcome == BAD)
		atomic_fetch_add(&bad_requests, 1);
	else
		atomic_fetch_add(&socket_errors, 1);
	n = atomic_fetch_add(&completed, 1) + 1;
	if (ticks && n % ticks == 0 && (!max_requests || n < max_requests))
		printf("%" PRIu64 " requests\n", n);
}

static void reset_response(struct conn *c)
{
	c->sent = 0;
	c->got = 0;
	c->head_len = 0;
	c->head_done = false;
	c->status = 0;
	c->server_close = false;
	c->body_left = -1;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_OFF;
}

static void watch(int efd, struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(efd, op, c->fd, &ev)) {
		perror("epoll_ctl");
		exit(1);
	}
}

/*
 * Write what is left of the request.  Returns -1 on a socket error, else
 * whether the whole request is out (0: wait for EPOLLOUT and try again).
 */
static int send_request(struct conn *c)
{
	ssize_t n = send(c->fd, request + c->sent, request_len - c->sent,
			 MSG_NOSIGNAL);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (debug)
		fwrite(request + c->sent, 1, n, stderr);
	c->sent += n;
	if (c->sent < request_len)
		return 0;
	c->state = C_RECEIVING;
	return 1;
}

/*
 * Open a connection; false if it failed at once (counted as an error).
 *
 * The request is sent straight after connect() rather than on the first
 * EPOLLOUT: over loopback the handshake has finished by the time connect()
 * returns EINPROGRESS, so the send succeeds and the connection is watched
 * for EPOLLIN only.  That saves an epoll_wait and an epoll_ctl per request
 * (the client's CPU is CPU the server under test does not get; see
 * kmod/README.md).  If the handshake is still under way, send() says EAGAIN
 * and EPOLLOUT takes over as before.  No TCP_NODELAY: the request is one
 * small write with nothing unacknowledged before it (with -k the previous
 * response acknowledged the previous request), so Nagle never holds it.
 */
static bool conn_open(int efd, struct conn *c)
{
	int sent;

	reset_response(c);
	c->fd = socket(server_addr.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("socket");
		exit(1);
	}
	if (connect(c->fd, (struct sockaddr *)&server_addr, server_addr_len) &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		conn_close(c);
		return false;
	}
	c->state = C_SENDING;
	sent = send_request(c);
	if (sent < 0) {
		conn_close(c);
		return false;
	}
	watch(efd, c, EPOLL_CTL_ADD, sent ? EPOLLIN | EPOLLRDHUP : EPOLLOUT);
	return true;
}

/* Start the next request on a fresh connection; false when none is left. */
static bool conn_start(int efd, struct conn *c)
{
	while (claim_request()) {
		if (conn_open(efd, c))
			return true;
		request_done(SOCKET_ERROR);
	}
	return false;
}

/* The current request failed; returns whether the connection goes on. */
static bool conn_fail(int efd, struct conn *c)
{
	conn_close(c);
	request_done(SOCKET_ERROR);
	return conn_start(efd, c);
}

/* Parse the status line and the two headers we need. */
static void parse_head(struct conn *c)
{
	const char *p = c->head;
	const char *end = c->head + c->head_len;
	const char *line;
	bool keep_alive = false;	/* "Connection: keep-alive" seen */

	if (c->head_len >= 12 && !strncmp(p, "HTTP/", 5) && p[8] == ' ' &&
	    p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' &&
	    p[11] >= '0' && p[11] <= '9')
		c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 +
			    (p[11] - '0');

	for (line = memchr(p, '\n', end - p); line && line + 1 < end;
	     line = memchr(line + 1, '\n', end - line - 1)) {
		const char *h = line + 1;
		size_t left = end - h;

		if (left > 15 && !strncasecmp(h, "Content-Length:", 15))
			c->body_left = strtoll(h + 15, NULL, 10);
		else if (left > 11 && !strncasecmp(h, "Connection:", 11)) {
			const char *v = h + 11;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			if (end - v >= 5 && !strncasecmp(v, "close", 5))
				c->server_close = true;
			else if (end - v >= 10 &&
				 !strncasecmp(v, "keep-alive", 10))
				keep_alive = true;
		}
	}
	/* an HTTP/1.0 server closes after each response unless it says otherwise */
	if (c->head_len >= 8 && !strncmp(p, "HTTP/1.0", 8) && !keep_alive)
		c->server_close = true;
}

/*
 * Take response bytes: collect the head, then count the body down.  With
 * keep-alive the response is complete when body_left reaches 0.
 */
static void take_bytes(struct conn *c, const char *buf, size_t n)
{
	size_t body = n;

	c->got += n;
	if (!c->head_done) {
		size_t room = sizeof(c->head) - 1 - c->head_len;
		size_t copy = n < room ? n : room;
		char *term;

		memcpy(c->head + c->head_len, buf, copy);
		c->head_len += copy;
		c->head[c->head_len] = '\0';
		term = strstr(c->head, "\r\n\r\n");
		if (term) {
			size_t head_size = term + 4 - c->head;
			size_t before = c->head_len - copy;

			c->head_len = head_size;
			c->head_done = true;
			parse_head(c);
			body = n - (head_size - before);
		} else if (c->head_len == sizeof(c->head) - 1) {
			/* a head we cannot hold: read until close */
			c->head_done = true;
			parse_head(c);
			c->body_left = -1;
			body = 0;
		} else {
			body = 0;
		}
	}
	if (c->head_done && c->body_left > 0)
		c->body_left -= (long long)body < c->body_left ?
				(long long)body : c->body_left;
}

static enum outcome classify(const struct conn *c)
{
	return c->status && c->status < 400 ? GOOD : BAD;
}

/* Writable: connect finished or room to send.  False: conn is done. */
static bool on_writable(int efd, struct conn *c)
{
	int sent = send_request(c);

	if (sent < 0)
		return conn_fail(efd, c);
	if (sent)
		watch(efd, c, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP);
	return true;
}

/* The server closed the connection: one-shot requests end here. */
static bool on_server_close(int efd, struct conn *c)
{
	bool complete = c->got && (!keep_alive || c->body_left < 0 ||
				   (c->head_done && !c->body_left));

	if (!complete)
		return conn_fail(efd, c);
	conn_close(c);
	request_done(classify(c));
	return conn_start(efd, c);
}

/*
 * Readable.  False: the connection has no more work.
 *
 * With EPOLLRDHUP in @events the server's FIN has arrived, after all of its
 * data, so a recv() that leaves room in the buffer has drained the stream
 * and the next one would only return 0; that recv() is skipped.
 */
static bool on_readable(int efd, struct conn *c, uint32_t events)
{
	char buf[RECV_CHUNK];
	int sent;

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			return conn_fail(efd, c);
		}
		if (n == 0)
			return on_server_close(efd, c);
		if (debug)
			fwrite(buf, 1, n, stderr);
		take_bytes(c, buf, n);
		if (keep_alive && c->head_done && c->body_left == 0) {
			request_done(classify(c));
			if (c->server_close || !claim_request()) {
				conn_close(c);
				if (c->server_close)
					return conn_start(efd, c);
				return false;
			}
			/* next request on the same connection, sent at once */
			reset_response(c);
			c->state = C_SENDING;
			sent = send_request(c);
			if (sent < 0)
				return conn_fail(efd, c);
			if (!sent)
				watch(efd, c, EPOLL_CTL_MOD, EPOLLOUT);
			return true;
		}
		if ((events & EPOLLRDHUP) && (size_t)n < sizeof(buf))
			return on_server_close(efd, c);
	}
}

static void *worker(void *arg)
{
	struct epoll_event events[MAX_EVENTS];
	struct conn *conns;
	int active = 0;
	int efd;
	int i;

	(void)arg;
	conns = calloc(concurrency, sizeof(*conns));
	if (!conns) {
		perror("calloc");
		exit(1);
	}
	efd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0) {
		perror("epoll_create1");
		exit(1);
	}
	for (i = 0; i < concurrency; i++) {
		conns[i].fd = -1;
		if (conn_start(efd, &conns[i]))
			active++;
	}

	while (active > 0 && !stop) {
		int n = epoll_wait(efd, events, MAX_EVENTS, 200);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("epoll_wait");
			exit(1);
		}
		for (i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			uint32_t ev = events[i].events;
			bool more;

			if (c->state == C_SENDING) {
				if (ev & (EPOLLERR | EPOLLHUP))
					more = conn_fail(efd, c);
				else
					more = on_writable(efd, c);
			} else if (c->state == C_RECEIVING) {
				/* errors and hang-ups surface through recv() */
				more = on_readable(efd, c, ev);
			} else {
				continue;
			}
			if (!more)
				active--;
		}
	}

	for (i = 0; i < concurrency; i++)
		conn_close(&conns[i]);
	close(efd);
	free(conns);
	return NULL;
}

static int parse_port(const char *s)
{
	char *end;
	long v;

	if (!strcmp(s, "http"))
		return 80;
	v = strtol(s, &end, 10);
	if (!*s || *end || v < 1 || v > 65535)
		return -1;
	return v;
}

static int resolve(const char *node, const char *port_str)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&server_addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&server_addr;
	int port = parse_port(port_str);

	memset(&server_addr, 0, sizeof(server_addr));
	if (port > 0) {
		if (!strcmp(node, "localhost"))
			node = family == AF_INET6 ? "::1" : "127.0.0.1";
		if (family != AF_INET6 && inet_pton(AF_INET, node, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(port);
			server_addr_len = sizeof(*sin);
			return 0;
		}
		if (family != AF_INET && inet_pton(AF_INET6, node, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(port);
			server_addr_len = sizeof(*sin6);
			return 0;
		}
	}
#ifndef HTSTRESS_STATIC
	{
		struct addrinfo hints = {
			.ai_family = family,
			.ai_socktype = SOCK_STREAM,
			.ai_flags = AI_ADDRCONFIG,
		};
		struct addrinfo *res;
		int err = getaddrinfo(node, port_str, &hints, &res);

		if (err) {
			fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(err));
			return -1;
		}
		memcpy(&server_addr, res->ai_addr, res->ai_addrlen);
		server_addr_len = res->ai_addrlen;
		freeaddrinfo(res);
		return 0;
	}
#else
	fprintf(stderr, "this static build takes numeric addresses, localhost and numeric ports only: %s:%s\n",
		node, port_str);
	return -1;
#endif
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
		{ "number", required_argument, NULL, 'n' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "udaddr", required_argument, NULL, 'u' },
		{ "host", required_argument, NULL, 'h' },
		{ "debug", no_argument, NULL, 'd' },
		{ "keep-alive", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, '%' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	pthread_t *threads;
	char *url, *node, *port = "http", *path = "/";
	bool port_given = false, v6_literal = false;
	double start, seconds;
	uint64_t requests;
	unsigned long long value;
	int opt, i;

	if (argc == 1) {
		usage(stdout);
		return 0;
	}
	while ((opt = getopt_long(argc, argv, "n:c:t:u:h:d46k", long_options,
				  NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (!parse_count(optarg, UINT64_MAX, &value)) {
				fprintf(stderr, "-n wants a number of requests (0: until Ctrl-C), not '%s'\n",
					optarg);
				return 1;
			}
			max_requests = value;
			break;
		case 'c':
		case 't':
			if (!parse_count(optarg, INT_MAX, &value)) {
				fprintf(stderr, "-%c wants a number from 1 to %d, not '%s'\n",
					opt, INT_MAX, optarg);
				return 1;
			}
			if (opt == 'c')
				concurrency = value;
			else
				num_threads = value;
			break;
		case 'u':
			udaddr = optarg;
			break;
		case 'h':
			host_header = optarg;
			break;
		case 'd':
			debug = true;
			break;
		case '4':
			family = AF_INET;
			break;
		case '6':
			family = AF_INET6;
			break;
		case 'k':
			keep_alive = true;
			break;
		case '%':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "Missing URL\n");
		return 1;
	}
	if (concurrency < 1 || num_threads < 1) {
		fprintf(stderr, "-c and -t must be at least 1\n");
		return 1;
	}

	/* [http://]host[:port][/path], host may be [v6-literal] */
	url = strdup(argv[optind]);
	if (!url) {
		perror("strdup");
		return 1;
	}
	node = url;
	if (!strncasecmp(node, "http://", 7))
		node += 7;
	if (*node == '[') {
		char *close = strchr(node, ']');

		if (!close) {
			fprintf(stderr, "bad URL: %s\n", argv[optind]);
			return 1;
		}
		*close = '\0';
		node++;
		v6_literal = true;
		if (close[1] == ':') {
			port = close + 2;
			port_given = true;
		} else if (close[1] == '/') {
			path = strdup(close + 1);
		} else if (close[1]) {
			fprintf(stderr, "bad URL: %s\n", argv[optind]);
			return 1;
		}
	} else {
		char *sep = strpbrk(node, ":/");

		if (sep && *sep == ':') {
			*sep = '\0';
			port = sep + 1;
			port_given = true;
		} else if (sep) {
			path = strdup(sep);
			*sep = '\0';
		}
	}
	if (port_given) {
		char *slash = strchr(port, '/');

		if (slash) {
			path = strdup(slash);
			*slash = '\0';
		}
	}
	if (!path || !*node) {
		fprintf(stderr, "bad URL: %s\n", argv[optind]);
		return 1;
	}

	if (udaddr) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&server_addr;

		if (strlen(udaddr) >= sizeof(sun->sun_path)) {
			fprintf(stderr, "unix socket path too long\n");
			return 1;
		}
		memset(&server_addr, 0, sizeof(server_addr));
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, udaddr);
		server_addr_len = sizeof(*sun);
	} else if (resolve(node, port)) {
		return 1;
	}

	if (!host_header)
		host_header = node;
	else
		v6_literal = false;
	{
		const char *fmt = v6_literal ?
			"GET %s HTTP/1.%d\r\nHost: [%s]\r\n\r\n" :
			"GET %s HTTP/1.%d\r\nHost: %s\r\n\r\n";
		int len = snprintf(NULL, 0, fmt, path, keep_alive, host_header);

		request = malloc(len + 1);
		if (!request) {
			perror("malloc");
			return 1;
		}
		snprintf(request, len + 1, fmt, path, keep_alive, host_header);
		request_len = len;
	}

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ticks = max_requests / 10;
	if (!max_requests) {
		ticks = 1000;
		printf("[Press Ctrl-C to finish]\n");
	}
	fflush(stdout);

	threads = calloc(num_threads, sizeof(*threads));
	if (!threads) {
		perror("calloc");
		return 1;
	}
	start = now();
	for (i = 0; i < num_threads; i++) {
		if (pthread_create(&threads[i], NULL, worker, NULL)) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < num_threads; i++)
		pthread_join(threads[i], NULL);
	seconds = now() - start;

	requests = atomic_load(&completed);
	printf("\n"
	       "requests:      %" PRIu64 "\n"
	       "good requests: %" PRIu64 " [%d%%]\n"
	       "bad requests:  %" PRIu64 " [%d%%]\n"
	       "socket errors: %" PRIu64 " [%d%%]\n"
	       "seconds:       %.3f\n"
	       "requests/sec:  %.3f\n"
	       "\n",
	       requests, (uint64_t)atomic_load(&good_requests),
	       requests ? (int)(atomic_load(&good_requests) * 100 / requests) : 0,
	       (uint64_t)atomic_load(&bad_requests),
	       requests ? (int)(atomic_load(&bad_requests) * 100 / requests) : 0,
	       (uint64_t)atomic_load(&socket_errors),
	       requests ? (int)(atomic_load(&socket_errors) * 100 / requests) : 0,
	       seconds, seconds > 0 ? requests / seconds : 0.0);
	free(threads);
	free(request);
	free(url);
	return 0;
}
