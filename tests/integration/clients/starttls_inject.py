#!/usr/bin/env python3
"""starttls_inject.py -- a hostile SMTP server: plaintext after its 220
reply to STARTTLS (the CVE-2011-0411 kind of injection), in one write.

usage: starttls_inject.py PORTFILE LOG MODE

MODE: mail   "220 go ahead\\r\\nMAIL FROM:<evil@example.test>\\r\\n"
      reply  "220 ok\\r\\n250 injected\\r\\n"
      clean  "220 go ahead\\r\\n" (the control: nothing injected)

Listens on 127.0.0.1 (a free port, written to PORTFILE), greets with 220,
answers EHLO with 250 STARTTLS, answers STARTTLS per MODE, then records
what the client sends after that reply, until it closes (or 10 s
pass, or 5 bytes came).  One line per connection, appended to LOG:
  conn cmds=EHLO,STARTTLS after=N first=HEX16 hello=yes|no end=eof|data|timeout
after: bytes received after the reply; first: their first 16 bytes in hex;
hello: they begin with a TLS handshake record (16 03), a ClientHello."""

import socket
import sys

from listener import append_line, listen, serve_forever

REPLIES = {
    "mail": b"220 go ahead\r\nMAIL FROM:<evil@example.test>\r\n",
    "reply": b"220 ok\r\n250 injected\r\n",
    "clean": b"220 go ahead\r\n",
}


def read_line(conn):
    """One CRLF line from CONN (bytes, without the line end), or None."""
    data = b""
    while not data.endswith(b"\n"):
        b = conn.recv(1)
        if not b:
            return None
        data += b
        if len(data) > 2048:
            return None
    return data.rstrip(b"\r\n")


def after(conn):
    """What CONN sends until it closes, or 10 s pass, or 5 bytes came (a
    record header: enough to tell a ClientHello; then we close)."""
    got = b""
    conn.settimeout(10)
    try:
        while True:
            b = conn.recv(4096)
            if not b:
                return got, "eof"
            got += b
            if len(got) >= 5:
                return got, "data"
    except socket.timeout:
        return got, "timeout"
    except OSError:
        return got, "reset"


def serve(conn, reply):
    """One client; returns its log line."""
    cmds = []
    conn.sendall(b"220 evil.test ESMTP\r\n")
    while True:
        line = read_line(conn)
        if line is None:
            return "conn cmds=%s after=0 first= hello=no end=eof" % ",".join(cmds)
        verb = line.split(b" ")[0].decode(errors="replace").upper()
        cmds.append(verb)
        if verb in ("EHLO", "HELO"):
            conn.sendall(b"250-evil.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        elif verb == "STARTTLS":
            conn.sendall(reply)
            got, end = after(conn)
            return "conn cmds=%s after=%d first=%s hello=%s end=%s" % (
                ",".join(cmds), len(got), got[:16].hex(),
                "yes" if got[:2] == b"\x16\x03" else "no", end)
        else:
            conn.sendall(b"530 STARTTLS first\r\n")


def main():
    portfile, log, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    reply = REPLIES[mode]

    def handle(conn, _):
        try:
            line = serve(conn, reply)
        except OSError as e:
            line = "conn error=%s" % e
        conn.close()
        append_line(log, line)
    serve_forever(listen(portfile, backlog=8), handle)


if __name__ == "__main__":
    main()
