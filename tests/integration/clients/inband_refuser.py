#!/usr/bin/env python3
"""inband_refuser.py pg|mysql PORTFILE LOG: a plain listener on 127.0.0.1
(ephemeral port written to PORTFILE) that plays a database server which
does not do TLS, and records every byte a client sends.

  pg     answers the first 8 bytes, if they are an SSLRequest, with "N"
         (what a PostgreSQL server with ssl = off answers);
  mysql  sends a MariaDB HandshakeV10 greeting whose capabilities lack
         CLIENT_SSL (what mariadbd --skip-ssl sends).

Then it reads until EOF (10 s at most) and appends one line to LOG:
    conn bytes=N hex=HEX
HEX is every byte received, in hex.  The tests use it to prove that only
tlsshim's own request (pg: the 8-byte SSLRequest; mysql: nothing) reached
a server that would not do TLS: nothing of the program's."""
import struct
import sys

from listener import append_line, listen, read_to_eof, serve_forever

SSLREQUEST = bytes.fromhex("0000000804d2162f")


def mysql_greeting():
    """A HandshakeV10 packet (sequence 0) without CLIENT_SSL (0x800)."""
    caps = 0x003ff7df & ~0x800          # protocol 4.1, secure conn, plugin auth...
    scramble = b"abcdefgh" + b"ijklmnopqrst"
    body = b"\x0a" + b"5.5.5-10.11.19-MariaDB\x00"
    body += struct.pack("<I", 42) + scramble[:8] + b"\x00"
    body += struct.pack("<H", caps & 0xffff) + b"\x2d" + struct.pack("<H", 2)
    body += struct.pack("<H", caps >> 16) + bytes([21]) + b"\x00" * 10
    body += scramble[8:] + b"\x00" + b"mysql_native_password\x00"
    return struct.pack("<I", len(body))[:3] + b"\x00" + body


def serve(c, mode):
    """Play MODE's opening on C, then return every byte received."""
    data = b""
    c.settimeout(10)
    try:
        if mode == "mysql":
            c.sendall(mysql_greeting())
        else:
            while len(data) < 8:
                d = c.recv(8 - len(data))
                if not d:
                    return data
                data += d
            if data == SSLREQUEST:
                c.sendall(b"N")
    except OSError:
        return data
    return read_to_eof(c, data)


def main():
    mode, portfile, log = sys.argv[1], sys.argv[2], sys.argv[3]

    def handle(c, _):
        data = serve(c, mode)
        c.close()
        append_line(log, "conn bytes=%d hex=%s" % (len(data), data.hex()))
    serve_forever(listen(portfile), handle)


main()
