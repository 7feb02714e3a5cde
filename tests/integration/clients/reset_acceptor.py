#!/usr/bin/env python3
"""reset_acceptor.py PORTFILE CMD ARGS... -- an inetd-style acceptor NOT
under tlsshim: it listens on 127.0.0.1 (port written to PORTFILE), accepts
one connection and waits until the client has sent bytes and then reset
the connection (the socket has no peer any more: getpeername fails), before
it starts CMD with the socket as its stdin and stdout.  The handler's first
look at its inherited socket thus finds the client's bytes still queued
but no peer address.  One line per event on stderr:
  acceptor: reset seen, N bytes queued
  acceptor: handler status S"""
import fcntl
import select
import struct
import subprocess
import sys
import termios

import listener

portfile, argv = sys.argv[1], sys.argv[2:]
lst = listener.listen(portfile)
conn, _ = lst.accept()
lst.close()


def queued(sock):
    """Bytes waiting in SOCK's receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


# The reset: the kernel drops the peer (ENOTCONN); the bytes stay queued.
while True:
    try:
        conn.getpeername()
    except OSError:
        break
    select.select([], [], [], 0.05)
print("acceptor: reset seen, %d bytes queued" % queued(conn), file=sys.stderr, flush=True)
status = subprocess.run(argv, stdin=conn, stdout=conn).returncode
print("acceptor: handler status %d" % status, file=sys.stderr, flush=True)
