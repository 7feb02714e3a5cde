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
import sys

from listener import append_line, listen, read_to_eof, serve_forever

portfile, log = sys.argv[1], sys.argv[2]
v6 = len(sys.argv) > 3 and sys.argv[3] == "6"


def handle(c, _):
    """Read C to EOF (10 s at most) and log what came."""
    c.settimeout(10)
    data = read_to_eof(c)
    c.close()
    append_line(log, "conn bytes=%d tls=%d head=%r" % (len(data), data[:1] == b"\x16", data[:40]))


serve_forever(listen(portfile, "::1" if v6 else "127.0.0.1"), handle)
