#!/usr/bin/env python3
"""adv_client.py MODE PORT [ARG...] -- clients for inbound_adv.sh, against
127.0.0.1:PORT.  Prints one result line.  The CA is $CERTS/ca.pem.

  tls LINE        TLS 1.3 (server verified as "localhost"), sends LINE,
                  prints "got ANSWER" (the first line back) or "error WHY"
  tls-eof LINE    the same, then reads until the end: prints
                  "end=eof" (close_notify) or "end=error WHY"
  trickle DELAY   a real ClientHello one byte every DELAY seconds: prints
                  "ended after N of M bytes (WHY)" when the server ends the
                  connection first, else "sent all M bytes, then WHAT"
  plain PART...   plain TCP, no TLS: sends each PART (\\n escapes) with a
                  pause between, then prints "got ANSWER" or "error WHY"
                  (10 s at most)
"""
import os
import socket
import ssl
import sys
import time

mode, port = sys.argv[1], int(sys.argv[2])
args = sys.argv[3:]


def context():
    ctx = ssl.create_default_context(cafile=os.path.join(os.environ["CERTS"], "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def tls(line, to_eof):
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=15)
        s = context().wrap_socket(raw, server_hostname="localhost")
        s.sendall(line.encode() + b"\n")
        if not to_eof:
            print("got " + s.recv(4096).decode().strip())
            return
        while s.recv(4096):
            pass
        print("end=eof")
    except (OSError, ssl.SSLError) as e:
        print(("end=error " if to_eof else "error ") + repr(e))


def client_hello():
    out = ssl.MemoryBIO()
    obj = context().wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def ended(s):
    """Has the server ended the connection (its FIN, or a reset)?"""
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def trickle(delay):
    hello = client_hello()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = 0
    try:
        for b in hello:
            if ended(s):
                raise ConnectionError("end of stream")
            s.send(bytes([b]))
            sent += 1
            time.sleep(delay)
        s.settimeout(10)
        print("sent all %d bytes, then %r" % (len(hello), s.recv(16)))
    except OSError as e:
        print("ended after %d of %d bytes (%r)" % (sent, len(hello), e))


def plain(parts):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, part in enumerate(parts):
            if i:
                time.sleep(0.5)
            s.sendall(part.encode().decode("unicode_escape").encode("latin1"))
        print("got " + s.recv(4096).decode(errors="replace").strip())
    except OSError as e:
        print("error " + repr(e))


if mode == "tls":
    tls(args[0], False)
elif mode == "tls-eof":
    tls(args[0], True)
elif mode == "trickle":
    trickle(float(args[0]))
else:
    plain(args)
