// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * A small, incremental HTTP/1.x request parser (see http_parser.h).
 *
 * One byte at a time through a state machine; element boundaries are
 * reported through callbacks, so nothing is buffered except a few bytes of
 * the method, of a header name and of a Connection token.  What it checks:
 *
 *   request-line = method SP request-target SP "HTTP/" DIGIT "." DIGIT CRLF
 *   header-field = field-name ":" OWS field-value OWS CRLF
 *
 * Bare LF is accepted as a line end, empty lines before a request are
 * skipped (RFC 9112, 2.2).  Bodies are framed by Content-Length only; a
 * request with Transfer-Encoding is reported complete after its headers and
 * is never kept alive, because its body cannot be skipped reliably.
 */
#ifdef __KERNEL__
#include <linux/kernel.h>
#include <linux/string.h>
#else
#include <string.h>
#define U64_MAX UINT64_MAX
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#include "http_parser.h"

enum parser_state {
	S_START = 0,		/* before a request line, skipping empty lines */
	S_METHOD,
	S_URL_START,
	S_URL,
	S_VERSION,		/* matching "HTTP/" */
	S_VERSION_MAJOR,
	S_VERSION_DOT,
	S_VERSION_MINOR,
	S_VERSION_END,
	S_REQ_LINE_LF,
	S_HEADER_START,
	S_HEADER_FIELD,
	S_HEADER_VALUE_START,
	S_HEADER_VALUE,
	S_HEADER_VALUE_LF,
	S_HEADERS_LF,
	S_BODY,
};

/* Headers the parser itself needs to understand. */
enum parser_header {
	H_GENERAL = 0,
	H_CONNECTION,
	H_CONTENT_LENGTH,
	H_TRANSFER_ENCODING,
};

/* parser->index while reading a Content-Length value */
#define CL_DIGITS 0
#define CL_TRAILING_WS 1

#define TOK_OVERFLOW 0xff

static const char *const method_names[] = {
	[HTTP_OTHER] = "<other>",
	[HTTP_GET] = "GET",
	[HTTP_HEAD] = "HEAD",
	[HTTP_POST] = "POST",
	[HTTP_PUT] = "PUT",
	[HTTP_DELETE] = "DELETE",
	[HTTP_CONNECT] = "CONNECT",
	[HTTP_OPTIONS] = "OPTIONS",
	[HTTP_TRACE] = "TRACE",
	[HTTP_PATCH] = "PATCH",
};

static const char *const errno_names[] = {
	[HPE_OK] = "ok",
	[HPE_BAD_METHOD] = "bad method",
	[HPE_BAD_URL] = "bad request target",
	[HPE_BAD_VERSION] = "bad HTTP version or request line",
	[HPE_BAD_HEADER] = "bad header line",
	[HPE_BAD_CONTENT_LENGTH] = "bad Content-Length",
	[HPE_HEAD_TOO_LARGE] = "request head too large",
	[HPE_CALLBACK] = "stopped by a callback",
};

const char *http_method_str(enum http_method method)
{
	if ((unsigned int)method >= ARRAY_SIZE(method_names))
		return method_names[HTTP_OTHER];
	return method_names[method];
}

const char *http_errno_name(enum http_errno err)
{
	if ((unsigned int)err >= ARRAY_SIZE(errno_names))
		return "unknown error";
	return errno_names[err];
}

/* RFC 9110 token characters */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* visible ASCII: what a request-target may contain */
static bool is_url_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* field-value bytes: HTAB, SP, VCHAR, obs-text */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* case-insensitive comparison of the collected token with a literal */
static bool tok_is(const struct http_parser *p, const char *lit)
{
	size_t n = strlen(lit);
	size_t i;

	if (p->tok_len != n)
		return false;
	for (i = 0; i < n; i++)
		if (to_lower(p->tok[i]) != (unsigned char)lit[i])
			return false;
	return true;
}

