#!/usr/bin/env python3
"""plain_server.py PORTFILE LOG: a PLAIN-TEXT TCP server on 127.0.0.1 (an
ephemeral port, written to PORTFILE).  For every connection it reads until
a blank line (end of an HTTP request head) or EOF, answers an HTTP request
with "HTTP/1.0 200 OK ... plain hello", and appends one line to LOG:
    conn bytes=N first_line=REPR
REPR is Python's repr() of the first line's bytes, so a TLS ClientHello
shows up as binary garbage.  Used to prove what tlsshim did NOT upgrade
(action = plain, unmatched destinations) or refused (action = deny)."""
import sys

from listener import append_line, listen, serve_forever

portfile, log = sys.argv[1], sys.argv[2]


def handle(c, _):
    """Read C's request head, answer a GET, log the connection."""
    c.settimeout(5)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    first = data.split(b"\r\n")[0] if data else b""
    if first.startswith(b"GET "):
        body = b"plain hello\n"
        try:
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                      % (len(body), body))
        except OSError:
            pass
    c.close()
    append_line(log, "conn bytes=%d first_line=%r" % (len(data), first))


serve_forever(listen(portfile), handle)
