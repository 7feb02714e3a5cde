#!/usr/bin/env python3
import os, resource, socket, sys, threading, time
host, port, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
s.connect((host, port))
data = bytes(i % 251 for i in range(1 << 20))
off = 0
while True:
    try:
        off += s.send(data[off:off + 65536], socket.MSG_DONTWAIT)
    except BlockingIOError:
        break
s.shutdown(socket.SHUT_WR)
d = socket.socket(fileno=os.dup(s.fileno()))
def reader():
    while d.recv(65536):
        pass
t = threading.Thread(target=reader, daemon=True)
t.start()
time.sleep(0.3)
s.close()
time.sleep(0.2)
open(gate, "w").close()
c0 = resource.getrusage(resource.RUSAGE_SELF)
t.join(5)
c1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
print("sent", off, "reader", "ended" if not t.is_alive() else "STILL BLOCKED", "cpu %.2fs in 5s" % cpu, flush=True)
sys.exit(0 if not t.is_alive() else 3)
