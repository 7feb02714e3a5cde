#!/usr/bin/env python3
"""record_server.py PORTFILE LOG [4|6]: a PLAIN TCP listener on 127.0.0.1
(or ::1 with "6"), ephemeral port written to PORTFILE.  For every
connection it reads until EOF (10 s at most) and appends one line to LOG:
    conn bytes=N tls=0|1 head=REPR
tls=1 when the first byte is 0x16 (a TLS handshake record); REPR is
Python's repr() of the first 40 bytes.  A connection that reaches it
carried whatever the client sent in clear: the tests use it as the
program's destination, which a rule upgrades to another port, to prove
that nothing arrived here."""
import os
import socket
import sys

portfile, log = sys.argv[1], sys.argv[2]
v6 = len(sys.argv) > 3 and sys.argv[3] == "6"
srv = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::1" if v6 else "127.0.0.1", 0))
srv.listen(16)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(portfile + ".tmp", portfile)

while True:
    c, _ = srv.accept()
    c.settimeout(10)
    data = b""
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    c.close()
    with open(log, "a") as f:
        f.write("conn bytes=%d tls=%d head=%r\n" % (len(data), data[:1] == b"\x16", data[:40]))
