#!/usr/bin/env python3
"""selector_get.py select|poll HOST PORT PATH: one HTTP/1.1 GET over a
NON-BLOCKING socket driven by selectors.SelectSelector (select(2)) or
selectors.PollSelector (poll(2)): non-blocking connect (EINPROGRESS), wait
for writability, send with partial writes, read until EOF.  Prints
"STATUS-LINE", the body length and the body's sha256.  Knows nothing
about TLS."""
import errno
import hashlib
import selectors
import socket
import sys
import time

kind, host, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sel = selectors.SelectSelector() if kind == "select" else selectors.PollSelector()
deadline = time.monotonic() + 20

addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
rc = s.connect_ex(addr)
if rc not in (0, errno.EINPROGRESS):
    sys.exit("connect: " + errno.errorcode.get(rc, str(rc)))


def wait(events):
    sel.register(s, events)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit("timeout")
            if sel.select(left):
                return
    finally:
        sel.unregister(s)


wait(selectors.EVENT_WRITE)
err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
if err:
    sys.exit("connect failed: " + errno.errorcode.get(err, str(err)))

req = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode()
while req:
    try:
        n = s.send(req)
        req = req[n:]
    except BlockingIOError:
        wait(selectors.EVENT_WRITE)

data = bytearray()
while True:
    try:
        d = s.recv(65536)
    except BlockingIOError:
        wait(selectors.EVENT_READ)
        continue
    if not d:
        break
    data += d
s.close()
head, _, body = bytes(data).partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
print(len(body))
print(hashlib.sha256(body).hexdigest())
