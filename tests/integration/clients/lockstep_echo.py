#!/usr/bin/env python3
"""Single-threaded blocking client for an echo server: connect to
HOST:PORT, then for each CHUNK-byte piece of FILE: sendall it, read the same
number of bytes back, sleep PAUSE seconds.  Then shut down the write side
and read until EOF.  Prints "sent N SHA256" and "received N SHA256"; exits
1 on an error.  Knows nothing about TLS.

usage: lockstep_echo.py HOST PORT FILE CHUNK PAUSE"""
import hashlib
import socket
import sys
import time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
chunk, pause = int(sys.argv[4]), float(sys.argv[5])
tx, rx, nt, nr = hashlib.sha256(), hashlib.sha256(), 0, 0
try:
    with socket.create_connection((host, port), timeout=30) as s, open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            s.sendall(data)
            tx.update(data)
            nt += len(data)
            want = len(data)
            while want:
                got = s.recv(want)
                if not got:
                    raise OSError("EOF from the server in the middle of the echo")
                rx.update(got)
                nr += len(got)
                want -= len(got)
            time.sleep(pause)
        s.shutdown(socket.SHUT_WR)
        while True:
            got = s.recv(65536)
            if not got:
                break
            rx.update(got)
            nr += len(got)
    status = 0
except OSError as e:
    print("error:", e, file=sys.stderr)
    status = 1
print("sent", nt, tx.hexdigest())
print("received", nr, rx.hexdigest())
sys.exit(status)
