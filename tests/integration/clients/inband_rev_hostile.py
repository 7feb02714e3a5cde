#!/usr/bin/env python3
"""inband_rev_hostile.py MODE PORTFILE LOG: a hostile plain listener on
127.0.0.1 (ephemeral port written to PORTFILE) for inband_review.sh.  Each
connection runs in its own thread; when it ends, one line goes to LOG:
    conn mode=MODE got=HEX(what the client sent, first 64 bytes) end=eof|reset|hold

Modes:
  smtp-slow     an SMTP server that offers STARTTLS, answers the STARTTLS
                command with "220" only after 2.5 s, then stays silent
                (reads until the client goes, 30 s at most);
  smtp-refuse   an SMTP server that offers STARTTLS and answers the command
                with "454 4.7.0 TLS not available due to temporary reason";
  trickle       waits for the client's first bytes (a ClientHello), then
                sends the header of a 16384-byte TLS handshake record
                (16 03 03 40 00) and one byte of it every 100 ms, never
                finishing it (30 s at most)."""
import socket
import sys
import threading
import time

from listener import listen, serve_forever

mode, portfile, logfile = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()


def line(conn, got):
    """Read one line from CONN (bytes up to LF), appending to GOT[0]."""
    buf = b""
    while not buf.endswith(b"\n"):
        c = conn.recv(1)
        if not c:
            raise EOFError
        buf += c
    got[0] += buf
    return buf


def drain(conn, got, secs):
    """Read from CONN until EOF or SECS pass; return how it ended."""
    conn.settimeout(secs)
    try:
        while True:
            d = conn.recv(65536)
            if not d:
                return "eof"
            got[0] += d
    except socket.timeout:
        return "hold"


def smtp(conn, got):
    """The SMTP modes, up to the answer to STARTTLS."""
    conn.sendall(b"220 hostile.example ESMTP\r\n")
    line(conn, got)                     # EHLO
    conn.sendall(b"250-hostile.example\r\n250 STARTTLS\r\n")
    line(conn, got)                     # STARTTLS
    if mode == "smtp-refuse":
        conn.sendall(b"454 4.7.0 TLS not available due to temporary reason\r\n")
    else:
        time.sleep(2.5)
        conn.sendall(b"220 2.0.0 go ahead\r\n")


def trickle(conn, got):
    """Wait for the ClientHello, then trickle a record that never ends."""
    d = conn.recv(65536)
    if not d:
        raise EOFError
    got[0] += d
    conn.sendall(b"\x16\x03\x03\x40\x00")
    conn.setblocking(False)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        conn.sendall(b"\x02")
        time.sleep(0.1)
        try:
            d = conn.recv(65536)
        except BlockingIOError:
            continue
        if not d:
            raise EOFError
        got[0] += d


def serve(conn):
    """One connection, then its line in LOG."""
    got, end = [b""], "hold"
    try:
        if mode == "trickle":
            trickle(conn, got)
        else:
            smtp(conn, got)
            end = drain(conn, got, 30)
    except EOFError:
        end = "eof"
    except (ConnectionResetError, BrokenPipeError):
        end = "reset"
    finally:
        conn.close()
    with lock, open(logfile, "a") as f:
        f.write("conn mode=%s got=%s end=%s\n" % (mode, got[0][:64].hex() or "-", end))


def main():
    serve_forever(listen(portfile), lambda c, _: serve(c), threaded=True)


main()
