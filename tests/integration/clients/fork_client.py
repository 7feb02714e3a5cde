#!/usr/bin/env python3
"""fork_client.py HOST PORT [close]: connect, then os.fork().  The child
tries to send and to receive on the inherited socket (a TLS connection
belongs to ONE process: both must fail with EIO), with "close" also closes
its copy (which must not end the parent's connection), and exits.  The parent waits for the
child, then sends an HTTP request and reads the answer.  Prints:
    child send=ERRNO-NAME recv=ERRNO-NAME
    parent status=STATUS-LINE
    parent sha256_out=HASH-OF-THE-REQUEST-BYTES
Knows nothing about TLS."""
import errno
import hashlib
import os
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=15)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    res = []
    try:
        s.send(b"CHILD WROTE THIS\r\n")
        res.append("send=ok")
    except OSError as e:
        res.append("send=" + errno.errorcode.get(e.errno, str(e.errno)))
    s.settimeout(2)
    try:
        d = s.recv(100)
        res.append("recv=ok:%r" % d)
    except socket.timeout:
        res.append("recv=timeout")
    except OSError as e:
        res.append("recv=" + errno.errorcode.get(e.errno, str(e.errno)))
    if len(sys.argv) > 3 and sys.argv[3] == "close":
        s.close()
        res.append("closed")
    os.write(w, " ".join(res).encode())
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
child = os.read(r, 1000).decode()
print("child", child)

req = ("GET /parent HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode()
s.sendall(req)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
s.close()
print("parent status=" + data.split(b"\r\n")[0].decode(errors="replace"))
print("parent sha256_out=" + hashlib.sha256(req).hexdigest())
