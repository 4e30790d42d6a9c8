/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A small, incremental HTTP/1.x request parser for khttpd.
 *
 * The interface follows the callback style of the http_parser library that
 * the course's khttpd uses (on_url, on_header_field, on_message_complete,
 * ...), but this file is a separate, much smaller implementation: requests
 * only, no allocation, bytes may arrive in any number of pieces.  It builds
 * both in the kernel and in user space (for the host-side unit test).
 */
#ifndef KHTTPD_HTTP_PARSER_H
#define KHTTPD_HTTP_PARSER_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
#endif

/* Largest request head (request line + headers) accepted, in bytes. */
#define HTTP_MAX_HEAD_SIZE (64 * 1024)

enum http_method {
	HTTP_OTHER = 0,		/* a syntactically valid method we do not know */
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_CONNECT,
	HTTP_OPTIONS,
	HTTP_TRACE,
	HTTP_PATCH,
};

enum http_errno {
	HPE_OK = 0,
	HPE_BAD_METHOD,
	HPE_BAD_URL,
	HPE_BAD_VERSION,
	HPE_BAD_HEADER,
	HPE_BAD_CONTENT_LENGTH,
	HPE_HEAD_TOO_LARGE,
	HPE_CALLBACK,		/* a callback returned non-zero */
};

/* parser->flags */
#define HTTP_F_CONN_CLOSE	0x01	/* "Connection: close" seen */
#define HTTP_F_CONN_KEEP_ALIVE	0x02	/* "Connection: keep-alive" seen */
#define HTTP_F_CONTENT_LENGTH	0x04	/* a Content-Length header seen */
#define HTTP_F_TRANSFER_ENCODING 0x08	/* a Transfer-Encoding header seen */

struct http_parser;

typedef int (*http_cb)(struct http_parser *parser);
typedef int (*http_data_cb)(struct http_parser *parser, const char *at,
			    size_t len);

/*
 * Data callbacks may be called several times for one element when it
 * spans more than one buffer.  A non-zero return value stops the parser
 * with HPE_CALLBACK.  Any callback may be NULL.
 */
struct http_parser_settings {
	http_cb on_message_begin;
	http_data_cb on_url;
	http_data_cb on_header_field;
	http_data_cb on_header_value;
	http_cb on_headers_complete;
	http_data_cb on_body;
	http_cb on_message_complete;
};

struct http_parser {
	/* private state */
	u8 state;
	u8 header;		/* which header is being read (enum in .c) */
	u8 index;		/* position inside a matched literal */
	u8 tok_len;
	char tok[20];		/* method, header name or Connection token */
	u32 head_bytes;		/* bytes of the current request head so far */
	u64 body_left;		/* body bytes still to read */
	u64 value;		/* Content-Length being accumulated */

	/* read-only for users, valid from on_headers_complete on */
	u8 method;		/* enum http_method */
	u8 http_major;
	u8 http_minor;
	u8 flags;		/* HTTP_F_* */
	u64 content_length;

	u8 error;		/* enum http_errno, HPE_OK while healthy */
	void *data;		/* for the user */
};

void http_parser_init(struct http_parser *parser);

/*
 * Feed @len bytes.  Returns the number of bytes consumed: @len unless an
 * error stopped the parser (then parser->error says why and every later
 * call consumes nothing).  Complete requests are reported through
 * on_message_complete; the parser is then ready for the next request on
 * the same connection (keep-alive, pipelining).
 */
size_t http_parser_execute(struct http_parser *parser,
			   const struct http_parser_settings *settings,
			   const char *data, size_t len);

/* HTTP rules: 1.1 keeps the connection unless "close"; 1.0 closes unless
 * "keep-alive".  A request whose body length we cannot tell (Transfer-
 * Encoding) never keeps the connection.
 */
bool http_should_keep_alive(const struct http_parser *parser);

const char *http_method_str(enum http_method method);
const char *http_errno_name(enum http_errno err);

#endif /* KHTTPD_HTTP_PARSER_H */
