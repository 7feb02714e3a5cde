#!/usr/bin/env python3
"""Non-blocking client: asyncio (epoll selector) plain HTTP/1.1 GET of
http://HOST:PORT/PATH, N times in sequence, then M concurrently.  Prints the
bodies' first lines and the byte counts (and, for the sequential fetches,
a line "sha256 HEX" of each body).  Knows nothing about TLS."""
import asyncio
import hashlib
import sys


async def get(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()          # until EOF
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


async def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sequential = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    concurrent = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    for _ in range(sequential):
        status, body = await get(host, port, path)
        print(status, len(body), body.split(b"\n")[0].decode(errors="replace"))
        print("sha256", hashlib.sha256(body).hexdigest())
    if concurrent:
        results = await asyncio.gather(*(get(host, port, path) for _ in range(concurrent)))
        ok = sum(1 for status, _ in results if status.endswith("200 OK"))
        print(f"concurrent {ok}/{concurrent} ok, {sum(len(b) for _, b in results)} bytes")


asyncio.run(main())
