#!/usr/bin/env python3
"""idle_conns.py HOST PORT PATH N [WARMUP] -- memory cost of idle connections.

Opens WARMUP connections (default 10), then reads this process's VmRSS,
opens N more, and reads VmRSS again.  Every connection sends one HTTP/1.1
keep-alive request for PATH and reads the whole response before the next
one is opened, so that a connection upgraded by tlsshim has finished its
handshake and is idle when it is counted.  All connections stay open until
the end.

Prints one line:  n=N rss_before_kib=A rss_after_kib=B per_conn_bytes=C
The warm-up connections keep one-off costs (loading the TLS engine, the CA,
the first full handshake, Python's own lazy imports) out of the difference.
Exits 1 if a connection or a request fails.
"""
import socket
import sys


def vmrss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def read_response(sock):
    """Read one HTTP/1.1 response with a Content-Length body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the response headers")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        raise RuntimeError("unexpected status line %r" % lines[0])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise RuntimeError("response without Content-Length")
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed in the response body")
        body += chunk


def open_one(host, port, request):
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(request)
    read_response(sock)
    return sock


def main():
    if len(sys.argv) not in (5, 6):
        sys.stderr.write(__doc__)
        return 2
    host, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    warmup = int(sys.argv[5]) if len(sys.argv) == 6 else 10
    request = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode()
    keep = []
    try:
        for _ in range(warmup):
            keep.append(open_one(host, port, request))
        before = vmrss_kib()
        for _ in range(n):
            keep.append(open_one(host, port, request))
        after = vmrss_kib()
    except (OSError, RuntimeError) as e:
        sys.stderr.write("idle_conns.py: connection %d: %s\n" % (len(keep) + 1, e))
        return 1
    print("n=%d rss_before_kib=%d rss_after_kib=%d per_conn_bytes=%.0f"
          % (n, before, after, (after - before) * 1024.0 / n))
    for s in keep:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
