"""The exact bytes khttpd must send, written out literally once for every test module.

They are spelled out here rather than taken from ``khttpd_py.http`` so that a
change to the response builder cannot silently change what the tests expect.
"""

OK_CLOSE = (
    b"HTTP/1.1 200 OK\r\nServer: khttpd\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 12\r\nConnection: Close\r\n\r\nHello World!"
)
OK_KEEPALIVE = OK_CLOSE.replace(b"Connection: Close", b"Connection: Keep-Alive")
NOT_IMPLEMENTED_CLOSE = (
    b"HTTP/1.1 501 Not Implemented\r\nServer: khttpd\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 19\r\nConnection: Close\r\n\r\n501 Not Implemented"
)
NOT_IMPLEMENTED_KEEPALIVE = NOT_IMPLEMENTED_CLOSE.replace(
    b"Connection: Close", b"Connection: Keep-Alive"
)
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nServer: khttpd\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 15\r\nConnection: Close\r\n\r\n400 Bad Request"
)
