#!/usr/bin/env python3
"""vectors_client.py HOST PORT MODE -- scatter/gather writes through tlsshim.

Writes three vectors of buffers, each three times, with os.writev (MODE
writev) or socket.sendmsg (sendmsg, nonblock), resuming after a short
write exactly where it stopped.  The vectors: buffers of mixed sizes with
empty ones among them (records span buffers, buffers span records), 64
small buffers (one record gathers many), and a header before a 300 KB body.
nonblock: a non-blocking socket with a small send buffer; on EAGAIN it waits for POLLOUT and writes
the SAME remaining vector again (what POSIX programs do).  Prints
"sent=N sha256=HEX eagain=K" and exits 0 after a clean close."""
import hashlib
import os
import select
import socket
import sys

PATTERN = bytes(range(251)) * 1300


def make(sizes, seed):
    out = []
    for i, n in enumerate(sizes):
        start = (seed * 37 + i * 11) % 251
        out.append(PATTERN[start:start + n])
    return out


def advance(vec, n):
    """The vector VEC without its first N bytes."""
    out = []
    for b in vec:
        if n >= len(b):
            n -= len(b)
            continue
        out.append(b[n:])
        n = 0
    return out


def write_all(sock, vec, mode, stats):
    while any(vec):
        try:
            if mode == "writev":
                n = os.writev(sock.fileno(), vec)
            else:
                n = sock.sendmsg(vec)
        except BlockingIOError:
            stats["eagain"] += 1
            select.select([], [sock], [], 60)
            continue
        vec = advance(vec, n)


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    shapes = [
        [0, 1, 100, 0, 16384, 16385, 5, 70000, 3, 0, 200000, 16283, 101, 7],
        [300] * 64,
        [100, 300000],
    ]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if mode == "nonblock":
        # A small send buffer: the writes meet EAGAIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.connect((host, port))
    if mode == "nonblock":
        sock.setblocking(False)
    digest, sent, stats = hashlib.sha256(), 0, {"eagain": 0}
    for rnd in range(3):
        for k, sizes in enumerate(shapes):
            vec = make(sizes, rnd * 3 + k)
            for b in vec:
                digest.update(b)
                sent += len(b)
            write_all(sock, vec, mode, stats)
    sock.setblocking(True)
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)
    sock.close()
    print("sent=%d sha256=%s eagain=%d" % (sent, digest.hexdigest(), stats["eagain"]))


main()
