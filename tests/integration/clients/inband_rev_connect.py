#!/usr/bin/env python3
"""inband_rev_connect.py smtp|tcp PORT: a BLOCKING client (no socket
timeout) to 127.0.0.1:PORT, run under tlsshim; prints how its first
operation ended and how long it took:
    failed: REASON after=SECONDS      (exit 1)
    done: WHAT after=SECONDS          (exit 0)
  smtp  smtplib.SMTP(...) (connect and read the greeting), then EHLO;
  tcp   socket.create_connection(...), send a line, read an answer."""
import smtplib
import socket
import sys
import time


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    t0 = time.monotonic()
    try:
        if mode == "smtp":
            c = smtplib.SMTP("127.0.0.1", port)
            what = "greeting, EHLO %d" % c.ehlo()[0]
        else:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"hello\n")
            what = "read %d bytes" % len(s.recv(100))
    except (OSError, smtplib.SMTPException) as e:
        print("failed: %r after=%.2f" % (e, time.monotonic() - t0))
        return 1
    print("done: %s after=%.2f" % (what, time.monotonic() - t0))
    return 0


sys.exit(main())
