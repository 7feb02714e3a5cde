#!/usr/bin/env python3
"""fork_fresh.py HOST PORT: connections opened after fork() are the forked
process's own.  The parent makes one request; a child makes one; a
double-forked daemon (fork, setsid, fork, parent exits) makes one.  Each
prints "who=... status=STATUS-LINE".  Knows nothing about TLS."""
import os
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])


def get(who):
    s = socket.create_connection((host, port), timeout=15)
    s.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (who, host)).encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return "who=%s status=%s" % (who, data.split(b"\r\n")[0].decode(errors="replace"))


print(get("parent"), flush=True)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    line = get("child")
    # a daemon: fork, new session, fork again, the middle process exits
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            line += "\n" + get("daemon")
            os.write(w, line.encode())
            os._exit(0)
        os._exit(0)
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
out = b""
while True:
    d = os.read(r, 4096)
    if not d:
        break
    out += d
print(out.decode())
