#!/usr/bin/env python3
"""Connect to HOST:PORT and print, as errno names, what the program sees:

  connect=NAME    blocking: connect()'s error (or OK);
                  nonblocking: connect() gives EINPROGRESS, then the
                  client waits (select) for writability and prints
                  getsockopt(SO_ERROR) (or OK)
  send=NAME       a send() on the same socket afterwards (or OK)

usage: connect_errno.py blocking|nonblocking HOST PORT"""
import errno
import select
import socket
import sys
import time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


def name(code):
    return errno.errorcode.get(code, str(code)) if code else "OK"


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if mode == "blocking":
    try:
        s.connect((host, port))
        print("connect=OK")
    except OSError as e:
        print("connect=%s" % name(e.errno))
else:
    s.setblocking(False)
    code = s.connect_ex((host, port))
    if code == errno.EINPROGRESS:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, w, _ = select.select([], [s], [], 1)
            if w:
                break
        code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    print("connect=%s" % name(code))
    s.setblocking(True)
try:
    s.send(b"GET / HTTP/1.0\r\n\r\n")
    print("send=OK")
except OSError as e:
    print("send=%s" % name(e.errno))
sys.stdout.flush()
