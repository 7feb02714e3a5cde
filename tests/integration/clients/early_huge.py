#!/usr/bin/env python3
"""early_huge.py HOST PORT FILE: a 1st connection fetches a session ticket;
the 2nd, non-blocking, sends a 2 GiB first write (FILE, sparse, mapped
read-only: not counted in RLIMIT_DATA, which is 512 MiB here), then
shuts down and reads to the end.  A copy of the whole write would not fit
the limit.  Prints "send N"."""
import mmap, os, resource, select, socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
size = 2 << 30
with open(path, "wb") as f:
    f.truncate(size)
fd = os.open(path, os.O_RDONLY)
m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
first = socket.create_connection((host, port))
first.sendall(b"hello")
first.settimeout(1)
try:
    first.recv(1)
except socket.timeout:
    pass
first.close()
resource.setrlimit(resource.RLIMIT_DATA, (512 << 20, 512 << 20))
s = socket.create_connection((host, port))
s.setblocking(False)
n = s.send(memoryview(m))
print("send", n, flush=True)
s.shutdown(socket.SHUT_WR)
end = time.time() + 20
while time.time() < end:
    select.select([s], [], [], 1)
    try:
        if not s.recv(65536):
            break
    except BlockingIOError:
        pass
os.unlink(path)
