#!/usr/bin/env python3
"""banner_client.py blocking|asyncio HOST PORT LINE: talk to a server that
speaks first.  Reads the banner line BEFORE writing anything, then sends
LINE + CRLF and reads the echoed line.  Prints the banner and the echo.
The asyncio variant only waits for readability (epoll) until the banner
arrives.  Knows nothing about TLS."""
import asyncio
import socket
import sys

mode, host, port, line = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def blocking():
    s = socket.create_connection((host, port), timeout=15)
    f = s.makefile("rb")
    banner = f.readline()
    s.sendall(line.encode() + b"\r\n")
    echo = f.readline()
    f.close()
    s.close()
    return banner, echo


async def aio():
    reader, writer = await asyncio.open_connection(host, port)
    banner = await asyncio.wait_for(reader.readline(), 15)
    writer.write(line.encode() + b"\r\n")
    await writer.drain()
    echo = await asyncio.wait_for(reader.readline(), 15)
    writer.close()
    await writer.wait_closed()
    return banner, echo


banner, echo = blocking() if mode == "blocking" else asyncio.run(aio())
print(banner.decode().rstrip("\r\n"))
print(echo.decode().rstrip("\r\n"))
