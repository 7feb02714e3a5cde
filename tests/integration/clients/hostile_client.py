#!/usr/bin/env python3
"""hostile_client.py STYLE HOST PORT MARKER -- a plain-TCP HTTP client that
reports exactly HOW its connection ended.  Knows nothing about TLS.

STYLE is "blocking" (socket.create_connection, sendall, recv loop) or
"asyncio" (non-blocking sockets on epoll).  It sends
"GET /MARKER HTTP/1.1" and reads until EOF or an error, then prints one line:

    result=eof stage=recv bytes=N elapsed=S            (a clean EOF)
    result=error stage=connect|send|recv errno=NAME bytes=N elapsed=S

bytes is how many response bytes were read before the end.  Exit status 0
for a clean EOF, 1 for an error (so a wrapper can tell them apart too).
"""
import asyncio
import errno
import socket
import sys
import time

style, host, port, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
REQUEST = ("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (marker, host)).encode()
t0 = time.monotonic()


def report(result, stage, exc, nbytes):
    name = "-"
    if exc is not None:
        e = getattr(exc, "errno", None)
        name = errno.errorcode.get(e, str(e)) if e is not None else type(exc).__name__
    print("result=%s stage=%s errno=%s bytes=%d elapsed=%.2f"
          % (result, stage, name, nbytes, time.monotonic() - t0), flush=True)
    sys.exit(0 if result == "eof" else 1)


def blocking():
    stage, got = "connect", 0
    try:
        s = socket.create_connection((host, port))
        stage = "send"
        s.sendall(REQUEST)
        stage = "recv"
        while True:
            d = s.recv(65536)
            if not d:
                report("eof", stage, None, got)
            got += len(d)
    except OSError as e:
        report("error", stage, e, got)


async def nonblocking():
    stage, got = "connect", 0
    try:
        reader, writer = await asyncio.open_connection(host, port)
        stage = "send"
        writer.write(REQUEST)
        await writer.drain()
        stage = "recv"
        while True:
            d = await reader.read(65536)
            if not d:
                report("eof", stage, None, got)
            got += len(d)
    except OSError as e:
        report("error", stage, e, got)


if style == "blocking":
    blocking()
else:
    asyncio.run(nonblocking())
