#!/usr/bin/env python3
"""load_client.py concurrent HOST PORT N
   load_client.py soak HOST PORT N [WARMUP [NODELAY]]
   load_client.py soakfail HOST PORT N [WARMUP]

Plain-TCP HTTP/1.1 clients (they know nothing about TLS) for load tests.

concurrent: ONE process, asyncio (epoll): open N connections at once, wait
  until all N are connected (so that N are open at the same time), then on
  each send "GET /load/I" and read the answer until EOF.  No semaphore: all
  N are in flight together.  Prints
      connected C/N peak_fds F
      done OK/N errors E [first error ...] elapsed S
  and exits 0 only if all N answered "200 OK" with tserver's body.

soak: N sequential connections in one process (socket.create_connection,
  sendall, recv until EOF, close).  After WARMUP (default 100) connections
  and at the end it measures its open fds (/proc/self/fd) and RSS (VmRSS in
  /proc/self/status) and prints
      warm fds F rss_kb R
      end fds F rss_kb R
      done OK/N errors E elapsed S
  exiting 0 only if every request got "200 OK".  NODELAY=1 sets TCP_NODELAY
  on each socket before connect() (see load.sh for why).

soakfail: like soak, but every connection is expected to FAIL (an OSError
  at connect, send or recv): checks that error paths do not leak.  Prints
  the same warm/end lines and "done failed F/N ok O first ERROR elapsed S";
  exits 0 only if all N failed.
"""
import asyncio
import os
import socket
import sys
import time

BODY_MARK = b"hello from "      # tserver and nginx both say "hello from ..."


def nfds():
    return len(os.listdir("/proc/self/fd"))


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def request(host, i):
    return ("GET /load/%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (i, host)).encode()


def good(data):
    return data.startswith(b"HTTP/1.1 200 OK") and BODY_MARK in data


async def concurrent(host, port, n):
    all_connected = asyncio.Event()
    connected = 0
    settled = 0
    peak = 0

    def settle():
        nonlocal settled, peak
        settled += 1
        if settled == n:
            peak = nfds()
            all_connected.set()

    async def one(i):
        nonlocal connected
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except Exception:
            settle()
            raise
        connected += 1
        settle()
        await all_connected.wait()
        try:
            writer.write(request(host, i))
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        if not good(data):
            raise RuntimeError("bad answer %r" % data[:60])
        return True

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    await all_connected.wait()
    print("connected %d/%d peak_fds %d" % (connected, n, peak), flush=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errs = [r for r in results if r is not True]
    okn = n - len(errs)
    msg = "done %d/%d errors %d" % (okn, n, len(errs))
    if errs:
        kinds = {}
        for e in errs:
            kinds[repr(e)[:80]] = kinds.get(repr(e)[:80], 0) + 1
        msg += " " + "; ".join("%dx %s" % (c, k) for k, c in sorted(kinds.items(), key=lambda x: -x[1])[:3])
    print(msg + " elapsed %.2f" % (time.monotonic() - t0), flush=True)
    return 0 if okn == n else 1


def soak(host, port, n, warmup, nodelay=False):
    t0 = time.monotonic()
    okn = errs = 0
    first_err = None
    for i in range(n):
        try:
            if nodelay:
                s = socket.socket()
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    s.connect((host, port))
                except OSError:
                    s.close()
                    raise
            else:
                s = socket.create_connection((host, port))
            try:
                s.sendall(request(host, i))
                chunks = []
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    chunks.append(d)
            finally:
                s.close()
            if good(b"".join(chunks)):
                okn += 1
            else:
                errs += 1
        except OSError as e:
            errs += 1
            first_err = first_err or "%d: %r" % (i, e)
        if i + 1 == warmup:
            print("warm fds %d rss_kb %d" % (nfds(), rss_kb()), flush=True)
    print("end fds %d rss_kb %d" % (nfds(), rss_kb()), flush=True)
    print("done %d/%d errors %d%s elapsed %.3f" % (okn, n, errs,
          " first %s" % first_err if first_err else "", time.monotonic() - t0), flush=True)
    return 0 if okn == n else 1


def soakfail(host, port, n, warmup):
    t0 = time.monotonic()
    failed = okn = 0
    first_err = None
    for i in range(n):
        s = None
        try:
            s = socket.create_connection((host, port))
            s.sendall(request(host, i))
            while s.recv(65536):
                pass
            okn += 1
        except OSError as e:
            failed += 1
            first_err = first_err or repr(e)
        finally:
            if s is not None:
                s.close()
        if i + 1 == warmup:
            print("warm fds %d rss_kb %d" % (nfds(), rss_kb()), flush=True)
    print("end fds %d rss_kb %d" % (nfds(), rss_kb()), flush=True)
    print("done failed %d/%d ok %d first %s elapsed %.2f"
          % (failed, n, okn, first_err, time.monotonic() - t0), flush=True)
    return 0 if failed == n else 1


def main():
    mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "concurrent":
        return asyncio.run(concurrent(host, port, n))
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    if mode == "soakfail":
        return soakfail(host, port, n, warmup)
    nodelay = len(sys.argv) > 6 and sys.argv[6] == "1"
    return soak(host, port, n, warmup, nodelay)


sys.exit(main())
