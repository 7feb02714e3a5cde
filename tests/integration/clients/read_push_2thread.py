#!/usr/bin/env python3
"""rv_2thread_nb.py HOST PORT GATE: blocking socket, small SO_SNDBUF; a reader
thread blocks in recv() from the start; the main thread writes with
MSG_DONTWAIT until EAGAIN (the server reads nothing until GATE exists),
shutdown(SHUT_WR), creates GATE, then waits 10 s at most for the reader to
see the server's end."""
import os, socket, sys, threading, time
host, port, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
s.connect((host, port))
def reader():
    while s.recv(65536):
        pass
t = threading.Thread(target=reader, daemon=True)
t.start()
time.sleep(0.2)
data = bytes(i % 251 for i in range(1 << 20))
off = 0
while True:
    try:
        off += s.send(data[off:off + 65536], socket.MSG_DONTWAIT)
    except BlockingIOError:
        break
print("sent", off, flush=True)
s.shutdown(socket.SHUT_WR)
open(gate, "w").close()
print("shutdown done, gate open", flush=True)
t.join(10)
print("reader ended" if not t.is_alive() else "HANG: reader still blocked 10 s after shutdown", flush=True)
sys.exit(0 if not t.is_alive() else 3)
