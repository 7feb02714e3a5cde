"""epoll_many.py - an upgraded socket registered in the program's 65th epoll
instance (past the 64 the library notes by number); that instance is closed
and a new one takes its number.  The new instance must report only what the
program registered in it, never the old instance's registration.

Prints one line per fact, "key=value"; exits 0 when it got that far."""
import os
import select
import socket
import sys

# 64 instances in use (the library notes an instance at its first
# epoll_ctl), each watching one end of a pipe.
keep = [select.epoll() for _ in range(64)]
pr, pw = os.pipe()
for k in keep:
    k.register(pr, select.EPOLLIN)
ep = select.epoll()
old_no = ep.fileno()

s = socket.create_connection(("localhost", 18080), timeout=10)
s.setblocking(False)
ep.register(s.fileno(), select.EPOLLIN)
s.send(b"GET /many HTTP/1.0\r\nHost: localhost\r\n\r\n")
ready = []
for _ in range(100):
    ready = ep.poll(0.1)
    if ready:
        break
print("first_ready=%s" % ",".join(str(fd) for fd, _ in ready))
# Read a little: the rest of the record stays decrypted in the library,
# so the socket is readable without the kernel saying so.
head = s.recv(5)
ep.close()

fresh = select.epoll()
print("same_number=%d" % (fresh.fileno() == old_no))
r, w = os.pipe()
fresh.register(r, select.EPOLLIN)
got = fresh.poll(0.3)
print("fresh_events=%s" % ",".join("%d:%d" % (fd, ev) for fd, ev in got))
print("foreign=%d" % any(fd != r for fd, _ in got))

s.setblocking(True)
data = head
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("response=%s" % data.split(b"\r\n", 1)[0].decode())
sys.exit(0)
