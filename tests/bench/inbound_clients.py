#!/usr/bin/env python3
"""inbound_clients.py -- the Python clients of the inbound benchmark.

  inbound_clients.py probe HOST PORT CA
      Two HTTPS requests for /small on two TLS connections, the second one
      offering the first one's session.  Prints one line:
        "VERSION CIPHER verified second=resumed|full"
      (the certificate is verified against CA for the name "localhost").
      Tells whether a server arm resumes at all.

  inbound_clients.py idle HOST PORT PATH N PIDS [CA [WARMUP]]
      Opens WARMUP connections (default 10), reads the memory of the server
      processes PIDS (comma-separated), opens N more, waits 0.5 s, reads the
      memory again.  With CA every connection is TLS (verified, SNI
      "localhost"), otherwise plain.  Every connection sends one HTTP/1.1
      keep-alive request for PATH and reads the whole response before the
      next one is opened, so it is idle (handshake done, tickets received)
      when it is counted.  Prints one line:
        n=N pss_kib=BEFORE,AFTER rss_kib=BEFORE,AFTER
        per_conn_pss_bytes=P per_conn_rss_bytes=R
      (Pss and Rss summed over PIDS, from /proc/PID/smaps_rollup.)
      Exits 1 if a connection or a request fails.
"""
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle_conns import read_response  # noqa: E402 (one HTTP response reader for both benches)


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def open_one(host, port, request, ctx, session=None):
    sock = socket.create_connection((host, port), timeout=30)
    if ctx is not None:
        sock = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
    sock.sendall(request)
    read_response(sock)
    return sock


def request_for(path):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode()


def probe(host, port, ca):
    ctx = tls_context(ca)
    req = request_for("/small")
    first = open_one(host, port, req, ctx)
    version, cipher = first.version(), first.cipher()[0]
    session = first.session
    first.close()
    second = open_one(host, port, req, ctx, session=session)
    resumed = second.session_reused
    second.close()
    print("%s %s verified second=%s" % (version, cipher, "resumed" if resumed else "full"))
    return 0


def memory_kib(pids):
    """(Pss, Rss) in KiB summed over PIDS."""
    pss = rss = 0
    for pid in pids:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
    return pss, rss


def idle(args):
    host, port, path, n = args[0], int(args[1]), args[2], int(args[3])
    pids = [int(p) for p in args[4].split(",") if p]
    ctx = tls_context(args[5]) if len(args) > 5 and args[5] else None
    warmup = int(args[6]) if len(args) > 6 else 10
    req = request_for(path)
    keep = []
    try:
        for _ in range(warmup):
            keep.append(open_one(host, port, req, ctx))
        time.sleep(0.5)
        pss0, rss0 = memory_kib(pids)
        for _ in range(n):
            keep.append(open_one(host, port, req, ctx))
        time.sleep(0.5)
        pss1, rss1 = memory_kib(pids)
    except (OSError, RuntimeError, ssl.SSLError) as e:
        sys.stderr.write("inbound_clients.py: connection %d: %s\n" % (len(keep) + 1, e))
        return 1
    print("n=%d pss_kib=%d,%d rss_kib=%d,%d per_conn_pss_bytes=%.0f per_conn_rss_bytes=%.0f"
          % (n, pss0, pss1, rss0, rss1, (pss1 - pss0) * 1024.0 / n, (rss1 - rss0) * 1024.0 / n))
    for s in keep:
        s.close()
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "probe":
        try:
            return probe(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        except (OSError, RuntimeError, ssl.SSLError) as e:
            sys.stderr.write("inbound_clients.py: probe %s:%s: %s\n" % (sys.argv[2], sys.argv[3], e))
            return 1
    if len(sys.argv) in (7, 8, 9) and sys.argv[1] == "idle":
        return idle(sys.argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
