#!/usr/bin/env python3
"""pg_asyncio.py HOST PORT USER APPNAME QUERY: a PostgreSQL client in
plaintext on asyncio's event loop (non-blocking sockets, epoll): the v3
StartupMessage, trust authentication, one simple Query.  Prints one line
per row, "row=" and the columns joined with "|", then exits 0; an
ErrorResponse prints "error=" and its message and exits 1.  It never asks
for SSL itself: under tlsshim, the rule's protocol = postgres does."""
import asyncio
import struct
import sys


async def message(reader):
    """One backend message: (type byte, body)."""
    head = await reader.readexactly(5)
    size = struct.unpack("!I", head[1:])[0]
    return head[:1], await reader.readexactly(size - 4)


def error_text(body):
    """The M (message) field of an ErrorResponse body."""
    for field in body.split(b"\x00"):
        if field[:1] == b"M":
            return field[1:].decode(errors="replace")
    return body.decode(errors="replace")


async def main(host, port, user, app, query):
    reader, writer = await asyncio.open_connection(host, int(port))
    params = b""
    for k, v in (("user", user), ("database", "postgres"), ("application_name", app)):
        params += k.encode() + b"\x00" + v.encode() + b"\x00"
    body = struct.pack("!I", 196608) + params + b"\x00"
    writer.write(struct.pack("!I", len(body) + 4) + body)
    sent = False
    while True:
        kind, body = await message(reader)
        if kind == b"E":
            print("error=" + error_text(body))
            return 1
        if kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
            print("error=authentication method %d" % struct.unpack("!I", body[:4])[0])
            return 1
        if kind == b"D":
            cols, off, vals = struct.unpack("!H", body[:2])[0], 2, []
            for _ in range(cols):
                n = struct.unpack("!i", body[off:off + 4])[0]
                off += 4
                vals.append("" if n < 0 else body[off:off + n].decode())
                off += max(n, 0)
            print("row=" + "|".join(vals))
        if kind == b"Z":
            if sent:
                break
            q = query.encode() + b"\x00"
            writer.write(b"Q" + struct.pack("!I", len(q) + 4) + q)
            sent = True
        await writer.drain()
    writer.write(b"X\x00\x00\x00\x04")
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    return 0


sys.exit(asyncio.run(main(*sys.argv[1:6])))