static void tok_add(struct http_parser *p, char c)
{
	if (p->tok_len == TOK_OVERFLOW)
		return;
	if (p->tok_len >= sizeof(p->tok)) {
		p->tok_len = TOK_OVERFLOW;
		return;
	}
	p->tok[p->tok_len++] = c;
}

static enum http_method lookup_method(const struct http_parser *p)
{
	unsigned int m;

	for (m = HTTP_GET; m < ARRAY_SIZE(method_names); m++) {
		size_t n = strlen(method_names[m]);

		/* methods are case-sensitive */
		if (p->tok_len == n && !memcmp(p->tok, method_names[m], n))
			return m;
	}
	return HTTP_OTHER;
}

/* end of one Connection token: "close", "keep-alive" or anything else */
static void connection_token_end(struct http_parser *p)
{
	if (tok_is(p, "close"))
		p->flags |= HTTP_F_CONN_CLOSE;
	else if (tok_is(p, "keep-alive"))
		p->flags |= HTTP_F_CONN_KEEP_ALIVE;
	p->tok_len = 0;
}

/* One byte of a header value we care about; returns an error or HPE_OK. */
static enum http_errno header_value_byte(struct http_parser *p,
					 unsigned char c)
{
	switch (p->header) {
	case H_CONTENT_LENGTH:
		if (c == ' ' || c == '\t') {
			p->index = CL_TRAILING_WS;
			return HPE_OK;
		}
		if (p->index != CL_DIGITS || c < '0' || c > '9')
			return HPE_BAD_CONTENT_LENGTH;
		if (p->value > (U64_MAX - (c - '0')) / 10)
			return HPE_BAD_CONTENT_LENGTH;
		p->value = p->value * 10 + (c - '0');
		p->tok_len = 1;	/* at least one digit seen */
		return HPE_OK;
	case H_CONNECTION:
		if (c == ',' || c == ' ' || c == '\t')
			connection_token_end(p);
		else
			tok_add(p, c);
		return HPE_OK;
	default:
		return HPE_OK;
	}
}

/* The end of a header line: commit what the value said. */
static enum http_errno header_value_end(struct http_parser *p)
{
	switch (p->header) {
	case H_CONTENT_LENGTH:
		if (!p->tok_len)
			return HPE_BAD_CONTENT_LENGTH;
		if ((p->flags & HTTP_F_CONTENT_LENGTH) &&
		    p->content_length != p->value)
			return HPE_BAD_CONTENT_LENGTH;
		p->content_length = p->value;
		p->flags |= HTTP_F_CONTENT_LENGTH;
		break;
	case H_CONNECTION:
		connection_token_end(p);
		break;
	case H_TRANSFER_ENCODING:
		p->flags |= HTTP_F_TRANSFER_ENCODING;
		break;
	default:
		break;
	}
	p->header = H_GENERAL;
	return HPE_OK;
}

static void header_name_end(struct http_parser *p)
{
	if (tok_is(p, "connection"))
		p->header = H_CONNECTION;
	else if (tok_is(p, "content-length"))
		p->header = H_CONTENT_LENGTH;
	else if (tok_is(p, "transfer-encoding"))
		p->header = H_TRANSFER_ENCODING;
	else
		p->header = H_GENERAL;
	p->tok_len = 0;
	p->index = 0;
	p->value = 0;
}

void http_parser_init(struct http_parser *parser)
{
	memset(parser, 0, sizeof(*parser));
	parser->state = S_START;
}

bool http_should_keep_alive(const struct http_parser *parser)
{
	if (parser->flags & HTTP_F_TRANSFER_ENCODING)
		return false;
	if (parser->http_major == 1 && parser->http_minor >= 1)
		return !(parser->flags & HTTP_F_CONN_CLOSE);
	return (parser->flags & HTTP_F_CONN_KEEP_ALIVE) &&
	       !(parser->flags & HTTP_F_CONN_CLOSE);
}

