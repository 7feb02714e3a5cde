#!/usr/bin/env python3
"""shut_blocked.py HOST PORT GATE SIZE: one thread writes SIZE bytes (byte i
= i % 251) with one blocking sendall to a server that reads nothing until
the file GATE exists; once the bytes back up (the socket's send queue holds
more than 64 KiB) the main thread calls shutdown(SHUT_WR).  Prints lines:
  shutdown returned, writer blocked     shutdown() returned while the writer
                                        was still inside its write
  writer sent SIZE                      the write ended and took every byte
  write after shutdown: EPIPE
  eof                                   the server's close_notify was read
Only then does it create GATE (the server starts reading).  A shutdown()
that waits for the writer never returns: after 20 s a watchdog prints
"shutdown blocked" and exits 3.  Knows nothing about TLS."""
import fcntl
import os
import socket
import struct
import sys
import termios
import threading
import time

host, port, gate, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
data = bytes(i % 251 for i in range(251)) * (size // 251 + 1)
data = data[:size]
s = socket.create_connection((host, port))  # blocking: no timeout
result = {}


def writer():
    try:
        s.sendall(data)
        result["sent"] = len(data)
    except OSError as e:
        result["error"] = e


def outq():
    buf = fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def watchdog():
    if not shut_done.wait(20):
        print("shutdown blocked", flush=True)
        os._exit(3)


shut_done = threading.Event()
w = threading.Thread(target=writer)
w.start()
# The writer is inside its write once its bytes fill the send queue (the
# server reads nothing: they can only pile up, the write cannot end).
while outq() <= 65536:
    time.sleep(0.01)
threading.Thread(target=watchdog, daemon=True).start()
s.shutdown(socket.SHUT_WR)
shut_done.set()
print("shutdown returned, writer %s" % ("blocked" if w.is_alive() else "done"), flush=True)
open(gate, "w").close()
w.join()
print("writer %s" % (("sent %d" % result["sent"]) if "sent" in result else repr(result.get("error"))),
      flush=True)
try:
    s.send(b"x")
    print("write after shutdown: accepted")
except BrokenPipeError:
    print("write after shutdown: EPIPE")
except OSError as e:
    print("write after shutdown: %r" % e)
while True:
    b = s.recv(4096)
    if not b:
        print("eof", flush=True)
        break
s.close()
