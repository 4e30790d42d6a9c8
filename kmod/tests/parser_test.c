// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Host-side unit test of http_parser.c (built in user space):
 *   make -C kmod parser-test
 * Every request is fed whole, byte by byte and in two halves at every
 * split point; the results must agree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http_parser.h"

#define MAX_MSGS 4

struct result {
	int begun;
	int complete;
	int methods[MAX_MSGS];
	int keep_alive[MAX_MSGS];
	size_t url_len[MAX_MSGS];
	char url[MAX_MSGS][64];
	size_t body_len;
	int error;
};

static int on_begin(struct http_parser *p)
{
	struct result *r = p->data;

	r->begun++;
	return 0;
}

static int on_url(struct http_parser *p, const char *at, size_t len)
{
	struct result *r = p->data;
	int i = r->complete;
	size_t room;

	if (i >= MAX_MSGS)
		return 1;
	room = sizeof(r->url[i]) - 1 - strlen(r->url[i]);
	strncat(r->url[i], at, len < room ? len : room);
	r->url_len[i] += len;
	return 0;
}

static int on_body(struct http_parser *p, const char *at, size_t len)
{
	struct result *r = p->data;

	(void)at;
	r->body_len += len;
	return 0;
}

static int on_complete(struct http_parser *p)
{
	struct result *r = p->data;
	int i = r->complete;

	if (i >= MAX_MSGS)
		return 1;
	r->methods[i] = p->method;
	r->keep_alive[i] = http_should_keep_alive(p);
	r->complete++;
	return 0;
}

