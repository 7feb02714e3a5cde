#!/usr/bin/env python3
"""plain_server.py PORTFILE LOG: a PLAIN-TEXT TCP server on 127.0.0.1 (an
ephemeral port, written to PORTFILE).  For every connection it reads until
a blank line (end of an HTTP request head) or EOF, answers an HTTP request
with "HTTP/1.0 200 OK ... plain hello", and appends one line to LOG:
    conn bytes=N first_line=REPR
REPR is Python's repr() of the first line's bytes, so a TLS ClientHello
shows up as binary garbage.  Used to prove what tlsshim did NOT upgrade
(action = plain, unmatched destinations) or refused (action = deny)."""
import os
import socket
import sys

portfile, log = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(portfile + ".tmp", portfile)

while True:
    c, _ = srv.accept()
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
    with open(log, "a") as f:
        f.write("conn bytes=%d first_line=%r\n" % (len(data), first))
