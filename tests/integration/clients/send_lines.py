#!/usr/bin/env python3
"""Blocking client: N times, connect to HOST:PORT, send MESSAGE (with "\\n"
and the connection number appended, in ONE sendall), wait WAIT seconds for
anything the server says, then close.  Prints "sent N" per connection.
Knows nothing about TLS.

usage: send_lines.py HOST PORT N MESSAGE [WAIT]"""
import socket
import sys

host, port, count, message = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
wait = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
for i in range(1, count + 1):
    with socket.create_connection((host, port), timeout=20) as s:
        data = f"{message} {i}\n".encode()
        s.sendall(data)
        s.settimeout(wait)
        try:
            s.recv(4096)
        except socket.timeout:
            pass
        print("sent", len(data), flush=True)