static const struct http_parser_settings settings = {
	.on_message_begin = on_begin,
	.on_url = on_url,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

/* feed @len bytes in pieces starting at the given split points */
static void run(const char *req, size_t len, size_t split, int bytewise,
		struct result *r)
{
	struct http_parser p;
	size_t i;

	memset(r, 0, sizeof(*r));
	http_parser_init(&p);
	p.data = r;
	if (bytewise) {
		for (i = 0; i < len && !p.error; i++)
			http_parser_execute(&p, &settings, req + i, 1);
	} else {
		http_parser_execute(&p, &settings, req, split);
		http_parser_execute(&p, &settings, req + split, len - split);
	}
	r->error = p.error;
}

static int failures;
static int checks;

static void expect(const char *name, const char *req, size_t len,
		   int complete, int error, int method0, int keep_alive0,
		   const char *url0)
{
	struct result whole, r;
	size_t split;
	int bad = 0;

	checks++;
	run(req, len, len, 0, &whole);
	if (whole.complete != complete || (error >= 0 && whole.error != error) ||
	    (error < 0 && !whole.error))
		bad = 1;
	if (complete && (whole.methods[0] != method0 ||
			 whole.keep_alive[0] != keep_alive0))
		bad = 1;
	if (url0 && strcmp(whole.url[0], url0))
		bad = 1;
	for (split = 0; split <= len && !bad; split++) {
		run(req, len, split, 0, &r);
		if (whole.error) {
			/* a prefix of a bad request may be reported first */
			if (r.error != whole.error)
				bad = 1;
			continue;
		}
		if (r.complete != whole.complete || r.error != whole.error ||
		    memcmp(r.methods, whole.methods, sizeof(r.methods)) ||
		    memcmp(r.keep_alive, whole.keep_alive,
			   sizeof(r.keep_alive)) ||
		    memcmp(r.url_len, whole.url_len, sizeof(r.url_len)) ||
		    memcmp(r.url, whole.url, sizeof(r.url)) ||
		    r.body_len != whole.body_len) {
			fprintf(stderr, "  split at %zu differs\n", split);
			bad = 1;
		}
	}
	if (!bad) {
		run(req, len, 0, 1, &r);
		if (r.complete != whole.complete || r.error != whole.error ||
		    (!whole.error && memcmp(r.url, whole.url, sizeof(r.url))))
			bad = 1;
	}
	if (bad) {
		failures++;
		printf("not ok %d - %s (complete=%d error=%d:%s method=%d keep_alive=%d url=%s)\n",
		       checks, name, whole.complete, whole.error,
		       http_errno_name(whole.error), whole.methods[0],
		       whole.keep_alive[0], whole.url[0]);
	} else {
		printf("ok %d - %s\n", checks, name);
	}
}

#define EXPECT(name, req, complete, error, method, ka, url)                 \
	expect(name, req, sizeof(req) - 1, complete, error, method, ka, url)

int main(void)
{
	static char big[16384];
	static char huge[HTTP_MAX_HEAD_SIZE + 100];
	struct result r;
	int n;

	printf("KTAP version 1\n1..28\n");
	EXPECT("GET HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 1, 0,
	       HTTP_GET, 0, "/");
	EXPECT("GET HTTP/1.1 keeps alive",
	       "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 1, 0, HTTP_GET,
	       1, "/index.html");
	EXPECT("HTTP/1.1 Connection: close",
	       "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 1, 0, HTTP_GET,
	       0, "/");
	EXPECT("HTTP/1.0 Connection: keep-alive",
	       "GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n", 1, 0,
	       HTTP_GET, 1, "/");
	EXPECT("Connection token list",
	       "GET / HTTP/1.0\r\nConnection: Upgrade,  keep-alive \r\n\r\n", 1,
	       0, HTTP_GET, 1, "/");
	EXPECT("Connection: close wins",
	       "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 1, 0,
	       HTTP_GET, 0, "/");
	EXPECT("bare LF line ends", "GET /a HTTP/1.1\nHost: x\n\n", 1, 0,
	       HTTP_GET, 1, "/a");
	EXPECT("empty lines before the request",
	       "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1, 0, HTTP_GET, 1, "/");
	EXPECT("POST with body then pipelined GET",
	       "POST /f HTTP/1.1\r\nContent-Length: 3\r\n\r\na=1"
	       "GET /g HTTP/1.1\r\n\r\n",
	       2, 0, HTTP_POST, 1, "/f");
	EXPECT("unknown method is valid syntax",
	       "BREW /pot HTTP/1.1\r\n\r\n", 1, 0, HTTP_OTHER, 1, "/pot");
	EXPECT("HEAD", "HEAD / HTTP/1.1\r\n\r\n", 1, 0, HTTP_HEAD, 1, "/");
	EXPECT("truncated request is not complete",
	       "GET / HTTP/1.1\r\nHost: x", 0, 0, 0, 0, NULL);
	EXPECT("truncated body is not complete",
	       "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 0, 0, 0, 0,
	       NULL);
	EXPECT("Transfer-Encoding never keeps alive",
	       "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 0,
	       HTTP_POST, 0, "/");
	EXPECT("garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0,
	       HPE_BAD_METHOD, 0, 0, NULL);
	EXPECT("HTTP/2.0 refused", "GET / HTTP/2.0\r\n\r\n", 0,
	       HPE_BAD_VERSION, 0, 0, NULL);
	EXPECT("HTTP/0.9 refused", "GET /\r\n\r\n", 0, HPE_BAD_URL, 0, 0,
	       NULL);
	EXPECT("two spaces", "GET  / HTTP/1.1\r\n\r\n", 0, HPE_BAD_URL, 0, 0,
	       NULL);
	EXPECT("obs-fold refused",
	       "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 0, HPE_BAD_HEADER, 0, 0,
	       NULL);
	EXPECT("space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0,
	       HPE_BAD_HEADER, 0, 0, NULL);
	EXPECT("bad Content-Length",
	       "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 0,
	       HPE_BAD_CONTENT_LENGTH, 0, 0, NULL);
	EXPECT("conflicting Content-Length",
	       "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	       0, HPE_BAD_CONTENT_LENGTH, 0, 0, NULL);
	EXPECT("Content-Length overflow",
	       "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	       0, HPE_BAD_CONTENT_LENGTH, 0, 0, NULL);
	EXPECT("Content-Length with Transfer-Encoding",
	       "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nx",
	       0, HPE_BAD_CONTENT_LENGTH, 0, 0, NULL);
	EXPECT("control byte in URL", "GET /\x01 HTTP/1.1\r\n\r\n", 0,
	       HPE_BAD_URL, 0, 0, NULL);

	/* a 4 KiB request-target */
	n = snprintf(big, sizeof(big), "GET /");
	memset(big + n, 'a', 4095);
	n += 4095;
	n += snprintf(big + n, sizeof(big) - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	checks++;
	run(big, n, n / 2, 0, &r);
	if (r.complete == 1 && !r.error && r.url_len[0] == 4096) {
		printf("ok %d - 4 KiB URL\n", checks);
	} else {
		failures++;
		printf("not ok %d - 4 KiB URL\n", checks);
	}

	/* a head larger than the limit */
	n = snprintf(huge, sizeof(huge), "GET / HTTP/1.1\r\nX: ");
	memset(huge + n, 'b', sizeof(huge) - n);
	checks++;
	run(huge, sizeof(huge), 1000, 0, &r);
	if (r.error == HPE_HEAD_TOO_LARGE) {
		printf("ok %d - head size limit\n", checks);
	} else {
		failures++;
		printf("not ok %d - head size limit (error %d)\n", checks,
		       r.error);
	}

	/* a callback can stop the parser */
	checks++;
	{
		static const char two[] =
			"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
		struct http_parser_settings stop = settings;
		struct http_parser p;
		size_t used;

		stop.on_url = NULL;
		stop.on_message_complete = NULL;
		stop.on_headers_complete = on_complete;
		memset(&r, 0, sizeof(r));
		http_parser_init(&p);
		p.data = &r;
		r.complete = MAX_MSGS;	/* makes on_complete fail */
		used = http_parser_execute(&p, &stop, two, sizeof(two) - 1);
		if (p.error == HPE_CALLBACK && used == 19) {
			printf("ok %d - callback stops the parser\n", checks);
		} else {
			failures++;
			printf("not ok %d - callback stops the parser (used %zu)\n",
			       checks, used);
		}
	}
	if (checks != 28)
		printf("# plan mismatch: %d checks\n", checks);
	printf("# %d/%d passed\n", checks - failures, checks);
	return failures || checks != 28;
}
