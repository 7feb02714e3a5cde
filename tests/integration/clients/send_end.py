#!/usr/bin/env python3
"""send_end.py HOST PORT SIZE MODE END: connect, send SIZE bytes of a known
pattern (byte i = i % 251, as pattern_sha256.py) with sendall, never read
anything, then end the way END says.  Prints "sent N SHA256" (flushed)
before ending.  Knows nothing about TLS.

MODE  block    a blocking socket
      timeout  settimeout(30): non-blocking underneath (poll + EAGAIN)
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
elif mode != "block":
    sys.exit("bad MODE " + mode)
block = bytes(i % 251 for i in range(251)) * 256
h = hashlib.sha256()
left = size
while left > 0:
    piece = block[:left]
    s.sendall(piece)
    h.update(piece)
    left -= len(piece)
sys.stdout.write("sent %d %s\n" % (size, h.hexdigest()))
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