#define CALLBACK(name)							\
	do {								\
		if (settings->name && settings->name(parser))		\
			goto callback_error;				\
	} while (0)

#define CALLBACK_DATA(name, from, to)					\
	do {								\
		if (settings->name && (to) > (from) &&			\
		    settings->name(parser, (from), (to) - (from)))	\
			goto callback_error;				\
	} while (0)

#define FAIL(code)							\
	do {								\
		err = (code);						\
		goto error;						\
	} while (0)

size_t http_parser_execute(struct http_parser *parser,
			   const struct http_parser_settings *settings,
			   const char *data, size_t len)
{
	const char *p = data;
	const char *end = data + len;
	const char *mark = NULL;
	enum http_errno err;

	if (parser->error)
		return 0;

	/* an element cut by the previous buffer continues here */
	if (parser->state == S_URL || parser->state == S_HEADER_FIELD ||
	    parser->state == S_HEADER_VALUE)
		mark = data;

	for (; p < end; p++) {
		unsigned char c = *p;

		if (parser->state == S_BODY) {
			size_t n = end - p;

			if (n > parser->body_left)
				n = parser->body_left;
			CALLBACK_DATA(on_body, p, p + n);
			parser->body_left -= n;
			p += n - 1;
			if (!parser->body_left)
				goto message_complete;
			continue;
		}

		if (++parser->head_bytes > HTTP_MAX_HEAD_SIZE)
			FAIL(HPE_HEAD_TOO_LARGE);

		switch (parser->state) {
		case S_START:
			if (c == '\r' || c == '\n')
				break;
			if (!is_tchar(c))
				FAIL(HPE_BAD_METHOD);
			parser->flags = 0;
			parser->method = HTTP_OTHER;
			parser->http_major = 0;
			parser->http_minor = 0;
			parser->content_length = 0;
			parser->header = H_GENERAL;
			parser->tok_len = 0;
			CALLBACK(on_message_begin);
			tok_add(parser, c);
			parser->state = S_METHOD;
			break;

		case S_METHOD:
			if (c == ' ') {
				if (parser->tok_len == TOK_OVERFLOW)
					FAIL(HPE_BAD_METHOD);
				parser->method = lookup_method(parser);
				parser->tok_len = 0;
				parser->state = S_URL_START;
			} else if (is_tchar(c)) {
				tok_add(parser, c);
			} else {
				FAIL(HPE_BAD_METHOD);
			}
			break;

		case S_URL_START:
			if (!is_url_char(c))
				FAIL(HPE_BAD_URL);
			mark = p;
			parser->state = S_URL;
			break;

		case S_URL:
			if (is_url_char(c))
				break;
			if (c != ' ')
				FAIL(HPE_BAD_URL);
			CALLBACK_DATA(on_url, mark, p);
			mark = NULL;
			parser->index = 0;
			parser->state = S_VERSION;
			break;

		case S_VERSION:
			if (c != "HTTP/"[parser->index])
				FAIL(HPE_BAD_VERSION);
			if (++parser->index == 5)
				parser->state = S_VERSION_MAJOR;
			break;

		case S_VERSION_MAJOR:
			if (c < '0' || c > '9')
				FAIL(HPE_BAD_VERSION);
			parser->http_major = c - '0';
			parser->state = S_VERSION_DOT;
			break;

		case S_VERSION_DOT:
			if (c != '.')
				FAIL(HPE_BAD_VERSION);
			parser->state = S_VERSION_MINOR;
			break;

		case S_VERSION_MINOR:
			if (c < '0' || c > '9')
				FAIL(HPE_BAD_VERSION);
			parser->http_minor = c - '0';
			parser->state = S_VERSION_END;
			break;

		case S_VERSION_END:
			/* only HTTP/1.x is spoken here */
			if (parser->http_major != 1)
				FAIL(HPE_BAD_VERSION);
			if (c == '\r')
				parser->state = S_REQ_LINE_LF;
			else if (c == '\n')
				parser->state = S_HEADER_START;
			else
				FAIL(HPE_BAD_VERSION);
			break;

		case S_REQ_LINE_LF:
			if (c != '\n')
				FAIL(HPE_BAD_VERSION);
			parser->state = S_HEADER_START;
			break;

		case S_HEADER_START:
			if (c == '\r') {
				parser->state = S_HEADERS_LF;
				break;
			}
			if (c == '\n')
				goto headers_complete;
			/* obs-fold (a line starting with SP/HTAB) is refused */
			if (!is_tchar(c))
				FAIL(HPE_BAD_HEADER);
			mark = p;
			parser->tok_len = 0;
			tok_add(parser, c);
			parser->state = S_HEADER_FIELD;
			break;

		case S_HEADER_FIELD:
			if (is_tchar(c)) {
				tok_add(parser, c);
				break;
			}
			if (c != ':')
				FAIL(HPE_BAD_HEADER);
			CALLBACK_DATA(on_header_field, mark, p);
			mark = NULL;
			header_name_end(parser);
			parser->state = S_HEADER_VALUE_START;
			break;

		case S_HEADER_VALUE_START:
			if (c == ' ' || c == '\t')
				break;
			if (c == '\r' || c == '\n') {
				err = header_value_end(parser);
				if (err)
					goto error;
				parser->state = c == '\r' ? S_HEADER_VALUE_LF :
							    S_HEADER_START;
				break;
			}
			if (!is_value_char(c))
				FAIL(HPE_BAD_HEADER);
			mark = p;
			parser->state = S_HEADER_VALUE;
			err = header_value_byte(parser, c);
			if (err)
				goto error;
			break;

		case S_HEADER_VALUE:
			if (c == '\r' || c == '\n') {
				CALLBACK_DATA(on_header_value, mark, p);
				mark = NULL;
				err = header_value_end(parser);
				if (err)
					goto error;
				parser->state = c == '\r' ? S_HEADER_VALUE_LF :
							    S_HEADER_START;
				break;
			}
			if (!is_value_char(c))
				FAIL(HPE_BAD_HEADER);
			err = header_value_byte(parser, c);
			if (err)
				goto error;
			break;

		case S_HEADER_VALUE_LF:
			if (c != '\n')
				FAIL(HPE_BAD_HEADER);
			parser->state = S_HEADER_START;
			break;

		case S_HEADERS_LF:
			if (c != '\n')
				FAIL(HPE_BAD_HEADER);
			goto headers_complete;

		default:
			FAIL(HPE_BAD_HEADER);
		}
		continue;

headers_complete:
		/* both framings at once is a request-smuggling vector */
		if ((parser->flags & HTTP_F_CONTENT_LENGTH) &&
		    (parser->flags & HTTP_F_TRANSFER_ENCODING))
			FAIL(HPE_BAD_CONTENT_LENGTH);
		CALLBACK(on_headers_complete);
		if (!(parser->flags & HTTP_F_TRANSFER_ENCODING) &&
		    parser->content_length) {
			parser->body_left = parser->content_length;
			parser->state = S_BODY;
			continue;
		}
message_complete:
		parser->state = S_START;
		parser->head_bytes = 0;
		CALLBACK(on_message_complete);
	}

	/* report the part of an element that this buffer holds */
	if (mark) {
		if (parser->state == S_URL)
			CALLBACK_DATA(on_url, mark, end);
		else if (parser->state == S_HEADER_FIELD)
			CALLBACK_DATA(on_header_field, mark, end);
		else if (parser->state == S_HEADER_VALUE)
			CALLBACK_DATA(on_header_value, mark, end);
	}
	return len;

callback_error:
	parser->error = HPE_CALLBACK;
	return p - data + (p < end);

error:
	parser->error = err;
	return p - data;
}
