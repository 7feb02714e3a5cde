#!/usr/bin/env python3
"""inbound_client.py -- a TLS client for the inbound tests (the server runs
under tlsshim; this client is NOT).  It verifies the server's certificate
against --ca with the host name --name, and reports what it saw, one
key=value per line on stdout:

    local=ADDR:PORT        its own address (compare with the daemon's log)
    version=TLSv1.3        the negotiated version
    cipher=NAME
    verified=yes           (only printed once verification passed)

then, by mode:
    --send TEXT            send TEXT (backslash escapes: \\r\\n), then print
                           every line received until EOF as reply=LINE
    --banner N             open N connections, read one banner line on each
                           (all N stay open: the daemon serves them at once),
                           then on each, last first, send "echo K" and read
                           the echo; prints banner.K=LINE and echo.K=LINE;
                           ends each with close_notify
    --stall FILE           plain TCP: send the first --stall-bytes (40; 0:
                           nothing) bytes of a real ClientHello, write
                           "ADDR:PORT" to FILE, then wait (up to --wait
                           seconds, 20) for the server to close; prints
                           closed=eof|reset|timeout
Options: --source ADDR (bind before connecting), --tls12 (offer TLS 1.2
only), --timeout SECS (socket timeout, default 10).
Exit 0 on success, 2 on a TLS or socket error (printed as error=...).
"""
import argparse
import codecs
import os
import socket
import ssl
import sys


def tcp(args):
    """A connected TCP socket from args.source (port 0) to host:port."""
    src = (args.source, 0) if args.source else None
    return socket.create_connection((args.host, args.port), timeout=args.timeout,
                                    source_address=src)


def tls(args):
    """A TLS connection, verified; prints local/version/cipher/verified."""
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.tls12:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    t = tcp(args)
    a = t.getsockname()
    print("local=%s:%d" % (a[0], a[1]), flush=True)
    s = ctx.wrap_socket(t, server_hostname=args.name)
    print("version=%s" % s.version())
    print("cipher=%s" % s.cipher()[0])
    print("verified=yes", flush=True)
    return s


def lines(f):
    """Lines of the file f until EOF, without line ends."""
    for raw in f:
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


def do_send(args):
    s = tls(args)
    s.sendall(codecs.decode(args.send, "unicode_escape").encode("latin-1"))
    for line in lines(s.makefile("rb")):
        print("reply=%s" % line)


def do_banner(args):
    conns = []
    for k in range(args.banner):
        s = tls(args)
        f = s.makefile("rb")
        print("banner.%d=%s" % (k, f.readline().decode().rstrip("\r\n")), flush=True)
        conns.append((s, f))
    for k in reversed(range(args.banner)):
        s, f = conns[k]
        s.sendall(b"echo %d\r\n" % k)
        print("echo.%d=%s" % (k, f.readline().decode().rstrip("\r\n")), flush=True)
    for s, f in conns:
        f.close()
        s.unwrap().close()      # close_notify: the daemon reads a clean EOF


def client_hello(args):
    """The bytes of a real TLS ClientHello for args.name."""
    ctx = ssl.create_default_context(cafile=args.ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=args.name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def do_stall(args):
    hello = client_hello(args)
    s = tcp(args)
    if args.stall_bytes > 0:
        s.sendall(hello[:args.stall_bytes])
    a = s.getsockname()
    with open(args.stall + ".tmp", "w") as f:
        f.write("%s:%d\n" % (a[0], a[1]))
    os.rename(args.stall + ".tmp", args.stall)
    s.settimeout(args.wait)
    try:
        data = s.recv(4096)
        print("closed=eof" if not data else "closed=data:%r" % data[:40])
    except ConnectionResetError:
        print("closed=reset")
    except socket.timeout:
        print("closed=timeout")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--ca", required=True)
    p.add_argument("--name", default="localhost")
    p.add_argument("--source")
    p.add_argument("--tls12", action="store_true")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--wait", type=float, default=20)
    m = p.add_mutually_exclusive_group(required=True)
    m.add_argument("--send")
    m.add_argument("--banner", type=int)
    m.add_argument("--stall")
    p.add_argument("--stall-bytes", type=int, default=40)
    args = p.parse_args()
    try:
        if args.send is not None:
            do_send(args)
        elif args.banner is not None:
            do_banner(args)
        else:
            do_stall(args)
    except (OSError, ssl.SSLError) as e:
        print("error=%s" % e, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
