#!/usr/bin/env python3
"""early_tail.py HOST PORT BYTES GATE: a first connection fetches a session
ticket (sends "hello", waits up to 1 s for a byte that never comes: the
server's tickets are read meanwhile, then closes); the second one, on
a blocking socket with a small SO_SNDBUF, writes BYTES of a pattern (byte
i = i % 251) with send(), under a SIGALRM every 20 ms whose handler (no
SA_RESTART: Python retries after EINTR itself) creates the file GATE --
the server reads nothing of a connection until it exists.  Then it
half-closes and reads to the end.  Its first write may go as 0-RTT; a
server that rejects it must still get every byte once, in order.  Prints
"sent=N ticks=N".  Knows nothing about TLS."""
import signal
import socket
import sys

host, port, total, gate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ticks = 0


def tick(signum, frame):
    global ticks
    ticks += 1
    if ticks == 1:
        open(gate, "w").close()


def finish(s):
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()


first = socket.create_connection((host, port))
first.sendall(b"hello")
first.settimeout(1)
try:
    first.recv(1)
except socket.timeout:
    pass
first.close()

data = bytes(i % 251 for i in range(total))
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
s.connect((host, port))
signal.signal(signal.SIGALRM, tick)
signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
off = 0
while off < total:
    off += s.send(data[off:off + 65536])
signal.setitimer(signal.ITIMER_REAL, 0, 0)
finish(s)
print("sent=%d ticks=%d" % (off, ticks), flush=True)
