#!/usr/bin/env python3
"""fork_client.py HOST PORT MODE: connect, then os.fork().  A TLS connection
can be used by one process only: whichever uses it first after the fork.

MODE parent-first: the parent sends its request and reads the answer; then
    the child (a helper a server forks) tries to send and receive: both must
    fail with EIO.
MODE child-first: the parent waits; the child (a program that connects and
    then daemonizes) sends its request and reads the answer; then the parent
    tries to send and receive: both must fail with EIO.
MODE child-close: the child closes its copy without using it and exits; the
    parent then uses the connection (the child's close must not end it).
Prints lines:
    user=parent|child status=STATUS-LINE sha256_out=HASH-OF-THE-REQUEST
    other send=ERRNO-NAME recv=ERRNO-NAME     (the process that came second)
Knows nothing about TLS."""
import errno
import hashlib
import os
import socket
import sys

host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=15)


def request(who):
    req = ("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (who, host)).encode()
    s.sendall(req)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    return "user=%s status=%s sha256_out=%s" % (
        who, data.split(b"\r\n")[0].decode(errors="replace"), hashlib.sha256(req).hexdigest())


def second_use():
    res = []
    try:
        s.send(b"SECOND PROCESS WROTE THIS\r\n")
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
    return "other " + " ".join(res)


go_r, go_w = os.pipe()      # parent -> child: "your turn"
out_r, out_w = os.pipe()    # child -> parent: what the child saw
pid = os.fork()
if pid == 0:
    os.close(go_w)
    os.close(out_r)
    if mode == "child-close":
        s.close()
        os.write(out_w, b"child closed its copy")
        os._exit(0)
    if mode == "parent-first":
        os.read(go_r, 1)                     # wait until the parent is done
        os.write(out_w, second_use().encode())
    else:
        os.write(out_w, request("child").encode())
    os._exit(0)

os.close(go_r)
os.close(out_w)
if mode == "parent-first":
    print(request("parent"), flush=True)
    os.write(go_w, b"x")
    os.waitpid(pid, 0)
    print(os.read(out_r, 1000).decode())
elif mode == "child-first":
    os.waitpid(pid, 0)
    print(os.read(out_r, 1000).decode(), flush=True)
    print(second_use())
else:
    os.waitpid(pid, 0)
    os.read(out_r, 1000)
    print(request("parent"))
