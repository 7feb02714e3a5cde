#!/usr/bin/env python3
"""listen_fds_server.py LOG -- a plaintext server started by socket
activation (systemd Accept=no, systemd-socket-activate without --accept):
its listening socket is descriptor 3 ($LISTEN_FDS = 1).  It accepts one
connection, reads one line, answers "hello LINE" and writes
"peer=ADDR:PORT line=LINE" to LOG."""
import os
import socket
import sys

if os.environ.get("LISTEN_FDS") != "1" or os.environ.get("LISTEN_PID") != str(os.getpid()):
    sys.exit("not socket-activated (LISTEN_FDS=%r)" % os.environ.get("LISTEN_FDS"))
lst = socket.socket(fileno=3)
conn, addr = lst.accept()
f = conn.makefile("rwb")
line = f.readline().rstrip(b"\r\n").decode(errors="replace")
with open(sys.argv[1], "a") as log:
    log.write("peer=%s:%d line=%s\n" % (addr[0], addr[1], line))
f.write(b"hello " + line.encode() + b"\n")
f.flush()
f.close()
conn.close()
