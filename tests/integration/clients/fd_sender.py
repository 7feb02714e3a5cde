#!/usr/bin/env python3
"""fd_sender.py PORTFILE RECEIVER ARGS... -- a privileged-acceptor
stand-in NOT under tlsshim: it listens on 127.0.0.1 (port written to
PORTFILE), starts RECEIVER ARGS... with one end of an AF_UNIX socketpair as
an inherited descriptor (each "@FD@" in ARGS becomes its number), accepts
one connection, waits until the client's first bytes (a TLS ClientHello)
are there, and passes the connection to the receiver with SCM_RIGHTS.  It
closes its own copy: the receiver alone holds the connection.  stderr:
  sender: passed a connection with N bytes queued
  sender: receiver status S"""
import fcntl
import select
import socket
import struct
import subprocess
import sys
import termios

import listener

portfile, argv = sys.argv[1], sys.argv[2:]
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
lst = listener.listen(None)
child = subprocess.Popen([a.replace("@FD@", str(theirs.fileno())) for a in argv],
                         pass_fds=[theirs.fileno()])
theirs.close()
listener.publish_port(lst, portfile)
conn, _ = lst.accept()
lst.close()
select.select([conn], [], [])
n = struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
socket.send_fds(ours, [b"c"], [conn.fileno()])
conn.close()
print("sender: passed a connection with %d bytes queued" % n, file=sys.stderr, flush=True)
print("sender: receiver status %d" % child.wait(), file=sys.stderr, flush=True)
