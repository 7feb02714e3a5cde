#!/usr/bin/env python3
"""send_end.py HOST PORT SIZE MODE END: connect, send SIZE bytes of a known
pattern (byte i = i % 251, as pattern_sha256.py) with sendall, never read
anything, then end the way END says.  Prints "sent N SHA256" (flushed)
before ending.  Knows nothing about TLS.

MODE  block    a blocking socket
      timeout  settimeout(30): non-blocking underneath (poll + EAGAIN)
      nonblock a non-blocking socket with a small send buffer: send()
               until the first EAGAIN (or SIZE), so the end comes while
               the last write's bytes still wait; N is what send() took
END   _exit     os._exit(0): no close, no destructors
      _Exit     libc's _Exit(0) through ctypes
      exit      sys.exit(0) with the socket still open (the interpreter's
                finalisation may or may not close it)
      close     close(), then os._exit(0)
      shutdown  shutdown(SHUT_WR), then os._exit(0) (socat -u style)"""
import ctypes
import hashlib
import os
import socket
import sys

host, port, size, mode, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
s = socket.create_connection((host, port))
if mode == "timeout":
    s.settimeout(30)
elif mode == "nonblock":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    s.setblocking(False)
elif mode != "block":
    sys.exit("bad MODE " + mode)
block = bytes(i % 251 for i in range(251)) * 256
h = hashlib.sha256()
sent = 0
while sent < size:
    piece = block[(sent % 251):][:size - sent]
    if mode == "nonblock":
        try:
            n = s.send(piece)
        except BlockingIOError:
            break
    else:
        s.sendall(piece)
        n = len(piece)
    h.update(piece[:n])
    sent += n
sys.stdout.write("sent %d %s\n" % (sent, h.hexdigest()))
sys.stdout.flush()
if end == "_exit":
    os._exit(0)
elif end == "_Exit":
    ctypes.CDLL(None)._Exit(0)
elif end == "exit":
    keep = s  # still referenced: never closed by us
    sys.exit(0)
elif end == "close":
    s.close()
    os._exit(0)
elif end == "shutdown":
    s.shutdown(socket.SHUT_WR)
    os._exit(0)
else:
    sys.exit("bad END " + end)
