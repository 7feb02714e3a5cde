#!/usr/bin/env python3
"""early_race.py HOST PORT ROUNDS: a first GET fetches a session ticket;
then ROUNDS connections, each shared by two threads on one blocking socket
(a connection that may use 0-RTT: its handshake waits for the first
write): a reader thread calls recv() first -- it runs the handshake and
then waits for the answer -- and the main thread writes the request a
moment later (0 to 5 ms, varied).  The server answers only after the
request, so a writer that waits for the reader never moves, and neither
does the reader.  Prints "ok N/ROUNDS"; a round stuck for 20 s prints
"stuck in round R" and exits 3.  Knows nothing about TLS."""
import os
import socket
import sys
import threading
import time

host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def request(path):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode()


def read_all(s, out):
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    out.append(data)


def one(path, delay):
    s = socket.create_connection((host, port))  # blocking
    got = []
    r = threading.Thread(target=read_all, args=(s, got))
    r.start()
    if delay:
        time.sleep(delay)
    s.sendall(request(path))
    r.join()
    s.close()
    return got and got[0].startswith(b"HTTP/1.1 200") and b"hello from tserver" in got[0]


state = {"round": 0, "done": threading.Event()}


def watchdog():
    last = -1
    while not state["done"].wait(20):
        if state["round"] == last:
            print("stuck in round %d" % last, flush=True)
            os._exit(3)
        last = state["round"]


threading.Thread(target=watchdog, daemon=True).start()
first = socket.create_connection((host, port))
first.sendall(request("/ticket"))
got = []
read_all(first, got)
first.close()
good = 0
for i in range(rounds):
    state["round"] = i
    if one("/r%d" % i, (i % 6) * 0.001):
        good += 1
state["done"].set()
print("ok %d/%d" % (good, rounds), flush=True)
sys.exit(0 if good == rounds else 1)
