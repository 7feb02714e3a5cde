#!/usr/bin/env python3
"""Blocking client: connect to HOST:PORT, send FILE with sendall (in
CHUNK-byte pieces, default 65536), shut down the write side, and read
until EOF -- in a second thread, so an echoing server never blocks us.
Prints "sent N SHA256" and "received N SHA256" (and exits 1 if sending or
receiving failed).  Knows nothing about TLS.

With PAUSE (seconds), sleep that long after each chunk.

usage: upload.py HOST PORT FILE [CHUNK [PAUSE]]"""
import hashlib
import socket
import sys
import threading
import time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
chunk = int(sys.argv[4]) if len(sys.argv) > 4 else 65536
pause = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
s = socket.create_connection((host, port), timeout=30)
rx = {"n": 0, "h": hashlib.sha256(), "error": None}


def reader():
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
            rx["n"] += len(data)
            rx["h"].update(data)
    except OSError as e:
        rx["error"] = e


t = threading.Thread(target=reader)
t.start()
tx, n, tx_error = hashlib.sha256(), 0, None
try:
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            s.sendall(data)
            tx.update(data)
            n += len(data)
            if pause:
                time.sleep(pause)
    s.shutdown(socket.SHUT_WR)
except OSError as e:
    tx_error = e
t.join()
s.close()
print("sent", n, tx.hexdigest())
print("received", rx["n"], rx["h"].hexdigest())
if tx_error or rx["error"]:
    print("send error:", tx_error, "/ receive error:", rx["error"], file=sys.stderr)
    sys.exit(1)
